"""scvi-tools' training plan with the ELBO bookkeeping done once per epoch."""

from __future__ import annotations

import torch
from scvi.module.base import LossOutput
from scvi.train import TrainingPlan

_FUSED_OPTIMIZER_DEVICES = ("cpu", "cuda")
_EXTRA = "extra:"


class EpochLoggingTrainingPlan(TrainingPlan):
    """:class:`~scvi.train.TrainingPlan` that logs epoch aggregates only.

    scvi-tools' plan logs six metrics through Lightning at every step, which costs more than
    the forward pass of a small model. This plan sums the same quantities in tensors during
    the epoch and logs them once at its end, under the same names (``train_loss``,
    ``elbo_train``, ``reconstruction_loss_train``, ``kl_local_train``, ``kl_global_train``,
    their ``validation`` counterparts, ``kl_weight``, and a module's scalar ``extra_metrics``
    as ``<name>_train`` / ``<name>_validation``), so ``model.history``, early stopping
    and learning-rate schedules work unchanged. The built-in optimisers use PyTorch's fused
    implementation where the device supports it (one kernel per step instead of a dozen per
    parameter tensor). Everything else (KL warm-up, learning-rate schedule, arguments) is
    scvi-tools'.

    Parameters
    ----------
    module
        The module to train.
    **kwargs
        Arguments of :class:`~scvi.train.TrainingPlan`.
    """

    def __init__(self, module, **kwargs):
        super().__init__(module, **kwargs)
        self._sums: dict[str, torch.Tensor] = {}

    def _optimizer_creator_fn(self, optimizer_cls: type[torch.optim.Optimizer]):
        device_type = next(self.module.parameters()).device.type
        fused = {"fused": True} if device_type in _FUSED_OPTIMIZER_DEVICES else {}
        return lambda params: optimizer_cls(
            params, lr=self.lr, eps=self.eps, weight_decay=self.weight_decay, **fused
        )

    def _accumulate(self, mode: str, loss_output: LossOutput) -> None:
        n = loss_output.n_obs_minibatch
        values = {
            "loss": loss_output.loss.detach() * n,
            "reconstruction_loss": loss_output.reconstruction_loss_sum.detach(),
            "kl_local": loss_output.kl_local_sum.detach(),
            "kl_global": torch.as_tensor(loss_output.kl_global_sum).detach(),
            "n_obs": torch.tensor(float(n)),
            "n_batches": torch.tensor(1.0),
        }
        for name, value in loss_output.extra_metrics.items():
            if torch.is_tensor(value) and value.numel() == 1:  # per-cell means, weighted by n
                values[f"{_EXTRA}{name}"] = value.detach() * n
        for name, value in values.items():
            key = f"{name}_{mode}"
            self._sums[key] = self._sums.get(key, 0.0) + value

    def _epoch_sums(self, mode: str) -> dict[str, torch.Tensor] | None:
        """Pop the epoch's sums for ``mode``, added over all processes under DDP."""
        names = ("loss", "reconstruction_loss", "kl_local", "kl_global", "n_obs", "n_batches")
        keys = [f"{name}_{mode}" for name in names]
        keys += sorted(k for k in self._sums if k.startswith(_EXTRA) and k.endswith(f"_{mode}"))
        if not self.use_sync_dist:
            return {key: self._sums.pop(key) for key in keys} if keys[0] in self._sums else None
        # every process joins the reduction, also one that saw no cells of this split
        stacked = torch.stack(
            [torch.as_tensor(self._sums.pop(key, 0.0), dtype=torch.float64) for key in keys]
        ).to(self.device)
        stacked = self.trainer.strategy.reduce(stacked, reduce_op="sum")
        if stacked[keys.index(f"n_obs_{mode}")] == 0:
            return None
        return dict(zip(keys, stacked, strict=True))

    def _log_epoch(self, mode: str, loss_name: str, n_total: int | None) -> None:
        sums = self._epoch_sums(mode)
        if sums is None:
            return
        n_obs = sums[f"n_obs_{mode}"]
        n_total = n_total if n_total and n_total > 0 else 1
        reconstruction = sums[f"reconstruction_loss_{mode}"] / n_obs
        kl_local = sums[f"kl_local_{mode}"] / n_obs
        # one global value per minibatch
        kl_global = sums[f"kl_global_{mode}"] / sums[f"n_batches_{mode}"]
        metrics = {
            loss_name: sums[f"loss_{mode}"] / n_obs,
            f"elbo_{mode}": reconstruction + kl_local + kl_global / n_total,
            f"reconstruction_loss_{mode}": reconstruction,
            f"kl_local_{mode}": kl_local,
            f"kl_global_{mode}": kl_global,
        }
        for key in [k for k in sums if k.startswith(_EXTRA)]:
            metrics[key[len(_EXTRA) :]] = sums[key] / n_obs
        for name, value in metrics.items():
            # already the same on every process (summed above), so logged without a reduction
            self.log(
                name,
                value.float() if torch.is_tensor(value) else value,
                on_step=False,
                on_epoch=True,
                prog_bar=name == "train_loss",
            )

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        """Forward pass and loss of one minibatch; metrics are summed, not logged."""
        if "kl_weight" in self.loss_kwargs:
            self.loss_kwargs.update({"kl_weight": self.kl_weight})
        _, _, loss_output = self.forward(batch, loss_kwargs=self.loss_kwargs)
        self._accumulate("train", loss_output)
        return loss_output.loss

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        """Loss of one validation minibatch, summed for the epoch."""
        _, _, loss_output = self.forward(batch, loss_kwargs=self.loss_kwargs)
        self._accumulate("validation", loss_output)

    def on_train_epoch_end(self) -> None:
        """Log the epoch's training metrics and the current KL weight."""
        if "kl_weight" in self.loss_kwargs:
            self.log("kl_weight", float(self.kl_weight), on_step=False, on_epoch=True)
        self._log_epoch("train", "train_loss", self.n_obs_training)

    def on_validation_epoch_end(self) -> None:
        """Log the epoch's validation metrics."""
        self._log_epoch("validation", "validation_loss", self.n_obs_validation)

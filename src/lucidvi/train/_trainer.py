"""scvi-tools' Trainer and TrainRunner, with early stopping kept under DDP."""

from __future__ import annotations

import warnings
from typing import Any

from lightning.pytorch.strategies import DDPStrategy
from scvi.train import LoudEarlyStopping
from scvi.train import Trainer as ScviTrainer
from scvi.train import TrainRunner as ScviTrainRunner
from torch.utils.data import DataLoader

from ._array_data import ArrayDataSplitter


def is_ddp_strategy(strategy: Any) -> bool:
    """Whether a Lightning ``strategy=`` argument names distributed data parallel training.

    Parameters
    ----------
    strategy
        A strategy name (``"ddp"``, ``"ddp_spawn"``, ``"ddp_find_unused_parameters_true"``,
        ...), a :class:`~lightning.pytorch.strategies.Strategy`, or ``None``.

    Returns
    -------
    ``True`` for DDP in any of its launch forms.
    """
    if isinstance(strategy, str):
        return "ddp" in strategy
    return isinstance(strategy, DDPStrategy)


class Trainer(ScviTrainer):
    """:class:`scvi.train.Trainer` that keeps early stopping under DDP.

    scvi-tools turns early stopping off whenever ``strategy`` names DDP, because its metrics
    may differ between processes. lucidvi's training plans add their epoch sums over all
    processes before logging (:class:`~lucidvi.train.EpochLoggingTrainingPlan`), so every
    process sees the same validation ELBO and stops at the same epoch; Lightning's early
    stopping also agrees the decision across processes. Arguments are scvi-tools'.

    Parameters
    ----------
    early_stopping
        Stop when ``early_stopping_monitor`` has not improved for ``early_stopping_patience``
        epochs.
    early_stopping_monitor
        Logged metric to watch.
    early_stopping_min_delta
        Smallest change that counts as an improvement.
    early_stopping_patience
        Epochs without improvement before stopping.
    early_stopping_warmup_epochs
        Epochs before early stopping starts to watch.
    early_stopping_mode
        ``"min"`` or ``"max"``.
    check_val_every_n_epoch
        Validate every this many epochs (every epoch when early stopping and ``None``).
    **kwargs
        Other arguments of :class:`scvi.train.Trainer`.
    """

    def __init__(
        self,
        early_stopping: bool = False,
        early_stopping_monitor: str = "elbo_validation",
        early_stopping_min_delta: float = 0.0,
        early_stopping_patience: int = 45,
        early_stopping_warmup_epochs: int = 0,
        early_stopping_mode: str = "min",
        check_val_every_n_epoch: int | None = None,
        **kwargs,
    ):
        ddp = is_ddp_strategy(kwargs.get("strategy"))
        if ddp and early_stopping:
            stopping = LoudEarlyStopping(
                monitor=early_stopping_monitor,
                min_delta=early_stopping_min_delta,
                patience=early_stopping_patience,
                mode=early_stopping_mode,
                warmup_epochs=early_stopping_warmup_epochs,
            )
            kwargs["callbacks"] = [*kwargs.get("callbacks", []), stopping]
            check_val_every_n_epoch = check_val_every_n_epoch or 1
            early_stopping = False
        with warnings.catch_warnings():
            if ddp:  # scvi-tools' notice that it turned early stopping off: not so here
                warnings.filterwarnings("ignore", "early_stopping was automatically disabled")
            super().__init__(
                early_stopping=early_stopping,
                early_stopping_monitor=early_stopping_monitor,
                early_stopping_min_delta=early_stopping_min_delta,
                early_stopping_patience=early_stopping_patience,
                early_stopping_warmup_epochs=early_stopping_warmup_epochs,
                early_stopping_mode=early_stopping_mode,
                check_val_every_n_epoch=check_val_every_n_epoch,
                **kwargs,
            )


class TrainRunner(ScviTrainRunner):
    """:class:`scvi.train.TrainRunner` that builds lucidvi's :class:`Trainer`.

    It refuses to train on several processes from a data module whose training loader would
    give every process all the cells (double the work, no speed-up): lucidvi's own splitters
    split the cells between processes, and Lightning splits a :class:`torch.utils.data.DataLoader`
    with a distributed sampler; any other loader (e.g. the ``annbatch`` loader of
    :class:`~scvi.dataloaders.AnnbatchDataModule`) cannot be split. Arguments are scvi-tools'.

    Parameters
    ----------
    *args, **kwargs
        Arguments of :class:`scvi.train.TrainRunner`.

    Raises
    ------
    ValueError
        For several processes and a training loader that Lightning cannot split.
    """

    _trainer_cls = Trainer

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if self.trainer.world_size > 1 and not _splits_between_processes(self.data_splitter):
            raise ValueError(
                f"{type(self.data_splitter).__name__} gives {self.trainer.world_size} processes "
                "the same cells (its training loader is not a torch DataLoader that Lightning "
                "can split), so each would train on all of them: train it on one device "
                "(devices=1), or from an AnnData (in memory, backed or lazy), whose loaders "
                "split the cells between processes."
            )


def _splits_between_processes(datamodule: Any) -> bool:
    """Whether each of several processes would train on its own part of ``datamodule``."""
    if isinstance(datamodule, ArrayDataSplitter):  # shards its loaders by the trainer's rank
        return True
    return isinstance(datamodule.train_dataloader(), DataLoader)

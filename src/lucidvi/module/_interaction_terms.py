"""What the refit and the calibration of InteractionVI read from and write to its module."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from scvi import REGISTRY_KEYS


class TypeTermsMixin:
    """Per-type parameters and per-receiver terms of :class:`InteractionModule`.

    The maximum-likelihood refit of each type's profile and spread and the niche calibration
    (:mod:`lucidvi.train`) read and set the module through these methods only.
    """

    @property
    def spread_per_type(self) -> bool:
        """Whether each cell type has its own spread (``dispersion="gene-label"``)."""
        return len(self.log_scale) > 1

    def type_parameters(self, code: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Return one cell type's profile and spread, detached from the module.

        Parameters
        ----------
        code
            The type's code.

        Returns
        -------
        ``(profile, log_scale)``: the profile, shape ``(n_genes,)``, and the log inverse
        dispersions (``"nb"``) or log standard deviations (``"gaussian"``), shape
        ``(1, n_genes)``: the type's own row, or the row all types share for
        ``dispersion="gene"``.
        """
        row = code if self.spread_per_type else 0
        return self.label_profile.weight[code].detach(), self.log_scale[row : row + 1].detach()

    @torch.no_grad()
    def set_type_parameters(
        self, code: int, profile: torch.Tensor, log_scale: torch.Tensor | None = None
    ) -> None:
        """Set one cell type's profile and, when given, its spread (e.g. after a refit).

        Parameters
        ----------
        code
            The type's code.
        profile
            The new profile, shape ``(n_genes,)``; cast to the module's precision.
        log_scale
            The new log inverse dispersions or log standard deviations, ``n_genes`` values;
            they replace the type's row, or the shared row for ``dispersion="gene"``. ``None``
            keeps the spread.
        """
        self.label_profile.weight[code] = profile.to(self.label_profile.weight.dtype)
        if log_scale is not None:
            row = code if self.spread_per_type else 0
            self.log_scale[row] = log_scale.reshape(-1).to(self.log_scale.dtype)

    @torch.inference_mode()
    def expression_terms(
        self, tensors: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Expression, intrinsic term and niche term of a minibatch of receivers.

        Runs :meth:`inference` and :meth:`generative` as they stand (put the module in
        evaluation mode first).

        Parameters
        ----------
        tensors
            A minibatch of receivers that carries their neighbours, as yielded by
            :func:`lucidvi.train.neighborhood_loader`.

        Returns
        -------
        ``(x, intrinsic, niche, labels)`` on the module's device: the receivers' expression,
        shape ``(n, n_genes)``; the intrinsic and niche terms of :meth:`generative` (same shape;
        logits for ``"nb"``, means for ``"gaussian"``); the receivers' type codes, shape
        ``(n,)``.
        """
        _, generative = self(tensors, compute_loss=False)
        x = tensors[REGISTRY_KEYS.X_KEY].to(generative["intrinsic"].device)
        labels = tensors[REGISTRY_KEYS.LABELS_KEY].to(x.device)[:, 0].long()
        return x, generative["intrinsic"], generative["niche"], labels

    @torch.inference_mode()
    def niche_coordinates(self, tensors: dict[str, torch.Tensor]) -> torch.Tensor:
        """Each receiver's niche on the heads' gene programmes, before the calibration.

        The niche term of :meth:`generative` is linear in them
        (:meth:`niche_from_coordinates`), so a few numbers per cell stand for it.

        Parameters
        ----------
        tensors
            A minibatch of receivers with their neighbours (as for :meth:`expression_terms`).

        Returns
        -------
        Tensor of shape ``(n, n_heads * niche_rank)`` on the module's device.
        """
        outputs = self.inference(**self._get_inference_input(tensors))["head_outputs"]
        return torch.einsum("nhd,hdr->nhr", outputs, self.readout).flatten(1)

    def niche_from_coordinates(
        self, coordinates: torch.Tensor, labels: torch.Tensor
    ) -> torch.Tensor:
        """Calibrated niche term of receivers from their :meth:`niche_coordinates`.

        Parameters
        ----------
        coordinates
            Shape ``(n, n_heads * niche_rank)``.
        labels
            The receivers' type codes, shape ``(n,)``.

        Returns
        -------
        Tensor of shape ``(n, n_genes)``, in the coordinates' precision.
        """
        codes = labels.long()
        loadings = self.loadings.detach().flatten(0, 1).to(coordinates.dtype)
        center = self.niche_center[codes].to(coordinates.dtype)
        scale = self.niche_scale[codes, None].to(coordinates.dtype)
        return scale * (coordinates @ loadings - center)

    @torch.inference_mode()
    def scaled_niche_log_likelihood(
        self,
        x: torch.Tensor,
        intrinsic: torch.Tensor,
        niche: torch.Tensor,
        labels: torch.Tensor,
        scales: Sequence[float],
    ) -> torch.Tensor:
        """Log-likelihood of each cell with its niche term at each of several scales.

        Equals :meth:`log_likelihood` of ``intrinsic + scale * niche`` for each scale; for
        counts, the terms that do not depend on the mean (the Gamma functions) are computed
        once.

        Parameters
        ----------
        x
            Expression, shape ``(n, n_genes)``.
        intrinsic
            Intrinsic term (:meth:`expression_terms`), same shape.
        niche
            Niche term, same shape.
        labels
            Type codes, shape ``(n,)``.
        scales
            The scales, the first one computed in full.

        Returns
        -------
        Tensor of shape ``(n, len(scales))``.
        """
        first = self.log_likelihood(x, intrinsic + scales[0] * niche, labels)
        if self.likelihood == "gaussian":
            rest = [self.log_likelihood(x, intrinsic + s * niche, labels) for s in scales[1:]]
            return torch.stack([first, *rest], 1)
        log_theta = self.log_scale[labels.long()] if self.spread_per_type else self.log_scale[:1]
        theta, library = log_theta.exp(), torch.log(x.sum(-1, keepdim=True))

        def mean_terms(predictor: torch.Tensor) -> torch.Tensor:
            d = torch.log_softmax(predictor, -1) + library - log_theta  # log(mu / theta)
            return (x * d).sum(-1) - ((x + theta) * F.softplus(d)).sum(-1)

        constant = first - mean_terms(intrinsic + scales[0] * niche)
        rest = [constant + mean_terms(intrinsic + s * niche) for s in scales[1:]]
        return torch.stack([first, *rest], 1)

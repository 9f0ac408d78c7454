"""The module behind :class:`lucidvi.model.InteractionVI`: intrinsic + niche expression."""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import torch
from scvi import REGISTRY_KEYS
from scvi.module.base import BaseModuleClass, LossOutput, auto_move_data
from torch import nn

from lucidvi._constants import (
    NEIGHBOR_DISTANCE_KEY,
    NEIGHBOR_SLOT_KEY,
    SENDER_INDEX_KEY,
    SENDER_LABELS_KEY,
    SENDER_X_KEY,
)
from lucidvi.nn import NeighborhoodAttention, nb_log_likelihood

Likelihood = Literal["nb", "gaussian"]
_TARGET_SUM = 1e4


class InteractionModule(BaseModuleClass):
    r"""Expression of a cell = intrinsic part (its type and batch) + niche part (its neighbours).

    For ``likelihood="nb"`` the counts are
    :math:`x_{ig} \sim \mathrm{NB}(l_i\, \mathrm{softmax}_g(\alpha_{t_i} + \beta_{b_i} +
    \eta_i), \theta_g)` with the observed library :math:`l_i`, the type profile
    :math:`\alpha_t`, the batch offset :math:`\beta_b` and the niche term
    :math:`\eta_i = \sum_h (r_h^\top o_{hi})\, w_h`; for ``"gaussian"``,
    :math:`x_{ig} \sim N(\alpha_{t_i g} + \beta_{b_i g} + \eta_{ig}, \sigma_g^2)`.
    :math:`o_{hi}` is head :math:`h`'s attention output over the cell's neighbours
    (:class:`~lucidvi.nn.NeighborhoodAttention`), :math:`r_h` its read-out and :math:`w_h`
    its gene loadings: each head changes expression along its own gene programme(s)
    (``niche_rank`` of them), by an amount set per cell by whom it attends to.

    A sender is embedded from its type and its expression, the latter through the top
    ``n_sender_components`` principal axes of the log-normalised expression (the values as
    given for ``"gaussian"``), fixed when the model is built (:meth:`set_sender_axes`). The niche
    term never sees the receiver's own expression. The low-dimensional, linear view of the
    senders' expression and the low-rank read-out keep the niche from memorising individual
    receivers through their unique neighbourhoods, which a free network on all genes does
    (the held-out likelihood then gets worse than the cell-type baseline's).

    Parameters
    ----------
    n_input
        Number of genes (or markers).
    n_labels
        Number of cell types.
    n_batch
        Number of batches.
    n_heads
        Number of attention heads; 0 gives the intrinsic part alone (a cell-type baseline).
    n_latent
        Dimension of the sender embeddings and of the niche embedding (all heads together; a
        multiple of ``n_heads``).
    n_sender_components
        Principal components of the senders' expression that enter their embedding.
    niche_rank
        Gene programmes per head.
    likelihood
        ``"nb"`` or ``"gaussian"``.
    distance_unit
        Unit of the attention's distance decay.
    """

    def __init__(
        self,
        n_input: int,
        n_labels: int,
        n_batch: int = 1,
        n_heads: int = 8,
        n_latent: int = 64,
        n_sender_components: int = 10,
        niche_rank: int = 1,
        likelihood: Likelihood = "nb",
        distance_unit: float = 1.0,
    ):
        super().__init__()
        if likelihood not in ("nb", "gaussian"):
            raise ValueError(f"likelihood must be 'nb' or 'gaussian', got {likelihood!r}.")
        if n_heads < 0 or (n_heads and n_latent % n_heads):
            raise ValueError(
                f"n_latent ({n_latent}) must be a multiple of n_heads ({n_heads}) >= 0."
            )
        if n_sender_components < 0 or niche_rank < 1:
            raise ValueError("n_sender_components must be >= 0 and niche_rank >= 1.")
        self.likelihood, self.n_heads, self.n_latent = likelihood, n_heads, n_latent
        self.label_profile = nn.Embedding(n_labels, n_input)
        nn.init.zeros_(self.label_profile.weight)
        self.batch_offset = nn.Embedding(n_batch, n_input)
        nn.init.zeros_(self.batch_offset.weight)
        self.log_scale = nn.Parameter(torch.zeros(n_input))  # log theta (nb) or log sigma
        if not n_heads:
            return
        head_dim = n_latent // n_heads
        self.register_buffer("sender_center", torch.zeros(n_input))
        self.register_buffer("sender_axes", torch.zeros(n_input, n_sender_components))
        self.sender_expression = nn.Linear(n_sender_components, n_latent, bias=False)
        self.sender_type = nn.Embedding(n_labels, n_latent)
        self.attention = NeighborhoodAttention(n_labels, n_latent, n_heads, head_dim, distance_unit)
        self.readout = nn.Parameter(torch.randn(n_heads, head_dim, niche_rank) / head_dim**0.5)
        self.loadings = nn.Parameter(torch.randn(n_heads, niche_rank, n_input) * 0.01)

    @property
    def niche_decoder(self) -> torch.Tensor:
        """Map from each head's output to genes, shape ``(n_heads, head_dim, n_genes)``."""
        return torch.einsum("hdr,hrg->hdg", self.readout, self.loadings)

    def sender_features(self, x: torch.Tensor) -> torch.Tensor:
        """Senders' expression on the principal axes, shape ``(n_senders, n_components)``."""
        return (self._sender_input(x) - self.sender_center) @ self.sender_axes

    @torch.no_grad()
    def initialize_intrinsic(self, matrix, codes: np.ndarray) -> None:
        """Start each type's profile at its mean and the spread at the within-type one.

        Counts: log mean proportions per type (of counts scaled to the mean library), and the
        inverse dispersion per gene by the method of moments, ``theta = sum_t n_t m_t^2 /
        sum_t n_t (v_t - m_t)`` over types ``t`` with means ``m_t`` and variances ``v_t``,
        clipped to [0.01, 1e4]. Gaussian: means per type and the pooled within-type standard
        deviation.

        Parameters
        ----------
        matrix
            Expression, cells x genes (dense or sparse).
        codes
            Type code of each cell.
        """
        n_genes = matrix.shape[1]
        profiles = np.zeros((self.label_profile.num_embeddings, n_genes))
        first, second = np.zeros(n_genes), np.zeros(n_genes)
        totals = np.asarray(matrix.sum(axis=1), dtype=np.float64).ravel()
        for code in np.unique(codes):
            rows = matrix[codes == code]
            values = np.asarray(rows.toarray() if hasattr(rows, "toarray") else rows, np.float64)
            if self.likelihood == "nb":
                scaled = values * (np.mean(totals) / totals[codes == code])[:, None]
                mean, variance = scaled.mean(axis=0), scaled.var(axis=0)
                profiles[code] = np.log(mean / mean.sum() + 1e-8)
                first += len(values) * mean**2
                second += len(values) * np.maximum(variance - mean, 1e-8)
            else:
                profiles[code] = values.mean(axis=0)
                second += ((values - profiles[code]) ** 2).sum(axis=0)
        if self.likelihood == "nb":
            scale = np.log(np.clip(first / second, 1e-2, 1e4))
        else:
            scale = np.log(np.sqrt(second / len(codes)) + 1e-3)
        device = self.log_scale.device
        self.label_profile.weight.copy_(torch.as_tensor(profiles, device=device))
        self.log_scale.copy_(torch.as_tensor(scale, device=device))

    @torch.no_grad()
    def set_sender_axes(self, x: torch.Tensor) -> None:
        """Fix the senders' principal axes from a sample of cells' expression.

        Parameters
        ----------
        x
            Expression (counts for ``"nb"``), shape ``(n_cells, n_genes)``. The axes are scaled
            so each component has unit variance over these cells.
        """
        inputs = self._sender_input(x.to(self.sender_axes.device, torch.float32))
        center = inputs.mean(0)
        _, singular, axes = torch.linalg.svd(inputs - center, full_matrices=False)
        n = min(self.sender_axes.shape[1], axes.shape[0])
        scale = (singular[:n] / len(inputs) ** 0.5).clamp(min=1e-8)
        self.sender_center.copy_(center)
        self.sender_axes.zero_()
        self.sender_axes[:, :n] = axes[:n].T / scale

    def _sender_input(self, x: torch.Tensor) -> torch.Tensor:
        if self.likelihood == "gaussian":
            return x
        library = x.sum(-1, keepdim=True).clamp(min=1.0)
        return torch.log1p(x * (_TARGET_SUM / library))

    def _get_inference_input(self, tensors: dict[str, torch.Tensor]) -> dict:
        return {
            "receiver_labels": tensors[REGISTRY_KEYS.LABELS_KEY],
            "sender_x": tensors.get(SENDER_X_KEY),
            "sender_labels": tensors.get(SENDER_LABELS_KEY),
            "sender_index": tensors.get(SENDER_INDEX_KEY),
            "neighbor_slot": tensors.get(NEIGHBOR_SLOT_KEY),
            "neighbor_distance": tensors.get(NEIGHBOR_DISTANCE_KEY),
        }

    @auto_move_data
    def inference(
        self,
        receiver_labels: torch.Tensor,
        sender_x: torch.Tensor | None,
        sender_labels: torch.Tensor | None,
        sender_index: torch.Tensor | None,
        neighbor_slot: torch.Tensor | None,
        neighbor_distance: torch.Tensor | None,
        head_keep: torch.Tensor | None = None,
        masked_sender_labels: torch.Tensor | None = None,
        masked_sender_index: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor | None]:
        """Attend over each receiver's neighbours.

        Parameters
        ----------
        receiver_labels
            Type codes of the receivers, shape ``(n, 1)``.
        sender_x
            Expression of the minibatch's senders.
        sender_labels
            Their type codes, shape ``(n_senders, 1)``.
        sender_index
            Their rows in the whole data set.
        neighbor_slot
            Row of each receiver's neighbours among the senders (``-1``: empty slot).
        neighbor_distance
            The neighbours' distances.
        head_keep
            Boolean per head; ``False`` ablates the head.
        masked_sender_labels
            Type codes whose cells are not attended (as if absent).
        masked_sender_index
            Rows of the data set whose cells are not attended.

        Returns
        -------
        ``head_outputs`` ``(n, n_heads, head_dim)``, ``attention`` ``(n, n_heads, n_slots + 1)``
        (null slot last) and ``values`` of the senders; all ``None`` without heads.
        """
        if not self.n_heads:
            return {"head_outputs": None, "attention": None, "values": None}
        sender_labels = sender_labels[:, 0].long()
        embedding = self.sender_expression(self.sender_features(sender_x)) + self.sender_type(
            sender_labels
        )
        keep = torch.ones_like(sender_labels, dtype=torch.bool)
        if masked_sender_labels is not None:
            keep &= ~torch.isin(sender_labels, masked_sender_labels.to(sender_labels.device))
        if masked_sender_index is not None:
            keep &= ~torch.isin(sender_index, masked_sender_index.to(sender_index.device))
        outputs, weights, values = self.attention(
            receiver_labels[:, 0].long(), embedding, neighbor_slot, neighbor_distance, keep,
            head_keep,
        )  # fmt: skip
        return {"head_outputs": outputs, "attention": weights, "values": values}

    def _get_generative_input(self, tensors: dict[str, torch.Tensor], inference_outputs: dict):
        return {
            "labels": tensors[REGISTRY_KEYS.LABELS_KEY],
            "batch_index": tensors[REGISTRY_KEYS.BATCH_KEY],
            "head_outputs": inference_outputs["head_outputs"],
        }

    def head_effects(self, head_outputs: torch.Tensor) -> torch.Tensor:
        """Each head's niche term, shape ``(n, n_heads, n_genes)``."""
        return torch.einsum("rhd,hdg->rhg", head_outputs, self.niche_decoder)

    @auto_move_data
    def generative(
        self,
        labels: torch.Tensor,
        batch_index: torch.Tensor,
        head_outputs: torch.Tensor | None,
    ) -> dict[str, torch.Tensor]:
        """Intrinsic and niche terms on the linear-predictor scale.

        Parameters
        ----------
        labels
            Type codes, shape ``(n, 1)``.
        batch_index
            Batch codes, shape ``(n, 1)``.
        head_outputs
            Output of :meth:`inference` (``None`` without heads).

        Returns
        -------
        ``intrinsic`` and ``niche`` (``(n, n_genes)``; logits for ``"nb"``, means for
        ``"gaussian"``; the niche term is 0 without heads) and ``log_scale`` (log inverse
        dispersion or log standard deviation per gene).
        """
        intrinsic = self.label_profile(labels[:, 0].long()) + self.batch_offset(
            batch_index[:, 0].long()
        )
        niche = (
            torch.zeros_like(intrinsic)
            if head_outputs is None
            else torch.einsum("rhd,hdg->rg", head_outputs, self.niche_decoder)
        )
        return {"intrinsic": intrinsic, "niche": niche, "log_scale": self.log_scale}

    def log_likelihood(self, x: torch.Tensor, linear_predictor: torch.Tensor) -> torch.Tensor:
        """Log-likelihood of each cell's expression given its linear predictor.

        Parameters
        ----------
        x
            Expression, shape ``(n, n_genes)``.
        linear_predictor
            Logits (``"nb"``) or means (``"gaussian"``), same shape.

        Returns
        -------
        Tensor of shape ``(n,)``.
        """
        if self.likelihood == "gaussian":
            log_sigma = self.log_scale
            z = (x - linear_predictor) * torch.exp(-log_sigma)
            return (-0.5 * z.square() - log_sigma - 0.5 * math.log(2 * math.pi)).sum(-1)
        library = torch.log(x.sum(-1, keepdim=True))
        log_mu = torch.log_softmax(linear_predictor, dim=-1) + library
        return nb_log_likelihood(x, log_mu, self.log_scale[None], validate=not self.training)

    def loss(
        self,
        tensors: dict[str, torch.Tensor],
        inference_outputs: dict,
        generative_outputs: dict[str, torch.Tensor],
        kl_weight: float = 1.0,
    ) -> LossOutput:
        """Negative log-likelihood per cell (no latent variables, so no KL term).

        Parameters
        ----------
        tensors
            The minibatch.
        inference_outputs
            Output of :meth:`inference`.
        generative_outputs
            Output of :meth:`generative`.
        kl_weight
            Unused; kept for scvi-tools' training plan.

        Returns
        -------
        :class:`~scvi.module.base.LossOutput`.
        """
        x = tensors[REGISTRY_KEYS.X_KEY]
        predictor = generative_outputs["intrinsic"] + generative_outputs["niche"]
        nll = -self.log_likelihood(x, predictor)
        return LossOutput(loss=nll.mean(), reconstruction_loss=nll, kl_local=torch.zeros_like(nll))

"""The module behind :class:`lucidvi.model.InteractionVI`: intrinsic + niche expression."""

from __future__ import annotations

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
from lucidvi._docstrings import lucidvi_dsp
from lucidvi.nn import NeighborhoodAttention, expression_log_likelihood

from ._interaction_terms import TypeTermsMixin
from ._intrinsic_start import intrinsic_start

Likelihood = Literal["nb", "gaussian"]
Dispersion = Literal["gene-label", "gene"]
NicheValues = Literal["constant", "sender"]
_TARGET_SUM = 1e4


class InteractionModule(TypeTermsMixin, BaseModuleClass):
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

    The inverse dispersion :math:`\theta` (or :math:`\sigma`) is per type and gene by default:
    cell types differ as much in their spread as in their means, and one value per gene shared
    by all types would tie them together (a niche term that explains the receivers' spread
    would change the fit of every other type).

    A sender is embedded from its type and its expression, the latter through the top
    ``n_sender_components`` principal axes of the log-normalised expression (the values as
    given for ``"gaussian"``), fixed when the model is built (:meth:`set_sender_axes`). The niche
    term never sees the receiver's own expression. The low-dimensional, linear view of the
    senders' expression and the low-rank read-out keep the niche from memorising individual
    receivers through their unique neighbourhoods (``docs/benchmarks.md``, "Models and
    training").

    Two buffers calibrate the niche per receiver type :math:`t` after training: the niche term
    is :math:`\lambda_t (\eta_i - c_t)`, with the scale ``niche_scale`` :math:`\lambda_t \in
    [0, 1]` and the centre ``niche_center`` :math:`c_t` (1 and 0 while training). A type with
    :math:`\lambda_t = 0` has no niche: its cells attend to no neighbour.
    :class:`~lucidvi.model.InteractionVI` sets both from held-out cells.

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
    dispersion
        ``"gene-label"`` (per type and gene) or ``"gene"`` (per gene).
    niche_values
        ``"constant"`` (a head's effect is set by how much it attends to neighbours) or
        ``"sender"`` (also by the attended senders' embeddings); see
        :class:`~lucidvi.nn.NeighborhoodAttention`.
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
        dispersion: Dispersion = "gene-label",
        niche_values: NicheValues = "constant",
        distance_unit: float = 1.0,
    ):
        super().__init__()
        if likelihood not in ("nb", "gaussian"):
            raise ValueError(f"likelihood must be 'nb' or 'gaussian', got {likelihood!r}.")
        if n_heads < 0 or (n_heads and n_latent % n_heads):
            raise ValueError(
                f"n_latent ({n_latent}) must be a multiple of n_heads ({n_heads}) >= 0."
            )
        if dispersion not in ("gene-label", "gene"):
            raise ValueError(f"dispersion must be 'gene-label' or 'gene', got {dispersion!r}.")
        if n_sender_components < 0 or niche_rank < 1:
            raise ValueError("n_sender_components must be >= 0 and niche_rank >= 1.")
        self.likelihood, self.n_heads, self.n_latent = likelihood, n_heads, n_latent
        self.label_profile = nn.Embedding(n_labels, n_input)
        nn.init.zeros_(self.label_profile.weight)
        self.batch_offset = nn.Embedding(n_batch, n_input)
        nn.init.zeros_(self.batch_offset.weight)
        # log theta (nb) or log sigma (gaussian), one row per type or a single row
        n_scales = n_labels if dispersion == "gene-label" else 1
        self.log_scale = nn.Parameter(torch.zeros(n_scales, n_input))
        if not n_heads:
            return
        head_dim = n_latent // n_heads
        # per receiver type: niche = scale * (attention term - center); see the class notes
        self.register_buffer("niche_scale", torch.ones(n_labels))
        self.register_buffer("niche_center", torch.zeros(n_labels, n_input))
        self.register_buffer("sender_center", torch.zeros(n_input))
        self.register_buffer("sender_axes", torch.zeros(n_input, n_sender_components))
        self.sender_expression = nn.Linear(n_sender_components, n_latent, bias=False)
        self.sender_type = nn.Embedding(n_labels, n_latent)
        self.attention = NeighborhoodAttention(
            n_labels, n_latent, n_heads, head_dim, distance_unit, niche_values
        )
        self.readout = nn.Parameter(torch.randn(n_heads, head_dim, niche_rank) / head_dim**0.5)
        self.loadings = nn.Parameter(torch.randn(n_heads, niche_rank, n_input) * 0.01)

    @property
    def niche_decoder(self) -> torch.Tensor:
        """Map from each head's output to genes, shape ``(n_heads, head_dim, n_genes)``."""
        return torch.einsum("hdr,hrg->hdg", self.readout, self.loadings)

    def sender_features(self, x: torch.Tensor) -> torch.Tensor:
        """Senders' expression on the principal axes, shape ``(n_senders, n_components)``."""
        return (self._sender_input(x) - self.sender_center) @ self.sender_axes

    def sender_embedding(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Senders' embeddings from their expression and type codes, ``(n_senders, n_latent)``."""
        return self.sender_expression(self.sender_features(x)) + self.sender_type(labels)

    @torch.no_grad()
    def initialize_intrinsic(
        self, matrix, codes: np.ndarray, block_rows: int | None = None
    ) -> None:
        """Start each type's profile at its mean and the spread at the within-type one.

        Counts: log mean proportions per type (of counts scaled to the mean library), and the
        inverse dispersion by the method of moments, ``theta = m^2 / (v - m)`` from the mean
        ``m`` and variance ``v``, pooled over types (``sum_t n_t m_t^2 / sum_t n_t (v_t -
        m_t)``) for ``dispersion="gene"``; per type, each type's moments are pooled with those
        of 20 cells at the pooled value, so small types start near it. Clipped to
        [0.01, 1e4]. Gaussian: means per type and the within-type standard deviation, pooled
        (or per type, shrunk the same way). The moments are accumulated one block of rows at a
        time, so the matrix may be sparse, backed or lazy.

        Parameters
        ----------
        matrix
            Expression, cells x genes (numpy, scipy sparse, backed or dask).
        codes
            Type code of each cell.
        block_rows
            Rows per read (about 32 MiB of float32 when ``None``).
        """
        profiles, scale = intrinsic_start(
            matrix,
            codes,
            self.label_profile.num_embeddings,
            self.likelihood,
            per_type_spread=self.spread_per_type,
            block_rows=block_rows,
        )
        device = self.log_scale.device
        self.label_profile.weight.copy_(torch.as_tensor(profiles, device=device))
        scale = np.broadcast_to(scale, self.log_scale.shape).copy()
        self.log_scale.copy_(torch.as_tensor(scale, device=device))

    @torch.no_grad()
    def set_niche_calibration(self, center: torch.Tensor, scale: torch.Tensor) -> None:
        """Centre and scale each type's niche, the centre moving into the type's profile.

        Replaces any earlier calibration, so the predictions at ``center = 0, scale = 1`` are
        those of the trained model.

        Parameters
        ----------
        center
            Niche term subtracted per type, shape ``(n_labels, n_genes)``; it is added to the
            profiles, so at scale 1 the predictions do not change.
        scale
            Scale of each type's centred niche, shape ``(n_labels,)``; 0 turns it off.
        """
        self.label_profile.weight += center - self.niche_center
        self.niche_center.copy_(center)
        self.niche_scale.copy_(scale)

    def reset_niche_calibration(self) -> None:
        """Undo :meth:`set_niche_calibration`: centre 0 and scale 1 for every type."""
        self.set_niche_calibration(
            torch.zeros_like(self.niche_center), torch.ones_like(self.niche_scale)
        )

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
        embedding = self.sender_embedding(sender_x, sender_labels)
        keep = torch.ones_like(sender_labels, dtype=torch.bool)
        if masked_sender_labels is not None:
            keep &= ~torch.isin(sender_labels, masked_sender_labels.to(sender_labels.device))
        if masked_sender_index is not None:
            keep &= ~torch.isin(sender_index, masked_sender_index.to(sender_index.device))
        receiver_labels = receiver_labels[:, 0].long()
        outputs, weights, values = self.attention(
            receiver_labels,
            embedding,
            neighbor_slot,
            neighbor_distance,
            sender_keep=keep,
            head_keep=head_keep,
            receiver_keep=self.niche_scale[receiver_labels] > 0,  # scale 0: no niche
        )
        return {"head_outputs": outputs, "attention": weights, "values": values}

    def _get_generative_input(self, tensors: dict[str, torch.Tensor], inference_outputs: dict):
        return {
            "labels": tensors[REGISTRY_KEYS.LABELS_KEY],
            "batch_index": tensors[REGISTRY_KEYS.BATCH_KEY],
            "head_outputs": inference_outputs["head_outputs"],
        }

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
        ``"gaussian"``; the niche term is 0 without heads).
        """
        intrinsic = self.label_profile(labels[:, 0].long()) + self.batch_offset(
            batch_index[:, 0].long()
        )
        if head_outputs is None:
            niche = torch.zeros_like(intrinsic)
        else:
            codes = labels[:, 0].long()
            niche = torch.einsum("rhd,hdg->rg", head_outputs, self.niche_decoder)
            niche = self.niche_scale[codes, None] * (niche - self.niche_center[codes])
        return {"intrinsic": intrinsic, "niche": niche}

    def log_likelihood(
        self, x: torch.Tensor, linear_predictor: torch.Tensor, labels: torch.Tensor
    ) -> torch.Tensor:
        """Log-likelihood of each cell's expression given its linear predictor.

        Parameters
        ----------
        x
            Expression, shape ``(n, n_genes)``.
        linear_predictor
            Logits (``"nb"``) or means (``"gaussian"``), same shape.
        labels
            Type codes, shape ``(n, 1)`` or ``(n,)`` (they pick the spread of each cell's genes
            for ``dispersion="gene-label"``).

        Returns
        -------
        Tensor of shape ``(n,)``.
        """
        index = labels.reshape(-1).long() if len(self.log_scale) > 1 else None
        return expression_log_likelihood(
            self.likelihood, x, linear_predictor, self.log_scale, index, not self.training
        )

    @lucidvi_dsp.dedent
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
        %(loss_inputs)s
        kl_weight
            Unused; kept for scvi-tools' training plan.

        Returns
        -------
        :class:`~scvi.module.base.LossOutput`.
        """
        x = tensors[REGISTRY_KEYS.X_KEY]
        predictor = generative_outputs["intrinsic"] + generative_outputs["niche"]
        nll = -self.log_likelihood(x, predictor, tensors[REGISTRY_KEYS.LABELS_KEY])
        return LossOutput(loss=nll.mean(), reconstruction_loss=nll, kl_local=torch.zeros_like(nll))

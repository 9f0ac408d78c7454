"""The negative binomial mixture behind :class:`lucidvi.model.MixtureVI`."""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from scvi import REGISTRY_KEYS
from scvi.module.base import BaseModuleClass, LossOutput, auto_move_data
from torch import nn

from lucidvi.nn import nb_log_likelihood

MixtureDispersion = Literal["cluster-gene", "gene"]

#: Counts are scaled to this total before ``log1p`` in the encoder's input.
ENCODER_TARGET_SUM = 1e4


class NBMixture(BaseModuleClass):
    r"""Mixture of negative binomials (a Poisson-Gamma mixture) with an optional cluster encoder.

    Cell ``i`` of batch ``b`` belongs to cluster ``k`` with probability ``pi_k`` and then

    .. math::

        x_{ij} \sim \mathrm{NB}(\mathrm{mean}\ s_i\, \mu_{kj}\, e^{\beta_{bj}},
            \ \mathrm{inverse\ dispersion}\ \theta_{kj}),

    the marginal of ``x_ij | lambda ~ Poisson(s_i lambda)`` with
    ``lambda ~ Gamma(theta_kj, theta_kj / mu_kj)``. ``s_i`` is the size factor (the library size
    unless one is registered), ``beta_b`` a per-gene log fold change of batch ``b`` against the
    first batch (``beta_0 = 0``), and ``theta`` is shared by all clusters with
    ``dispersion="gene"``. The encoder maps ``log1p`` of depth-normalised counts to the
    logits of ``q(cluster | x)`` for minibatch (amortized) inference, trained with the mixture
    (see :meth:`loss`); batch EM fits the same mixture without it.

    The mixture may model a subset of the registered genes (``genes``): minibatches hold all
    registered genes, the size factor defaults to a cell's total over all of them, and only the
    modelled genes' columns enter the encoder and the likelihood.

    Parameters
    ----------
    n_input
        Number of modelled genes.
    n_clusters
        Number of mixture components.
    n_batch
        Number of batches.
    dispersion
        ``"cluster-gene"`` (one inverse dispersion per cluster and gene) or ``"gene"``.
    encoder_hidden
        Width of the encoder's hidden layer.
    genes
        Columns of the registered counts that the mixture models (``n_input`` of them);
        ``None``: all columns, and ``n_input`` is their number.
    """

    def __init__(
        self,
        n_input: int,
        n_clusters: int,
        n_batch: int = 1,
        dispersion: MixtureDispersion = "cluster-gene",
        encoder_hidden: int = 128,
        genes: torch.Tensor | None = None,
    ):
        super().__init__()
        if genes is not None and len(genes) != n_input:
            raise ValueError(f"genes must hold n_input ({n_input}) columns, got {len(genes)}.")
        # an empty buffer means every column (a buffer, so that it follows the module's device)
        self.register_buffer(
            "genes", torch.as_tensor([] if genes is None else genes, dtype=torch.long)
        )
        if dispersion not in ("cluster-gene", "gene"):
            raise ValueError(f"dispersion must be 'cluster-gene' or 'gene', got {dispersion!r}.")
        self.n_input = n_input
        self.n_clusters = n_clusters
        self.n_batch = n_batch
        self.dispersion = dispersion
        self.log_mu = nn.Parameter(torch.full((n_clusters, n_input), -math.log(n_input)))
        n_theta = n_clusters if dispersion == "cluster-gene" else 1
        self.log_theta = nn.Parameter(torch.full((n_theta, n_input), math.log(10.0)))
        self.logits_pi = nn.Parameter(torch.zeros(n_clusters))
        # with one batch it is empty: not trained (DDP refuses parameters that get no gradient)
        self.batch_effect = nn.Parameter(
            torch.zeros(max(n_batch - 1, 0), n_input), requires_grad=n_batch > 1
        )
        self.encoder = nn.Sequential(
            nn.Linear(n_input + n_batch, encoder_hidden),
            nn.LayerNorm(encoder_hidden),
            nn.ReLU(),
            nn.Linear(encoder_hidden, n_clusters),
        )

    def log_theta_of(self, k: int) -> torch.Tensor:
        """Log inverse dispersions of cluster ``k``, shape ``(1, n_genes)``."""
        return self.log_theta[k : k + 1] if self.dispersion == "cluster-gene" else self.log_theta

    def log_offset(self, log_size: torch.Tensor, batch_index: torch.Tensor) -> torch.Tensor:
        """Per-cell log mean offset ``log s_i + beta_{b_i}``.

        The shape is ``(n, 1)`` for one batch, ``(n, G)`` otherwise.

        Parameters
        ----------
        log_size
            Log size factors, shape ``(n, 1)``.
        batch_index
            Batch of each cell, shape ``(n, 1)``.
        """
        if self.n_batch == 1:
            return log_size
        effects = torch.cat([self.batch_effect.new_zeros(1, self.n_input), self.batch_effect])
        return log_size + effects[batch_index.view(-1).long()]

    def cluster_log_likelihood(
        self, x: torch.Tensor, log_size: torch.Tensor, batch_index: torch.Tensor
    ) -> torch.Tensor:
        """NB log-likelihood of each cell under each cluster, shape ``(n_cells, n_clusters)``.

        Parameters
        ----------
        x
            Counts, shape ``(n_cells, n_genes)``.
        log_size
            Log size factors, shape ``(n_cells, 1)``.
        batch_index
            Batch of each cell, shape ``(n_cells, 1)``.
        """
        offset = self.log_offset(log_size, batch_index)
        columns = [
            nb_log_likelihood(x, offset + self.log_mu[k], self.log_theta_of(k), validate=False)
            for k in range(self.n_clusters)
        ]
        return torch.stack(columns, dim=-1)

    def log_weights(self) -> torch.Tensor:
        """Log mixture weights ``log pi``, shape ``(n_clusters,)``."""
        return F.log_softmax(self.logits_pi, dim=-1)

    @staticmethod
    def log_size_factor(x: torch.Tensor, size_factor: torch.Tensor | None) -> torch.Tensor:
        """Log of the registered size factors, or of the library sizes; shape ``(n, 1)``."""
        if size_factor is not None:
            return torch.log(size_factor.view(-1, 1))
        return torch.log(x.sum(-1, keepdim=True))

    def _modelled_counts(self, counts: torch.Tensor) -> torch.Tensor:
        """Return the columns of ``counts`` (all registered genes) that the mixture models."""
        return counts if self.genes.numel() == 0 else counts[:, self.genes]

    def _get_inference_input(self, tensors: dict[str, torch.Tensor]) -> dict:
        counts = tensors[REGISTRY_KEYS.X_KEY]
        size_factor = tensors.get(REGISTRY_KEYS.SIZE_FACTOR_KEY)
        return {
            "x": self._modelled_counts(counts),
            "batch_index": tensors[REGISTRY_KEYS.BATCH_KEY],
            "size_factor": counts.sum(-1) if size_factor is None else size_factor,
        }

    @auto_move_data
    def inference(
        self,
        x: torch.Tensor,
        batch_index: torch.Tensor,
        size_factor: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Encode cells into the logits of ``q(cluster | x)``.

        Parameters
        ----------
        x
            Counts of the modelled genes, shape ``(n, n_input)``.
        batch_index
            Batch of each cell, shape ``(n, 1)``.
        size_factor
            Size factor of each cell; the total of ``x`` when ``None``.

        Returns
        -------
        ``logits`` (``n x K``) and ``log_size`` (``n x 1``).
        """
        library = x.sum(-1, keepdim=True)
        features = torch.log1p(x * (ENCODER_TARGET_SUM / library))
        batch = F.one_hot(batch_index.view(-1).long(), self.n_batch).to(features.dtype)
        logits = self.encoder(torch.cat([features, batch], dim=-1))
        return {"logits": logits, "log_size": self.log_size_factor(x, size_factor)}

    def _get_generative_input(self, tensors: dict, inference_outputs: dict) -> dict:
        return {
            "x": self._modelled_counts(tensors[REGISTRY_KEYS.X_KEY]),
            "log_size": inference_outputs["log_size"],
            "batch_index": tensors[REGISTRY_KEYS.BATCH_KEY],
        }

    @auto_move_data
    def generative(
        self, x: torch.Tensor, log_size: torch.Tensor, batch_index: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """Log-likelihood of each cell under each cluster (``log_likelihood``, ``n x K``)."""
        return {"log_likelihood": self.cluster_log_likelihood(x, log_size, batch_index)}

    def loss(
        self,
        tensors: dict[str, torch.Tensor],
        inference_outputs: dict[str, torch.Tensor],
        generative_outputs: dict[str, torch.Tensor],
        kl_weight: float = 1.0,
    ) -> LossOutput:
        """Negative ELBO at the exact posterior, plus the encoder's distance to that posterior.

        All clusters' likelihoods are computed for every cell, so the minibatch's exact
        posterior ``r = p(k | x)`` is at hand. The mixture is trained on the ELBO at ``q = r``,
        ``-ELBO = -sum_k r_k log p(x | k) + KL(r || pi) = -log sum_k pi_k p(x | k)`` (gradients
        through ``r`` vanish at ``q = r``), and the encoder on ``KL(r || q_encoder)`` with ``r``
        held fixed. Trained through the ELBO itself, a categorical encoder stops learning
        wherever it is confidently wrong: the ELBO's gradient for a cluster scales with the
        probability the encoder gives it.

        Returns
        -------
        :class:`~scvi.module.base.LossOutput` with ``reconstruction_loss``
        (``-sum_k r_k log p(x | k)``), ``kl_local`` (``KL(r || pi)``, scaled by ``kl_weight``
        in the loss) and the extra metric ``encoder_kl`` (``KL(r || q_encoder)``).
        """
        log_likelihood = generative_outputs["log_likelihood"]
        log_joint = log_likelihood + self.log_weights()
        log_r = log_joint - torch.logsumexp(log_joint, dim=-1, keepdim=True)
        r = torch.exp(log_r).detach()
        reconstruction = -(r * log_likelihood).sum(-1)
        kl = (r * (log_r.detach() - self.log_weights())).sum(-1)
        log_q = F.log_softmax(inference_outputs["logits"], dim=-1)
        encoder_kl = (r * (log_r.detach() - log_q)).sum(-1)
        return LossOutput(
            loss=torch.mean(reconstruction + kl_weight * kl + encoder_kl),
            reconstruction_loss=reconstruction,
            kl_local=kl,
            extra_metrics={"encoder_kl": encoder_kl.mean()},
        )

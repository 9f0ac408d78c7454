"""The linearly decoded variational auto-encoder behind :class:`lucidvi.model.LinearVI`."""

from __future__ import annotations

import math
from typing import Literal

import torch
from scvi import REGISTRY_KEYS
from scvi.distributions import NegativeBinomial, Poisson, ZeroInflatedNegativeBinomial
from scvi.module.base import BaseModuleClass, LossOutput, auto_move_data
from torch import nn
from torch.distributions import Distribution, Normal

from lucidvi._docstrings import lucidvi_dsp
from lucidvi.nn import (
    GaussianEncoder,
    LinearDecoder,
    nb_log_likelihood,
    poisson_log_likelihood,
    zinb_log_likelihood,
)

GeneLikelihood = Literal["nb", "zinb", "poisson"]
Dispersion = Literal["gene", "gene-batch"]
LatentDistribution = Literal["normal", "ln"]


def _masking_range(gene_masking: float | tuple[float, float] | None) -> tuple[float, float] | None:
    """Validate a ``gene_masking`` argument and return it as a ``(low, high)`` range.

    Parameters
    ----------
    gene_masking
        ``None``, a fraction in ``[0, 1)`` or a range ``(low, high)`` with
        ``0 <= low <= high < 1``.

    Returns
    -------
    ``None``, or the range of hidden-gene fractions.
    """
    if gene_masking is None:
        return None
    if isinstance(gene_masking, int | float):
        low = high = float(gene_masking)
    elif isinstance(gene_masking, tuple | list) and len(gene_masking) == 2:
        low, high = (float(v) for v in gene_masking)
    else:
        raise ValueError(
            f"gene_masking must be None, a fraction or a (low, high) pair, got {gene_masking!r}."
        )
    if not 0.0 <= low <= high < 1.0:
        raise ValueError(
            f"gene_masking must satisfy 0 <= low <= high < 1 (the fraction of genes hidden from "
            f"the encoder), got {gene_masking!r}."
        )
    return low, high


class LinearVAE(BaseModuleClass):
    """Variational auto-encoder with a non-linear encoder and a linear decoder (LDVAE).

    The generative model is ``x_ng ~ NB(l_n softmax(W z_n + offset_n)_g, theta_g)`` with
    ``z_n ~ N(0, I)`` and the observed library size ``l_n``; the encoder is a fully connected
    network on ``log1p(x)`` :cite:p:`Svensson20`.

    Parameters
    ----------
    n_input
        Number of genes.
    n_batch
        Number of batches (``1`` for none).
    n_latent
        Number of latent factors.
    n_hidden
        Width of the encoder's hidden layers.
    n_layers
        Number of hidden layers in the encoder.
    dropout_rate
        Dropout rate of the encoder.
    gene_likelihood
        ``"nb"``, ``"zinb"`` or ``"poisson"``.
    dispersion
        ``"gene"`` (one inverse dispersion per gene) or ``"gene-batch"`` (one per gene and batch).
    latent_distribution
        ``"normal"``, or ``"ln"`` (logistic normal: the softmax of a normal sample).
    use_batch_norm
        Whether the decoder batch-normalises the logits, as scvi-tools' LDVAE does.
    bias
        Whether the decoder has a per-gene bias.
    n_cats_per_cov
        Number of categories of each extra categorical covariate.
    n_continuous_cov
        Number of continuous covariates.
    gene_masking
        Train the encoder to embed cells from any subset of genes: ``None`` (off), a fraction
        ``r`` of genes hidden from the encoder at random in each cell, or a range ``(low,
        high)`` from which each cell draws its own fraction uniformly. The encoder then reads
        ``[log1p(x) * m, m]`` for an observation mask ``m`` (so an unobserved gene is not
        mistaken for a zero count), and the loss still reconstructs all genes.
    """

    def __init__(
        self,
        n_input: int,
        n_batch: int = 1,
        n_latent: int = 10,
        n_hidden: int = 128,
        n_layers: int = 1,
        dropout_rate: float = 0.1,
        gene_likelihood: GeneLikelihood = "nb",
        dispersion: Dispersion = "gene",
        latent_distribution: LatentDistribution = "normal",
        use_batch_norm: bool = True,
        bias: bool = False,
        n_cats_per_cov: list[int] | tuple[int, ...] = (),
        n_continuous_cov: int = 0,
        gene_masking: float | tuple[float, float] | None = None,
    ):
        super().__init__()
        if gene_likelihood not in ("nb", "zinb", "poisson"):
            raise ValueError(
                f"gene_likelihood must be 'nb', 'zinb' or 'poisson', got {gene_likelihood!r}."
            )
        if dispersion not in ("gene", "gene-batch"):
            raise ValueError(f"dispersion must be 'gene' or 'gene-batch', got {dispersion!r}.")
        if latent_distribution not in ("normal", "ln"):
            raise ValueError(
                f"latent_distribution must be 'normal' or 'ln', got {latent_distribution!r}."
            )
        self.masking_range = _masking_range(gene_masking)
        self.n_input = n_input
        self.n_batch = n_batch
        self.n_latent = n_latent
        self.gene_likelihood = gene_likelihood
        self.dispersion = dispersion
        self.latent_distribution = latent_distribution
        self.use_batch_norm = use_batch_norm
        all_categories = [n_batch, *n_cats_per_cov]
        # covariates with one category only duplicate the bias: leave them out of the decoder
        self.decoder_category_columns = [i for i, n in enumerate(all_categories) if n > 1]
        decoder_categories = [all_categories[i] for i in self.decoder_category_columns]

        encoder_input = n_input if self.masking_range is None else 2 * n_input
        self.z_encoder = GaussianEncoder(
            encoder_input, n_latent, n_hidden=n_hidden, n_layers=n_layers, dropout_rate=dropout_rate
        )
        self.decoder = LinearDecoder(
            n_latent,
            n_input,
            n_cats_per_cov=decoder_categories,
            n_continuous_cov=n_continuous_cov,
            use_batch_norm=use_batch_norm,
            bias=bias,
        )
        self.zi_decoder = (
            LinearDecoder(
                n_latent,
                n_input,
                n_cats_per_cov=decoder_categories,
                n_continuous_cov=n_continuous_cov,
                use_batch_norm=False,
                bias=True,
            )
            if gene_likelihood == "zinb"
            else None
        )
        n_dispersion_groups = n_batch if dispersion == "gene-batch" else 1
        self.px_r = nn.Parameter(torch.randn(n_dispersion_groups, n_input))

    def _get_inference_input(self, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"x": tensors[REGISTRY_KEYS.X_KEY]}

    def _get_generative_input(
        self,
        tensors: dict[str, torch.Tensor],
        inference_outputs: dict[str, torch.Tensor | Distribution],
    ) -> dict[str, torch.Tensor | None]:
        return {
            "z": inference_outputs["z"],
            "library": inference_outputs["library"],
            "batch_index": tensors[REGISTRY_KEYS.BATCH_KEY],
            "cat_covs": tensors.get(REGISTRY_KEYS.CAT_COVS_KEY),
            "cont_covs": tensors.get(REGISTRY_KEYS.CONT_COVS_KEY),
        }

    @auto_move_data
    def inference(
        self, x: torch.Tensor, n_samples: int = 1, observed_genes: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor | Distribution]:
        """Encode counts into the approximate posterior ``q(z | x)``.

        Parameters
        ----------
        x
            Counts, shape ``(n_cells, n_genes)``.
        n_samples
            Number of posterior samples of ``z``.
        observed_genes
            Boolean mask of shape ``(n_genes,)`` or ``(n_cells, n_genes)``: the genes the encoder
            may read (a gene panel); needs a module built with ``gene_masking``. ``None``: all
            genes in evaluation mode, random masks in training mode.

        Returns
        -------
        Dictionary with ``qz`` (the Normal posterior of the untransformed latent), ``z_raw`` (a
        sample of it), ``z`` (that sample, softmax-transformed for ``"ln"``) and ``library``
        (log library size).
        """
        library = torch.log(x.sum(-1, keepdim=True))
        qz = self.z_encoder(self._encoder_input(x, observed_genes))
        z_raw = qz.rsample((n_samples,)) if n_samples > 1 else qz.rsample()
        z = torch.softmax(z_raw, dim=-1) if self.latent_distribution == "ln" else z_raw
        if n_samples > 1:
            library = library.expand(n_samples, *library.shape)
        return {"qz": qz, "z": z, "z_raw": z_raw, "library": library, "ql": None}

    def _encoder_input(self, x: torch.Tensor, observed_genes: torch.Tensor | None) -> torch.Tensor:
        log_counts = torch.log1p(x)
        if self.masking_range is None:
            if observed_genes is not None:
                raise ValueError(
                    "This model was trained without gene masking, so its encoder needs all genes. "
                    "Train it with `gene_masking=...` to embed gene panels."
                )
            return log_counts
        if observed_genes is not None:
            mask = observed_genes.to(x.device, x.dtype).expand_as(x)
        elif self.training:
            low, high = self.masking_range
            hidden_fraction = low + (high - low) * torch.rand(x.shape[0], 1, device=x.device)
            mask = (torch.rand_like(x) >= hidden_fraction).to(x.dtype)
        else:
            mask = torch.ones_like(x)
        return torch.cat([log_counts * mask, mask], dim=-1)

    def _decoder_categories(
        self, batch_index: torch.Tensor, cat_covs: torch.Tensor | None
    ) -> torch.Tensor | None:
        if not self.decoder_category_columns:
            return None
        codes = batch_index if cat_covs is None else torch.cat([batch_index, cat_covs], dim=-1)
        return codes[:, self.decoder_category_columns]

    @auto_move_data
    def generative(
        self,
        z: torch.Tensor,
        library: torch.Tensor,
        batch_index: torch.Tensor,
        cat_covs: torch.Tensor | None = None,
        cont_covs: torch.Tensor | None = None,
        transform_batch: int | None = None,
    ) -> dict[str, torch.Tensor | Distribution | None]:
        """Decode latent factors into the count distribution ``p(x | z)``.

        Parameters
        ----------
        z
            Latent factors, shape ``(..., n_cells, n_latent)``.
        library
            Log library size, shape ``(..., n_cells, 1)``.
        batch_index
            Batch codes, shape ``(n_cells, 1)``.
        cat_covs
            Extra categorical covariate codes, shape ``(n_cells, n_cat_covs)``.
        cont_covs
            Continuous covariates, shape ``(n_cells, n_continuous_cov)``.
        transform_batch
            Decode every cell as if it came from this batch code.

        Returns
        -------
        Dictionary with ``px`` (an scvi-tools distribution) and ``pz`` (the prior), both
        ``None`` in training mode, where the loss needs only the log-space tensors that are
        always returned: ``log_mu``, ``log_theta``, ``theta_index`` and ``zi_logits``.
        """
        if transform_batch is not None:
            batch_index = torch.full_like(batch_index, int(transform_batch))
        categories = self._decoder_categories(batch_index, cat_covs)
        logits = self.decoder(z, categories, cont_covs)
        log_scale = torch.log_softmax(logits, dim=-1)
        log_mu = log_scale + library
        theta_index = batch_index[:, 0].long() if self.dispersion == "gene-batch" else None
        log_theta = self.px_r
        zi_logits = self.zi_decoder(z, categories, cont_covs) if self.zi_decoder else None
        px = pz = None
        if not self.training:  # the training loss only needs the log-space tensors
            px = self._count_distribution(log_scale, log_mu, log_theta, theta_index, zi_logits)
            pz = Normal(torch.zeros_like(z), torch.ones_like(z), validate_args=False)
        return {
            "px": px,
            "pz": pz,
            "pl": None,
            "log_mu": log_mu,
            "log_theta": log_theta,
            "theta_index": theta_index,
            "zi_logits": zi_logits,
        }

    def _count_distribution(
        self,
        log_scale: torch.Tensor,
        log_mu: torch.Tensor,
        log_theta: torch.Tensor,
        theta_index: torch.Tensor | None,
        zi_logits: torch.Tensor | None,
    ) -> Distribution:
        scale, mu = torch.exp(log_scale), torch.exp(log_mu)
        if self.gene_likelihood == "poisson":
            return Poisson(rate=mu, scale=scale)
        theta = torch.exp(log_theta[0] if theta_index is None else log_theta[theta_index])
        if self.gene_likelihood == "zinb":
            return ZeroInflatedNegativeBinomial(
                mu=mu, theta=theta, zi_logits=zi_logits, scale=scale
            )
        return NegativeBinomial(mu=mu, theta=theta, scale=scale)

    def log_likelihood(
        self, x: torch.Tensor, generative_outputs: dict[str, torch.Tensor | None]
    ) -> torch.Tensor:
        """Log-likelihood of each cell's counts under the decoded distribution.

        Parameters
        ----------
        x
            Counts, shape ``(n_cells, n_genes)``.
        generative_outputs
            Output of :meth:`generative`.

        Returns
        -------
        Tensor of shape ``(n_cells,)``.
        """
        log_mu = generative_outputs["log_mu"]
        if self.gene_likelihood == "poisson":
            return poisson_log_likelihood(x, log_mu)
        log_theta, theta_index = generative_outputs["log_theta"], generative_outputs["theta_index"]
        # training data were checked by setup_anndata; anything else is checked here
        validate = not self.training
        if self.gene_likelihood == "zinb":
            zi_logits = generative_outputs["zi_logits"]
            return zinb_log_likelihood(x, log_mu, log_theta, zi_logits, theta_index, validate)
        return nb_log_likelihood(x, log_mu, log_theta, theta_index, validate)

    @lucidvi_dsp.dedent
    def loss(
        self,
        tensors: dict[str, torch.Tensor],
        inference_outputs: dict[str, torch.Tensor | Distribution],
        generative_outputs: dict[str, torch.Tensor | Distribution | None],
        kl_weight: float = 1.0,
    ) -> LossOutput:
        """Negative ELBO, with the KL term weighted by ``kl_weight`` (annealed by the plan).

        Parameters
        ----------
        %(loss_inputs)s
        kl_weight
            Weight of the KL divergence.

        Returns
        -------
        :class:`~scvi.module.base.LossOutput` with per-cell reconstruction loss and KL.
        """
        x = tensors[REGISTRY_KEYS.X_KEY]
        reconstruction_loss = -self.log_likelihood(x, generative_outputs)
        qz = inference_outputs["qz"]
        variance = qz.scale.square()
        kl_z = 0.5 * (qz.loc.square() + variance - torch.log(variance) - 1.0).sum(-1)
        loss = torch.mean(reconstruction_loss + kl_weight * kl_z)
        return LossOutput(
            loss=loss,
            reconstruction_loss=reconstruction_loss,
            kl_local={"kl_divergence_z": kl_z},
        )

    @torch.inference_mode()
    def sample(
        self,
        tensors: dict[str, torch.Tensor],
        n_samples: int = 1,
        generative_kwargs: dict | None = None,
    ) -> torch.Tensor:
        """Draw counts from the posterior predictive distribution.

        Parameters
        ----------
        tensors
            The minibatch.
        n_samples
            Number of samples per cell.
        generative_kwargs
            Passed to :meth:`generative` (e.g. ``transform_batch``).

        Returns
        -------
        Tensor of shape ``(n_cells, n_genes)``, or ``(n_cells, n_genes, n_samples)``.
        """
        _, generative_outputs = self.forward(
            tensors,
            inference_kwargs={"n_samples": n_samples},
            generative_kwargs=generative_kwargs,
            compute_loss=False,
        )
        samples = generative_outputs["px"].sample()
        return (samples.permute(1, 2, 0) if n_samples > 1 else samples).cpu()

    @torch.inference_mode()
    def marginal_ll(
        self, tensors: dict[str, torch.Tensor], n_mc_samples: int, return_mean: bool = False
    ) -> torch.Tensor | float:
        """Importance-sampled marginal log-likelihood ``log p(x)`` with ``q(z | x)`` as proposal.

        Parameters
        ----------
        tensors
            The minibatch.
        n_mc_samples
            Number of importance samples.
        return_mean
            Return the mean over cells instead of one value per cell.

        Returns
        -------
        Tensor of shape ``(n_cells,)`` or a float.
        """
        log_weights = []
        for _ in range(n_mc_samples):
            inference_outputs, _, losses = self.forward(tensors)
            qz, z_raw = inference_outputs["qz"], inference_outputs["z_raw"]
            log_prior = Normal(0.0, 1.0, validate_args=False).log_prob(z_raw)
            log_q = qz.log_prob(z_raw)
            log_weights.append(
                -losses.reconstruction_loss["reconstruction_loss"] + (log_prior - log_q).sum(-1)
            )
        stacked = torch.stack(log_weights)
        log_px = torch.logsumexp(stacked, dim=0) - math.log(n_mc_samples)
        return log_px.mean().item() if return_mean else log_px.cpu()

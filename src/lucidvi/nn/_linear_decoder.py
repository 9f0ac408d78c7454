"""A linear decoder from latent factors (plus covariates) to gene logits."""

from __future__ import annotations

import torch
from torch import nn


class LinearDecoder(nn.Module):
    """Map latent factors to per-gene logits with a single linear layer.

    ``logits = BN(z @ W.T + b + sum_c E_c[cat_c] + cont @ C.T)``, where ``BN`` is an optional
    batch normalisation over genes, ``E_c`` one additive gene vector per category of each
    categorical covariate (the batch is the first) and ``C`` the effects of continuous
    covariates. In evaluation mode the batch normalisation is affine, so the logits are exactly
    ``z @ loadings.T + offset`` (see :meth:`affine`).

    Parameters
    ----------
    n_latent
        Number of latent factors.
    n_output
        Number of genes.
    n_cats_per_cov
        Number of categories of each categorical covariate (batch first); empty for none.
        Leave out covariates with a single category: they would only duplicate the bias.
    n_continuous_cov
        Number of continuous covariates.
    use_batch_norm
        Whether to batch-normalise the logits (as scvi-tools' LDVAE does).
    bias
        Whether the linear layer has a per-gene bias.
    """

    def __init__(
        self,
        n_latent: int,
        n_output: int,
        n_cats_per_cov: list[int] | tuple[int, ...] = (),
        n_continuous_cov: int = 0,
        use_batch_norm: bool = True,
        bias: bool = False,
    ):
        super().__init__()
        self.factor_regressor = nn.Linear(n_latent, n_output, bias=bias)
        self.n_cats_per_cov = [int(n) for n in n_cats_per_cov]
        offsets = torch.tensor([0, *self.n_cats_per_cov[:-1]], dtype=torch.long).cumsum(0)
        self.register_buffer("category_offsets", offsets, persistent=False)
        n_categories = sum(self.n_cats_per_cov)
        self.category_effects = (
            nn.Parameter(torch.zeros(n_categories, n_output)) if n_categories else None
        )
        self.continuous_effects = (
            nn.Linear(n_continuous_cov, n_output, bias=False) if n_continuous_cov else None
        )
        self.batch_norm = (
            nn.BatchNorm1d(n_output, momentum=0.01, eps=0.001) if use_batch_norm else None
        )

    def covariate_term(
        self, categories: torch.Tensor | None, continuous: torch.Tensor | None
    ) -> torch.Tensor | float:
        """Additive covariate contribution to the pre-normalisation logits.

        Parameters
        ----------
        categories
            Category codes, shape ``(n_cells, n_categorical)`` with columns matching
            ``n_cats_per_cov``.
        continuous
            Continuous covariates, shape ``(n_cells, n_continuous_cov)``.

        Returns
        -------
        Tensor of shape ``(n_cells, n_output)``, or ``0.0`` without covariates.
        """
        term: torch.Tensor | float = 0.0
        if self.category_effects is not None and categories is not None:
            codes = categories.long() + self.category_offsets
            term = self.category_effects[codes].sum(-2)
        if self.continuous_effects is not None and continuous is not None:
            term = term + self.continuous_effects(continuous)
        return term

    def forward(
        self,
        z: torch.Tensor,
        categories: torch.Tensor | None = None,
        continuous: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Return gene logits of shape ``(..., n_cells, n_output)``."""
        hidden = self.factor_regressor(z) + self.covariate_term(categories, continuous)
        if self.batch_norm is None:
            return hidden
        if hidden.dim() == 2:
            return self.batch_norm(hidden)
        flat = self.batch_norm(hidden.reshape(-1, hidden.shape[-1]))
        return flat.reshape(hidden.shape)

    @torch.no_grad()
    def affine(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Fold the evaluation-mode batch normalisation into the linear map.

        Returns
        -------
        loadings
            Shape ``(n_output, n_latent)``: the effect of each latent factor on each gene's logit.
        scale
            Shape ``(n_output,)``: the factor multiplying covariate terms.
        shift
            Shape ``(n_output,)``: the constant part of the offset.

        Notes
        -----
        ``logits = z @ loadings.T + scale * covariate_term + shift`` in evaluation mode.
        """
        weight = self.factor_regressor.weight
        bias = self.factor_regressor.bias
        bias = torch.zeros_like(weight[:, 0]) if bias is None else bias
        if self.batch_norm is None:
            return weight.clone(), torch.ones_like(bias), bias.clone()
        bn = self.batch_norm
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        shift = (bias - bn.running_mean) * scale + bn.bias
        return weight * scale[:, None], scale, shift

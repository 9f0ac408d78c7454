r"""Count (and Gaussian expression) log-likelihoods summed over genes, written for speed.

The negative binomial (NB) log-likelihood of a count ``x`` with mean ``mu`` and inverse
dispersion ``theta`` is

.. math::

    \log p(x) = x \log\mu + \theta\log\theta - (x + \theta)\log(\mu + \theta)
        + \log\Gamma(x + \theta) - \log\Gamma(\theta) - \log\Gamma(x + 1).

The Gamma-function terms dominate the cost of the textbook evaluation (``lgamma`` forward and
``digamma`` backward on every entry). For integer counts they are a sum of logarithms,
``log Gamma(x + theta) - log Gamma(theta) = sum_{j < x} log(theta + j)``, and ``theta`` is shared
by all cells of a dispersion group, so this module tabulates
``T[k, g] = sum_{j < k} log(theta_g + j) - log k!`` and its derivative for ``k <= K`` once per
minibatch (cumulative sums over ``K x n_genes`` entries) and gathers ``T[x_ng, g]``; the rare
counts above ``K`` are corrected exactly with ``lgamma``/``digamma`` on those entries only. The
gradients are written out by hand, which replaces some twenty recorded elementwise operations
by a few. The result is exact (to floating point) for integer counts.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F

#: Counts up to this value are looked up in the per-minibatch table; larger ones use lgamma.
TABLE_MAX_COUNT = 64


def _check_integer(x: torch.Tensor) -> None:
    if not torch.equal(torch.round(x), x):
        raise ValueError("The count likelihoods need integer counts; x has non-integer values.")


def _gamma_tables(log_theta: torch.Tensor, table_max: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Values and log-theta derivatives of the Gamma-function terms for counts ``k <= K``.

    Returns two tables of shape ``(n_groups * (K + 1), n_genes)``: the values
    ``log Gamma(theta + k) - log Gamma(theta) - log k! = sum_{j<k} log(theta + j) - log k!`` and
    their derivatives in ``log theta``, ``sum_{j<k} theta / (theta + j)``.
    """
    n_groups, n_genes = log_theta.shape
    steps = torch.arange(table_max, dtype=log_theta.dtype, device=log_theta.device)
    theta = torch.exp(log_theta).unsqueeze(-2)  # (groups, 1, genes)
    shifted = theta + steps[:, None]
    values = log_theta.new_zeros(n_groups, table_max + 1, n_genes)  # row k = 0 stays 0
    derivatives = torch.zeros_like(values)
    torch.cumsum(torch.log(shifted), dim=-2, out=values[:, 1:])
    values[:, 1:] -= torch.lgamma(steps + 2.0)[:, None]  # log k! for k = step + 1
    torch.cumsum(theta / shifted, dim=-2, out=derivatives[:, 1:])
    return values.view(-1, n_genes), derivatives.view(-1, n_genes)


class _NegativeBinomial(torch.autograd.Function):
    """NB log-likelihood per cell with hand-written gradients (see :func:`nb_log_likelihood`).

    Autograd would record and replay about twenty elementwise operations over the minibatch;
    the analytic gradients take a few, computed in the forward pass:
    ``d/d log(mu) = theta (x - mu) / (mu + theta)`` and
    ``d/d log(theta) = -d/d log(mu) - theta softplus(log(mu / theta)) + theta (psi(x + theta) -
    psi(theta))``, the digamma difference being ``sum_{j<x} theta / (theta + j)``.
    """

    @staticmethod
    def forward(ctx, x, log_mu, log_theta, theta_index, table_max):
        log_theta_cells = log_theta[0] if theta_index is None else log_theta[theta_index]
        theta_cells = torch.exp(log_theta_cells)
        d = log_mu - log_theta_cells
        softplus_d = F.softplus(d)
        x_theta = x + theta_cells
        value = torch.sum(x * d - x_theta * softplus_d, dim=-1)

        rows = x.clamp(max=table_max).long()
        if theta_index is not None:
            rows += (theta_index * (table_max + 1))[:, None]
        values, derivatives = _gamma_tables(log_theta, table_max)
        value += values.gather(0, rows).sum(-1)

        large_cells, large_genes = torch.nonzero(x > table_max, as_tuple=True)
        if large_cells.numel():  # counts above the table: exact correction with lgamma
            theta = (
                theta_cells[..., large_genes]
                if theta_index is None
                else theta_cells[large_cells, large_genes]
            )
            counts = x[large_cells, large_genes]
            top = torch.tensor(float(table_max), dtype=x.dtype, device=x.device)
            correction = (
                torch.lgamma(counts + theta)
                - torch.lgamma(theta + top)
                - torch.lgamma(counts + 1.0)
                + torch.lgamma(top + 1.0)
            )
            value.index_add_(0, large_cells, correction)

        if ctx.needs_input_grad[1] or ctx.needs_input_grad[2]:
            grad_log_mu = x - x_theta * torch.sigmoid(d)
            grad_log_theta = derivatives.gather(0, rows)
            grad_log_theta -= grad_log_mu
            grad_log_theta -= theta_cells * softplus_d
            if large_cells.numel():
                grad_log_theta.index_put_(
                    (large_cells, large_genes),
                    theta * (torch.digamma(counts + theta) - torch.digamma(theta + top)),
                    accumulate=True,
                )
            ctx.save_for_backward(grad_log_mu, grad_log_theta, theta_index)
            ctx.n_groups = log_theta.shape[0]
        return value

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, upstream):
        grad_log_mu, grad_log_theta, theta_index = ctx.saved_tensors
        grad_mu = upstream[:, None] * grad_log_mu
        if theta_index is None:
            grad_theta = (upstream @ grad_log_theta).unsqueeze(0)
        else:
            grad_theta = torch.zeros(
                ctx.n_groups,
                grad_log_theta.shape[-1],
                dtype=upstream.dtype,
                device=upstream.device,
            ).index_add_(0, theta_index, upstream[:, None] * grad_log_theta)
        return None, grad_mu, grad_theta, None, None


def log_factorial_sum(x: torch.Tensor) -> torch.Tensor:
    """Return ``sum_g log(x_g!)`` per row.

    Parameters
    ----------
    x
        Counts, shape ``(n_cells, n_genes)``.

    Returns
    -------
    Tensor of shape ``(n_cells,)``.
    """
    with torch.no_grad():
        return torch.lgamma(x + 1.0).sum(-1)


def poisson_log_likelihood(x: torch.Tensor, log_mu: torch.Tensor) -> torch.Tensor:
    """Poisson log-likelihood summed over genes.

    Parameters
    ----------
    x
        Counts, shape ``(n_cells, n_genes)``.
    log_mu
        Log of the Poisson rate, same shape as ``x``.

    Returns
    -------
    Tensor of shape ``(n_cells,)``.
    """
    return (x * log_mu - torch.exp(log_mu)).sum(-1) - log_factorial_sum(x)


def nb_log_likelihood(
    x: torch.Tensor,
    log_mu: torch.Tensor,
    log_theta: torch.Tensor,
    theta_index: torch.Tensor | None = None,
    validate: bool = True,
) -> torch.Tensor:
    """Negative binomial log-likelihood summed over genes (integer counts).

    Parameters
    ----------
    x
        Integer counts, shape ``(n_cells, n_genes)``.
    log_mu
        Log of the NB mean, same shape as ``x``.
    log_theta
        Log inverse dispersion, shape ``(n_groups, n_genes)``: one row per dispersion group
        (a single row for gene-level dispersion, one per batch for gene-batch dispersion).
    theta_index
        Group of each cell, shape ``(n_cells,)`` integer; ``None`` when ``log_theta`` has one row.
    validate
        Check that ``x`` holds integers (skip it only for data checked beforehand: non-integer
        counts would be truncated silently).

    Returns
    -------
    Tensor of shape ``(n_cells,)``.

    Raises
    ------
    ValueError
        If ``validate`` and ``x`` has non-integer values.
    """
    if validate:
        _check_integer(x)
    if log_theta.dim() != 2 or log_theta.shape[-1] != x.shape[-1]:
        raise ValueError(f"log_theta must have shape (n_groups, {x.shape[-1]}).")
    # With d = log(mu / theta), x log mu + theta log theta - (x + theta) log(mu + theta)
    # = x d - (x + theta) softplus(d): one softplus, stable for any scale.
    return _NegativeBinomial.apply(x, log_mu, log_theta, theta_index, TABLE_MAX_COUNT)


def zinb_log_likelihood(
    x: torch.Tensor,
    log_mu: torch.Tensor,
    log_theta: torch.Tensor,
    zi_logits: torch.Tensor,
    theta_index: torch.Tensor | None = None,
    validate: bool = True,
) -> torch.Tensor:
    """Zero-inflated negative binomial log-likelihood summed over genes.

    Parameters
    ----------
    x
        Counts, shape ``(n_cells, n_genes)``.
    log_mu
        Log of the NB mean, same shape as ``x``.
    log_theta
        Log inverse dispersion, shape ``(n_groups, n_genes)``.
    zi_logits
        Logits of the zero-inflation probability, same shape as ``x``.
    theta_index
        Group of each cell, shape ``(n_cells,)``; ``None`` when ``log_theta`` has one row.
    validate
        Check that ``x`` holds integers (see :func:`nb_log_likelihood`).

    Returns
    -------
    Tensor of shape ``(n_cells,)``.
    """
    log_theta_cells = log_theta[0] if theta_index is None else log_theta[theta_index]
    theta_cells = torch.exp(log_theta_cells)
    log_theta_mu = log_theta_cells + F.softplus(log_mu - log_theta_cells)
    # log NB(0) = theta * (log theta - log(theta + mu))
    log_nb_zero = theta_cells * (log_theta_cells - log_theta_mu)
    softplus_pi = F.softplus(-zi_logits)
    is_zero = x == 0
    zero_case = F.softplus(log_nb_zero - zi_logits) - softplus_pi
    nonzero_case = -zi_logits - softplus_pi
    mix = torch.where(is_zero, zero_case, nonzero_case).sum(-1)
    # NB log-likelihood of the non-zero entries (zero entries contribute log NB(0) there)
    nb_all = nb_log_likelihood(x, log_mu, log_theta, theta_index, validate)
    nb_zero_part = (log_nb_zero * is_zero).sum(-1)
    return mix + nb_all - nb_zero_part


def expression_log_likelihood(
    likelihood: Literal["nb", "gaussian"],
    x: torch.Tensor,
    linear_predictor: torch.Tensor,
    log_scale: torch.Tensor,
    index: torch.Tensor | None = None,
    validate: bool = True,
) -> torch.Tensor:
    r"""Log-likelihood of each cell's expression given its linear predictor, summed over genes.

    ``"nb"``: the counts are negative binomial with mean
    :math:`l_i\, \mathrm{softmax}_g(\eta_i)`, where :math:`\eta_i` is the linear predictor and
    the library size :math:`l_i` the cell's observed total, and inverse dispersion
    ``exp(log_scale)`` (:func:`nb_log_likelihood`). ``"gaussian"``: the values are normal with
    mean :math:`\eta_i` and standard deviation ``exp(log_scale)``.

    Parameters
    ----------
    likelihood
        ``"nb"`` (counts) or ``"gaussian"`` (continuous values).
    x
        Expression, shape ``(n, n_genes)``.
    linear_predictor
        Logits (``"nb"``) or means (``"gaussian"``), same shape.
    log_scale
        Log inverse dispersion (``"nb"``) or log standard deviation (``"gaussian"``), shape
        ``(n_groups, n_genes)``.
    index
        Row of ``log_scale`` for each cell, shape ``(n,)``; ``None`` when it has one row.
    validate
        Check that counts are integers (``"nb"``; see :func:`nb_log_likelihood`).

    Returns
    -------
    Tensor of shape ``(n,)``.
    """
    if likelihood == "gaussian":
        log_sigma = log_scale[0] if index is None else log_scale[index]
        z = (x - linear_predictor) * torch.exp(-log_sigma)
        return (-0.5 * z.square() - log_sigma - 0.5 * math.log(2 * math.pi)).sum(-1)
    library = torch.log(x.sum(-1, keepdim=True))
    log_mu = torch.log_softmax(linear_predictor, dim=-1) + library
    return nb_log_likelihood(x, log_mu, log_scale, index, validate=validate)

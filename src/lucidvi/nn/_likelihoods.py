r"""Count log-likelihoods summed over genes, written for speed.

The negative binomial (NB) log-likelihood of a count ``x`` with mean ``mu`` and inverse
dispersion ``theta`` is

.. math::

    \log p(x) = x \log\mu + \theta\log\theta - (x + \theta)\log(\mu + \theta)
        + \log\Gamma(x + \theta) - \log\Gamma(\theta) - \log\Gamma(x + 1).

The Gamma-function terms dominate the cost of the textbook evaluation (``lgamma`` forward and
``digamma`` backward on every entry). For integer counts they are a sum of logarithms,
``log Gamma(x + theta) - log Gamma(theta) = sum_{j < x} log(theta + j)``, and ``theta`` is shared
by all cells of a dispersion group, so this module tabulates
``T[k, g] = sum_{j < k} log(theta_g + j) - log k!`` for ``k <= K`` once per minibatch (a
cumulative sum of ``K x n_genes`` logarithms) and gathers ``T[x_ng, g]``; the rare counts above
``K`` are corrected exactly with ``lgamma`` on those entries only. ``theta log theta`` is
likewise computed once per gene. The result is exact (to floating point) for integer counts.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

#: Counts up to this value are looked up in the per-minibatch table; larger ones use lgamma.
TABLE_MAX_COUNT = 64


def _check_integer(x: torch.Tensor) -> None:
    if not torch.equal(torch.round(x), x):
        raise ValueError("The count likelihoods need integer counts; x has non-integer values.")


def _gamma_ratio_table(log_theta: torch.Tensor, table_max: int) -> torch.Tensor:
    """``T[group, k, g] = log Gamma(theta + k) - log Gamma(theta) - log k!`` for ``k <= K``."""
    steps = torch.arange(table_max, dtype=log_theta.dtype, device=log_theta.device)
    logs = torch.log(torch.exp(log_theta).unsqueeze(-2) + steps[:, None])
    log_factorial = torch.lgamma(steps + 2.0)  # log k! for k = step + 1
    ratio = torch.cumsum(logs, dim=-2) - log_factorial[:, None]
    return F.pad(ratio, (0, 0, 1, 0))  # row k = 0 is zero


def _lgamma_terms(
    x: torch.Tensor,
    log_theta: torch.Tensor,
    theta_index: torch.Tensor | None,
    table_max: int = TABLE_MAX_COUNT,
) -> torch.Tensor:
    """Per cell ``sum_g log Gamma(x + theta) - log Gamma(theta) - log x!``."""
    n_groups = log_theta.shape[0]
    table = _gamma_ratio_table(log_theta, table_max).reshape(n_groups * (table_max + 1), -1)
    rows = x.clamp(max=table_max).long()
    if theta_index is not None:
        rows = rows + (theta_index * (table_max + 1))[:, None]
    terms = table.gather(0, rows).sum(-1)
    cells, genes = torch.nonzero(x > table_max, as_tuple=True)
    if cells.numel():
        group = 0 if theta_index is None else theta_index[cells]
        theta = torch.exp(log_theta[group, genes])
        values = x[cells, genes]
        correction = (
            torch.lgamma(values + theta)
            - torch.lgamma(theta + table_max)
            - torch.lgamma(values + 1.0)
            + torch.lgamma(torch.tensor(table_max + 1.0, dtype=x.dtype, device=x.device))
        )
        terms = terms.index_add(0, cells, correction)
    return terms


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
    log_theta_cells = log_theta[0] if theta_index is None else log_theta[theta_index]
    # With d = log(mu / theta), x log mu + theta log theta - (x + theta) log(mu + theta)
    # = x d - (x + theta) softplus(d): one softplus, stable for any scale.
    d = log_mu - log_theta_cells
    dense = (x * d - (x + torch.exp(log_theta_cells)) * F.softplus(d)).sum(-1)
    return dense + _lgamma_terms(x, log_theta, theta_index)


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

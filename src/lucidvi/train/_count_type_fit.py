r"""One cell type's count profile and spread at their maximum likelihood, by Newton steps.

The objective of :func:`lucidvi.train.refit_intrinsic` for a type's ``n`` cells is

.. math::

    F(p, s) = -\frac1n \sum_i \ell_i(p, s) - \frac1n \sum_g \log \mathrm{softmax}(p)_g
        + \frac{(\sum_g p_g - S_0)^2}{2G} + \frac{1}{2n} \sum_g (s_g / 10)^2,

with :math:`\ell_i` the negative binomial log-likelihood of cell :math:`i`'s counts at mean
:math:`l_i \mathrm{softmax}(p + f_i)` (:math:`f_i` its fixed terms, :math:`l_i` its library) and
inverse dispersions :math:`e^{s}`; the last term only when the spread is fitted. Its gradient
and Hessian are sums over cells of closed-form terms, accumulated over chunks of cells in one
pass per iteration. The Hessian in the profile is :math:`\mathrm{diag}(\cdot) + B + B^\top`
with :math:`B = \sum_i q_i w_i^\top`, :math:`q_i` the cell's softmax; :math:`B` and the mixed
block are the outer product of the mean :math:`q` with the exact sums, plus the covariance of
the cells' :math:`q_i` with their terms, taken over all cells or, when that product would be
large (many genes), over a fixed random subset of them (an unbiased estimate, which then only
slows convergence from quadratic to linear). The Hessian in the spread is diagonal (the genes'
spreads are separate given the profile). The Gamma-function terms of the likelihood depend on
the counts only through how many cells have each count of each gene, counted once.

Damped Newton steps (the profile block by Cholesky of its Schur complement) with a
backtracking line search on :math:`F` then converge in a handful of passes from the trained
values.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

# Counts up to this value enter the Gamma-function terms through tables; larger ones exactly.
_TABLE_MAX = 64
# Standard deviation of the normal prior on the log inverse dispersions (see the objective).
_LOG_SCALE_PRIOR_SD = 10.0
# When the fixed terms vary between cells, the Hessian's outer products (cells x genes^2) are
# taken over n_cells * _HESSIAN_GENES / n_genes random cells (all when fewer; at least
# _MIN_HESSIAN_CELLS): about the cost of the rest of a pass.
_HESSIAN_GENES = 256
_MIN_HESSIAN_CELLS = 256
# Stop once every gradient component is below this (the mean objective, nats per cell).
_GRADIENT_TOLERANCE = 1e-6
_MAX_ITERATIONS = 100
# A Newton step changes no log inverse dispersion by more than this (nats), and no profile
# entry by more than _MAX_PROFILE_STEP (the whole step shrinks): far from the optimum, or
# along a gene whose likelihood is flat, a full step would overshoot.
_MAX_SCALE_STEP = 2.0
_MAX_PROFILE_STEP = 5.0
# Rows per step of a pass: a few arrays of this many rows stay in the processor's cache.
_PASS_ROWS = 128
# softplus(d) = d beyond this (the rest, log1p(e^-d), is below double precision's resolution).
_SOFTPLUS_LINEAR = 40.0
# Armijo's sufficient decrease, halvings of a step before the damping grows, and the
# Levenberg-Marquardt damping (relative to the Hessian's diagonal).
_ARMIJO = 1e-4
_HALVINGS = 4
_DAMPING_START, _DAMPING_MAX = 1e-6, 1e8
# Changes of the objective below this relative size are rounding, not an increase.
_ROUNDING = 1e-13


@dataclass
class TypeCells:
    """The counts of one type's cells and a way to build their fixed terms, in chunks.

    Parameters
    ----------
    counts
        Counts per chunk of cells, each ``(cells, genes)`` (any float dtype).
    fixed
        Given a chunk's position, its fixed terms (``(cells, genes)``; batch offsets and the
        calibrated niche) in float64.
    varying
        Whether the fixed terms differ between cells; when not, every cell has the same
        softmax and the Hessian's outer products follow from sums alone.
    """

    counts: Sequence[torch.Tensor]
    fixed: Callable[[int], torch.Tensor]
    varying: bool = True

    @property
    def n_cells(self) -> int:
        """Number of cells."""
        return sum(len(chunk) for chunk in self.counts)


@dataclass
class _Pass:
    """The objective, gradient and Hessian blocks at one point."""

    value: float
    grad_profile: torch.Tensor
    grad_scale: torch.Tensor | None = None
    hess_profile: torch.Tensor | None = None
    hess_mixed: torch.Tensor | None = None
    hess_scale: torch.Tensor | None = None


class _Tables:
    """How many cells have each count of each gene, and the Gamma-function terms from it."""

    def __init__(self, cells: TypeCells):
        n_genes = cells.counts[0].shape[1]
        device = cells.counts[0].device
        self.histogram = torch.zeros(_TABLE_MAX + 1, n_genes, dtype=torch.float64, device=device)
        large_genes, large_counts = [], []
        for chunk in cells.counts:
            chunk = chunk.to(torch.float64)
            small = chunk.clamp(max=_TABLE_MAX).long()
            self.histogram.scatter_add_(0, small, torch.ones_like(chunk))
            rows, genes = torch.nonzero(chunk > _TABLE_MAX, as_tuple=True)
            large_genes.append(genes)
            large_counts.append(chunk[rows, genes])
        self.large_genes = torch.cat(large_genes)
        self.large_counts = torch.cat(large_counts)
        self.steps = torch.arange(_TABLE_MAX, dtype=torch.float64, device=device)[:, None]

    def terms(self, log_theta: torch.Tensor) -> tuple[float, torch.Tensor, torch.Tensor]:
        """Sum over cells of the Gamma terms, and of their first two derivatives in log theta.

        Per entry: ``log Gamma(x + theta) - log Gamma(theta) - log x!``; its derivative
        ``sum_{j<x} theta / (theta + j)`` and second derivative ``sum_{j<x} theta j /
        (theta + j)^2``.
        """
        theta = log_theta.exp()
        shifted = theta + self.steps  # (K, genes): theta + j
        zero = torch.zeros_like(theta)[None]
        logs = torch.cat([zero, torch.cumsum(torch.log(shifted), 0)])
        logs -= torch.lgamma(torch.arange(_TABLE_MAX + 1.0, dtype=theta.dtype) + 1.0).to(
            theta.device
        )[:, None]
        first = torch.cat([zero, torch.cumsum(theta / shifted, 0)])
        second = torch.cat([zero, torch.cumsum(theta * self.steps / shifted**2, 0)])
        value = float((self.histogram * logs).sum())
        grad = (self.histogram * first).sum(0)
        curvature = (self.histogram * second).sum(0)
        if len(self.large_counts):  # the table stops at K: the rest of the sums exactly
            genes, counts = self.large_genes, self.large_counts
            t = theta[genes]
            top = torch.full_like(t, float(_TABLE_MAX))
            value += float(
                (
                    torch.lgamma(counts + t)
                    - torch.lgamma(t + top)
                    - torch.lgamma(counts + 1)
                    + torch.lgamma(top + 1)
                ).sum()
            )
            digamma = t * (torch.digamma(counts + t) - torch.digamma(t + top))
            trigamma = t**2 * (torch.polygamma(1, t + top) - torch.polygamma(1, counts + t))
            grad.index_add_(0, genes, digamma)
            curvature.index_add_(0, genes, digamma - trigamma)
        return value, grad, curvature


def fit_type_counts(
    cells: TypeCells,
    profile: torch.Tensor,
    log_scale: torch.Tensor,
    fit_scale: bool,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Minimize the objective of the module docstring from the given values.

    Parameters
    ----------
    cells
        The type's counts and fixed terms.
    profile
        Starting profile, ``(n_genes,)``.
    log_scale
        Starting log inverse dispersions, ``(1, n_genes)``.
    fit_scale
        Fit the log inverse dispersions too (else they stay).
    seed
        Seed of the subset of cells behind the Hessian's outer products, when not all.

    Returns
    -------
    The fitted profile and log inverse dispersions, float64.

    Raises
    ------
    RuntimeError
        If the objective or its derivatives are not finite at the start.
    """
    profile = profile.detach().to(torch.float64).clone()
    log_scale = log_scale.detach().to(torch.float64).reshape(-1).clone()
    n_cells, n_genes = cells.n_cells, len(profile)
    budget = max(_MIN_HESSIAN_CELLS, n_cells * _HESSIAN_GENES // n_genes)
    subset = None
    if not cells.varying or n_cells > budget:  # none: no outer products needed
        subset = torch.zeros(n_cells, dtype=torch.bool)
        if cells.varying:
            generator = torch.Generator().manual_seed(seed)
            subset[torch.randperm(n_cells, generator=generator)[:budget]] = True
        subset = subset.to(profile.device)
    tables = _Tables(cells)
    start_sum = float(profile.sum())
    current = _evaluate(cells, tables, profile, log_scale, fit_scale, start_sum, subset)
    if not _finite(current):
        raise RuntimeError("a non-finite objective at the trained values")
    damping = 0.0
    for _ in range(_MAX_ITERATIONS):
        gradient = _flat(current.grad_profile, current.grad_scale)
        if _largest_gradient(current) < _GRADIENT_TOLERANCE:
            break
        accepted = False
        while not accepted and damping <= _DAMPING_MAX:
            step = _newton_step(current, damping)
            if step is None or not float(gradient @ _flat(*step)) < 0:  # no descent
                damping = max(_DAMPING_START, 10 * damping)
                continue
            slope, alpha = float(gradient @ _flat(*step)), 1.0
            for _ in range(_HALVINGS):
                trial_profile = profile + alpha * step[0]
                trial_scale = log_scale + alpha * step[1] if fit_scale else log_scale
                trial = _evaluate(
                    cells, tables, trial_profile, trial_scale, fit_scale, start_sum, subset
                )
                allowed = _ARMIJO * alpha * slope + _ROUNDING * abs(current.value)
                if _finite(trial) and trial.value - current.value <= allowed:
                    accepted = True
                    break
                alpha /= 2
            if not accepted:
                damping = max(_DAMPING_START, 10 * damping)
        if not accepted:  # no step lowers the objective: it is at its optimum to rounding
            break
        previous, current = current, trial
        profile, log_scale = trial_profile, trial_scale
        damping = damping / 10 if damping > _DAMPING_START else 0.0
        stalled = previous.value - current.value <= _ROUNDING * abs(previous.value)
        if stalled and _largest_gradient(current) > 0.5 * _largest_gradient(previous):
            break  # at the optimum to rounding: the steps no longer shrink the gradient
    return profile, log_scale[None]


def _finite(point: _Pass) -> bool:
    parts = [point.grad_profile, point.hess_profile]
    if point.grad_scale is not None:
        parts += [point.grad_scale, point.hess_mixed, point.hess_scale]
    return all(math.isfinite(x) for x in (point.value, *(float(p.sum()) for p in parts)))


def _largest_gradient(point: _Pass) -> float:
    return float(_flat(point.grad_profile, point.grad_scale).abs().max())


def _flat(profile: torch.Tensor, scale: torch.Tensor | None) -> torch.Tensor:
    return profile if scale is None else torch.cat([profile, scale])


def _newton_step(point: _Pass, damping: float) -> tuple[torch.Tensor, torch.Tensor | None] | None:
    """Damped Newton step ``(profile, scale)``; ``None`` when the profile's block is not positive.

    Where the objective curves down along some log inverse dispersion (far from the optimum)
    the blocks are decoupled, each with a positive curvature: still a direction of descent.
    """
    diagonal = point.hess_profile.diagonal().abs().clamp(min=1e-12)
    system = point.hess_profile + torch.diag(damping * diagonal)
    if point.grad_scale is None:
        return _solve(system, point.grad_profile), None
    curvature = point.hess_scale * (1 + damping)
    step_profile = None
    if bool((curvature > 0).all()):  # the joint Hessian, through the Schur complement
        mixed = point.hess_mixed / curvature  # H_ps H_ss^-1
        step_profile = _solve(
            system - mixed @ point.hess_mixed.T, point.grad_profile - mixed @ point.grad_scale
        )
        if step_profile is not None:
            step_scale = -(point.grad_scale + point.hess_mixed.T @ step_profile) / curvature
    if step_profile is None:
        step_profile = _solve(system, point.grad_profile)
        if step_profile is None:
            return None
        step_scale = -point.grad_scale / (point.hess_scale.abs() * (1 + damping) + 1e-12)
    step_scale = step_scale.clamp(-_MAX_SCALE_STEP, _MAX_SCALE_STEP)
    return step_profile, step_scale


def _solve(system: torch.Tensor, gradient: torch.Tensor) -> torch.Tensor | None:
    """``-system^-1 gradient`` by Cholesky, capped in size; ``None`` if not positive definite."""
    factor, info = torch.linalg.cholesky_ex(system)
    if int(info) != 0:
        return None
    step = -torch.cholesky_solve(gradient[:, None], factor)[:, 0]
    largest = float(step.abs().max())
    return step * (_MAX_PROFILE_STEP / largest) if largest > _MAX_PROFILE_STEP else step


def _evaluate(
    cells: TypeCells,
    tables: _Tables,
    profile: torch.Tensor,
    log_scale: torch.Tensor,
    fit_scale: bool,
    start_sum: float,
    subset: torch.Tensor | None,
) -> _Pass:
    """Objective, gradient and Hessian at ``(profile, log_scale)``, one pass over the cells.

    ``subset`` marks the cells of the Hessian's outer products (all when ``None``).
    """
    n_cells, n_genes = cells.n_cells, len(profile)
    keys = ("r", "rq", "v", "q", "w", "c", "scale", "curvature", "sub_q", "sub_w", "sub_c")
    sums = {key: torch.zeros_like(profile) for key in keys}
    sums["value"], sums["n_subset"] = profile.new_zeros(()), 0
    crosses = [profile.new_zeros(n_genes, n_genes) for _ in range(1 + fit_scale)]
    start = 0
    for position, chunk in enumerate(cells.counts):
        fixed = cells.fixed(position)
        for rows in range(0, len(chunk), _PASS_ROWS):
            part = slice(rows, rows + _PASS_ROWS)
            x = chunk[part].to(torch.float64)
            chosen = None if subset is None else subset[start : start + len(x)]
            start += len(x)
            _accumulate(sums, crosses, x, fixed[part] + profile, log_scale, chosen)
    mean_q = sums["q"] / n_cells
    outer_w = _outer_sum(crosses[0], sums, "w", mean_q, n_cells)
    # the Hessian in the profile: diag(sum v + sum R q) + B + B^T (module docstring), the
    # Dirichlet prior's and the sum's
    pi = torch.softmax(profile, -1)
    hess = outer_w.add_(outer_w.T.clone()).div_(n_cells)
    hess.diagonal().add_((sums["v"] + sums["rq"] + n_genes * pi) / n_cells)
    hess.addr_(pi, pi, alpha=-n_genes / n_cells).add_(1.0 / n_genes)
    shift = float(profile.sum()) - start_sum
    value = -float(sums["value"]) / n_cells - float(torch.log_softmax(profile, -1).sum()) / n_cells
    value += 0.5 * shift**2 / n_genes
    grad = (sums["rq"] - sums["r"] + n_genes * pi - 1) / n_cells + shift / n_genes
    if not fit_scale:
        return _Pass(value, grad, hess_profile=hess)
    gamma_value, gamma_grad, gamma_curvature = tables.terms(log_scale)
    prior = 1.0 / (_LOG_SCALE_PRIOR_SD**2 * n_cells)
    value += -gamma_value / n_cells + 0.5 * prior * float((log_scale**2).sum())
    grad_scale = (sums["scale"] - gamma_grad) / n_cells + prior * log_scale
    hess_scale = (sums["curvature"] - gamma_curvature) / n_cells + prior
    mixed = _outer_sum(crosses[1], sums, "c", mean_q, n_cells)
    mixed.diagonal().sub_(sums["c"])
    mixed.div_(n_cells)
    return _Pass(value, grad, grad_scale, hess, mixed, hess_scale)


def _accumulate(
    sums: dict,
    crosses: list[torch.Tensor],
    x: torch.Tensor,
    eta: torch.Tensor,
    log_scale: torch.Tensor,
    chosen: torch.Tensor | None,
) -> None:
    """Add some cells' terms to the running sums (``eta``: their linear predictors)."""
    theta = log_scale.exp()
    log_q = torch.log_softmax(eta, -1)
    q = log_q.exp()
    d = log_q + (torch.log(x.sum(-1, keepdim=True)) - log_scale)  # log(mu / theta)
    softplus = F.softplus(d, threshold=_SOFTPLUS_LINEAR)
    sigmoid = torch.sigmoid(d)  # mu / (mu + theta)
    x_theta = x + theta
    sums["value"] += (x * d).sum() - (x_theta * softplus).sum()
    fitted = x_theta * sigmoid
    r = x - fitted  # d loglik / d log mu
    total_r = r.sum(-1, keepdim=True)
    v = fitted - fitted * sigmoid  # -d^2 loglik / d log mu^2
    w = (0.5 * (v.sum(-1, keepdim=True) - total_r)) * q - v
    columns = {"r": r.sum(0), "v": v.sum(0), "q": q.sum(0), "w": w.sum(0)}
    columns["rq"] = total_r.T @ q
    terms = {"w": w}
    if len(crosses) > 1:  # the spread's terms: theta is per gene, so column sums do
        theta_sigmoid, theta_softplus = theta * sigmoid.sum(0), theta * softplus.sum(0)
        columns["c"] = columns["v"] - theta_sigmoid  # d^2 loglik / d log mu d log theta
        columns["scale"] = columns["r"] + theta_softplus
        columns["curvature"] = columns["v"] + theta_softplus - 2 * theta_sigmoid
        terms["c"] = v - theta * sigmoid
    for key, value in columns.items():
        sums[key] += value.reshape(-1)
    if chosen is not None:
        if not bool(chosen.any()):
            return
        q = q[chosen]
        terms = {key: value[chosen] for key, value in terms.items()}
    sums["n_subset"] += len(q)
    sums["sub_q"] += q.sum(0)
    for cross, (key, value) in zip(crosses, terms.items(), strict=True):
        sums[f"sub_{key}"] += value.sum(0)
        cross.addmm_(q.T, value)


def _outer_sum(
    cross: torch.Tensor, sums: dict, key: str, mean_q: torch.Tensor, n_cells: int
) -> torch.Tensor:
    """Estimate ``sum_i q_i b_i^T`` over all cells from ``cross``, its sum over a subset.

    The estimate is ``mean_q total_b^T`` (exact) plus the subset's covariance of ``q`` and
    ``b`` (about the means over all cells) times ``n_cells / n_subset``: ``cross`` itself when
    the subset is every cell, and the first term alone when it is empty (every cell has the
    same ``q``). Computed in place.
    """
    n_subset, total_b = sums["n_subset"], sums[key]
    if n_subset == n_cells:
        return cross
    if n_subset == 0:
        return cross.addr_(mean_q, total_b)
    weight = n_cells / n_subset
    cross.mul_(weight).addr_(sums["sub_q"], total_b / n_cells, alpha=-weight)
    return cross.addr_(mean_q, 2 * total_b - weight * sums[f"sub_{key}"])

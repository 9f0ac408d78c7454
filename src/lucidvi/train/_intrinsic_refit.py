"""Refit each cell type's profile and spread of InteractionVI by maximum likelihood."""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator

import numpy as np
import torch
from scvi import REGISTRY_KEYS
from scvi.data import AnnDataManager

from lucidvi.module import InteractionModule
from lucidvi.nn import expression_log_likelihood

from ._neighborhood_data import neighborhood_loader

# Training cells per type in a refit, a random subset beyond. A profile is fitted to a mean
# over the cells, so its error falls as 1 / sqrt(n) and is negligible at 20,000 cells; the cap
# bounds the refit's memory (the cells' expression and fixed terms, each cells x genes).
_MAX_REFIT_CELLS = 20_000
# Seed of that subset (and of nothing else), so that a refit is reproducible.
_SUBSET_SEED = 0
# L-BFGS restarts: each round rebuilds the curvature memory from where the last one stopped;
# the loop ends earlier as soon as a round no longer lowers the loss. 20 rounds bound the cost
# of a type whose loss creeps down at the last digits.
_LBFGS_ROUNDS = 20
# Iterations per round: L-BFGS in single precision gets near the optimum cheaply; a polish in
# double precision then takes the gradients from about 1e-2 down to about 1e-5, which single
# precision cannot resolve (the loss is a sum over thousands of genes).
_STAGES = ((torch.float32, 500), (torch.float64, 50))
# The retry when the stages above fail (an overflow in single precision): the same budget of
# iterations, all in double precision.
_STABLE_STAGES = ((torch.float64, 550),)
# Step of the central difference that measures the curvature of the loss in the log inverse
# dispersions: small against their scale (order 1) yet far above float64's rounding.
_STEP = 1e-3
# Standard deviation (nats) of the vague normal prior on the log inverse dispersions. It only
# keeps a Poisson-like gene's inverse dispersion finite (without it, it grows without bound);
# e^10 is far beyond any dispersion that changes a likelihood.
_LOG_SCALE_PRIOR_SD = 10.0
# Smallest standard deviation of a Gaussian type's spread: keeps its log finite for a marker
# that is constant in a type's training cells.
_MIN_SPREAD = 1e-6
# L-BFGS's own stopping rules, set tight so that the rounds and their loss test below, not
# these, decide when to stop.
_TOLERANCE_GRAD = 1e-7
_TOLERANCE_CHANGE = 1e-12
# A round that lowers the loss by less than this fraction of it (at least 1e-12 nats) ends
# the refit: the loss has stopped moving at double precision.
_RELATIVE_IMPROVEMENT = 1e-12


def cell_types(adata_manager: AnnDataManager) -> list[str]:
    """Return the registered cell types, in the order of their codes.

    Parameters
    ----------
    adata_manager
        Manager of data registered with a labels field.

    Returns
    -------
    The cell types as strings.
    """
    mapping = adata_manager.get_state_registry(REGISTRY_KEYS.LABELS_KEY)
    return [str(value) for value in mapping.categorical_mapping]


def expression_terms(
    module: InteractionModule, adata_manager: AnnDataManager, indices: np.ndarray, batch_size: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Yield :meth:`~lucidvi.module.InteractionModule.expression_terms` per minibatch.

    Parameters
    ----------
    module
        The module, in evaluation mode.
    adata_manager
        Manager of the registered data.
    indices
        Receivers, in order.
    batch_size
        Receivers per minibatch.

    Yields
    ------
    ``(x, intrinsic, niche, labels)`` of each minibatch.
    """
    for tensors in neighborhood_loader(adata_manager, indices, batch_size):
        yield module.expression_terms(tensors)


def refit_intrinsic(
    module: InteractionModule,
    adata_manager: AnnDataManager,
    indices: np.ndarray,
    batch_size: int = 256,
) -> list[str]:
    """Refit every type's profile and spread by maximum likelihood, the rest held fixed.

    Stochastic gradient steps leave the type profiles near, not at, their maximum-likelihood
    values; each type's profile (and spread, when per type) is refitted on its training cells
    (at most 20,000, a random subset beyond) with the niche term and the batch offsets held
    fixed. Gaussian data: in closed form (the mean residual, and the root mean squared
    deviation from it). Counts: L-BFGS from the trained values (see the Notes). Should the
    optimizer fail for a type (an overflow or a non-finite loss), it is retried in float64
    throughout; should that fail too, the type keeps its trained values, a
    :class:`RuntimeWarning` names it and it is returned, so that no number computed from it is
    shown as a result.

    Parameters
    ----------
    module
        A trained module (its profiles and spreads are updated in place).
    adata_manager
        Manager of the registered data it was trained on.
    indices
        Training cells.
    batch_size
        Receivers per minibatch when computing the fixed terms.

    Returns
    -------
    The cell types whose refit failed.

    Notes
    -----
    For counts, the objective is a type's mean negative log-likelihood plus one pseudo-count
    per gene (a Dirichlet prior on the type's proportions), which keeps the share of a gene
    never seen in the type's training cells above 0 (at 0, a held-out cell with one count of
    that gene would be impossible); a vague normal prior (standard deviation 10) on the log
    inverse dispersions, which keeps those of Poisson-like genes finite; and a quadratic term
    on the profile's sum: the softmax ignores a common shift of the profile, a direction along
    which the loss is flat and a line search can step without bound, so the term holds the
    shift at its start (it changes no prediction). L-BFGS runs on variables rescaled by the
    inverse square roots of the diagonal curvature at the start (Fisher information for the
    profile, a central difference for the log inverse dispersions, each gene's alone), so that
    rare and common genes converge alike: in single precision first, then polished in double
    precision. ``docs/benchmarks.md`` ("Models and training") says why.
    """
    module.eval()
    types = cell_types(adata_manager)
    labels = adata_manager.get_from_registry(REGISTRY_KEYS.LABELS_KEY)
    labels = np.asarray(labels).ravel().astype(np.int64)
    rng = np.random.default_rng(_SUBSET_SEED)
    failed = []
    for code in range(len(types)):
        rows = indices[labels[indices] == code]
        if len(rows) == 0:
            continue
        if len(rows) > _MAX_REFIT_CELLS:
            rows = np.sort(rng.choice(rows, _MAX_REFIT_CELLS, replace=False))
        profile, _ = module.type_parameters(code)
        parts = [
            (x, intrinsic - profile + niche)
            for x, intrinsic, niche, _ in expression_terms(module, adata_manager, rows, batch_size)
        ]
        # clones: tensors made in inference mode cannot enter autograd
        x, fixed = (torch.cat(part).clone() for part in zip(*parts, strict=True))
        with torch.enable_grad():
            failure = _refit_type(module, code, x, fixed)
        if failure is not None:
            failed.append(types[code])
            warnings.warn(
                f"Refitting the profile of {types[code]!r} stopped on {failure}; it "
                "keeps its trained values, and is marked 'refit failed'.",
                RuntimeWarning,
                stacklevel=2,
            )
    return failed


def _refit_type(
    module: InteractionModule, code: int, x: torch.Tensor, fixed: torch.Tensor
) -> str | None:
    """Maximum-likelihood profile (and spread, when per type) of one type, the rest fixed.

    Returns
    -------
    ``None``, or why the optimizer failed (the trained values then stay).
    """
    per_type = module.spread_per_type
    if module.likelihood == "gaussian":
        with torch.no_grad():
            residual = x.double() - fixed.double()
            profile = residual.mean(0)
            spread = None
            if per_type:
                spread = (residual - profile).square().mean(0).sqrt().clamp(min=_MIN_SPREAD)
                spread = spread.log()
            module.set_type_parameters(code, profile, spread)
        return None
    start = module.type_parameters(code)
    failures = []
    for stages in (_STAGES, _STABLE_STAGES):  # the second: a retry in float64 throughout
        profile, log_scale = start
        try:
            for dtype, iterations in stages:
                profile, log_scale = _minimize_counts(
                    x.to(dtype),
                    fixed.to(dtype),
                    profile.to(dtype),
                    log_scale.to(dtype),
                    fit_scale=per_type,
                    iterations=iterations,
                )
        except RuntimeError as error:  # e.g. a line search that overflows
            failures.append(str(error))
            continue
        if torch.isfinite(profile).all() and torch.isfinite(log_scale).all():
            break
        failures.append("non-finite values")
    if len(failures) == 2:
        return f"{failures[0]} (retried in float64: {failures[1]})"
    module.set_type_parameters(code, profile, log_scale if per_type else None)
    return None


def _minimize_counts(
    x: torch.Tensor,
    fixed: torch.Tensor,
    profile: torch.Tensor,
    log_scale: torch.Tensor,
    *,
    fit_scale: bool,
    iterations: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Minimize a type's objective (:func:`refit_intrinsic`'s Notes) from the given values.

    Returns
    -------
    The fitted profile and log inverse dispersions (detached).

    Raises
    ------
    RuntimeError
        If the loss becomes non-finite, or the line search overflows.
    """
    n_cells = len(x)
    start_sum = profile.sum()

    def objective(profile: torch.Tensor, log_scale: torch.Tensor) -> torch.Tensor:
        nll = -expression_log_likelihood("nb", x, profile[None] + fixed, log_scale, validate=False)
        nll = nll.mean() - torch.log_softmax(profile, dim=-1).sum() / n_cells
        nll = nll + 0.5 * (profile.sum() - start_sum).square() / len(profile)
        if fit_scale:
            nll = nll + 0.5 * (log_scale / _LOG_SCALE_PRIOR_SD).square().sum() / n_cells
        return nll

    with torch.no_grad():
        theta = log_scale.exp()
        mu = torch.softmax(profile[None] + fixed, -1) * x.sum(-1, keepdim=True)
        curvature = (theta * mu / (theta + mu)).mean(0) + torch.softmax(profile, -1) / n_cells
        profile_step = curvature.rsqrt()
        scale_step = torch.ones_like(log_scale)
        if fit_scale:
            gradients = []
            for shift in (-_STEP, _STEP):
                shifted = (log_scale + shift).requires_grad_(True)
                with torch.enable_grad():
                    objective(profile, shifted).backward()
                gradients.append(shifted.grad)
            scale_curvature = (gradients[1] - gradients[0]).abs() / (2 * _STEP)
            scale_step = (scale_curvature + 1 / (_LOG_SCALE_PRIOR_SD**2 * n_cells)).rsqrt()
    profile_change = torch.zeros_like(profile, requires_grad=True)
    scale_change = torch.zeros_like(log_scale, requires_grad=fit_scale)
    optimizer = torch.optim.LBFGS(
        [profile_change, scale_change] if fit_scale else [profile_change],
        max_iter=iterations,
        tolerance_grad=_TOLERANCE_GRAD,
        tolerance_change=_TOLERANCE_CHANGE,
        line_search_fn="strong_wolfe",
    )

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        nll = objective(
            profile + profile_change * profile_step, log_scale + scale_change * scale_step
        )
        nll.backward()
        return nll

    previous = float("inf")
    for _ in range(_LBFGS_ROUNDS):  # restarts until the loss stops moving
        loss = float(optimizer.step(closure).detach())
        if not math.isfinite(loss):
            raise RuntimeError("a non-finite loss")
        if previous - loss <= _RELATIVE_IMPROVEMENT * max(1.0, abs(loss)):
            break
        previous = loss
    with torch.no_grad():
        return profile + profile_change * profile_step, log_scale + scale_change * scale_step

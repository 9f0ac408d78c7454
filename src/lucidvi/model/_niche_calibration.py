"""How much of each receiver type's niche carries over to held-out cells, and refits."""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch
from scipy import stats
from scvi import REGISTRY_KEYS

from lucidvi.module._interaction import expression_log_likelihood

if TYPE_CHECKING:
    from ._interaction_vi import InteractionVI

_MIN_CELLS = 3  # held-out cells of a type needed to scale (and test) its niche
_SCALES = np.linspace(0.0, 1.0, 21)
_MAX_REFIT_CELLS = 20_000  # per type; the type profile's error is negligible beyond
_LBFGS_ROUNDS = 20
# L-BFGS in single precision, then a polish in double (iterations per round)
_STAGES = ((torch.float32, 500), (torch.float64, 50))
_STABLE_STAGES = ((torch.float64, 550),)  # the retry when the first stages fail
_STEP = 1e-3  # central difference on the log inverse dispersions
_LOG_SCALE_PRIOR_SD = 10.0  # on log inverse dispersions, nats


def _mean_niche(model: InteractionVI, indices: np.ndarray, batch_size: int) -> torch.Tensor:
    """Mean niche term of each type over ``indices``, shape ``(n_labels, n_genes)``."""
    n_labels = len(model.labels)
    total = torch.zeros(n_labels, model.summary_stats.n_vars, device=model.device)
    counts = torch.zeros(n_labels, device=model.device)
    for _, _, niche, labels in model._expression_terms(None, indices, batch_size):
        total.index_add_(0, labels, niche)
        counts.index_add_(0, labels, torch.ones_like(labels, dtype=counts.dtype))
    return total / counts.clamp(min=1)[:, None]


@torch.no_grad()
def calibrate_niche(
    model: InteractionVI,
    train_indices: np.ndarray,
    validation_indices: np.ndarray,
    alpha: float = 0.05,
    batch_size: int = 256,
) -> pd.DataFrame:
    r"""Centre each receiver type's niche on its training mean and scale it on held-out cells.

    The mean niche term of a type over its training cells only shifts the type's profile, so it
    moves into the profile and the niche becomes :math:`\lambda_t (\eta_i - c_t)`. The scale
    :math:`\lambda_t` is the value in 0, 0.05, ..., 1 with the highest log-likelihood of the
    type's validation cells (the smallest on ties). A niche model fits noise for types no
    neighbour changes; the scale is how much of the fitted niche carries over to cells it was
    not fitted on.

    A type keeps its niche when the scale is above 0 *and* its held-out gain is significant:
    the validation cells of the type are split in two halves, each cell's gain is its
    log-likelihood at the scale chosen on the other half minus that without niche (so the
    choice of scale does not inflate it), and the one-sided one-sample t-test of a positive mean
    gain must give p < ``alpha`` (at least 3 cells). Other types get scale 0: no niche, their
    cells attend to no neighbour. Finally every type's profile and spread are refitted by
    maximum likelihood on its training cells, the calibrated niche held fixed
    (:func:`refit_intrinsic`).

    Parameters
    ----------
    model
        A trained :class:`~lucidvi.model.InteractionVI` with heads.
    train_indices
        Cells it was trained on (the centres; the refits).
    validation_indices
        Held-out cells (the scales and the test).
    alpha
        Significance level of the test.
    batch_size
        Receivers per minibatch.

    Returns
    -------
    One row per cell type: ``cell_type``, ``n_validation_cells``, ``niche_scale`` (0: no
    niche), ``gain_per_cell`` (mean cross-fitted log-likelihood gain of a validation cell, in
    nats), ``p_value`` (NaN with fewer than 3 cells) and ``kept``.
    """
    module = model.module
    module.eval()
    center = _mean_niche(model, train_indices, batch_size)  # of the uncalibrated niche
    module.set_niche_calibration(center, torch.ones_like(module.niche_scale))
    log_likelihood, codes = [], []
    terms = model._expression_terms(None, validation_indices, batch_size)
    for x, intrinsic, niche, labels in terms:
        per_scale = [
            module.log_likelihood(x, intrinsic + scale * niche, labels) for scale in _SCALES
        ]
        log_likelihood.append(torch.stack(per_scale, 1).cpu().numpy())
        codes.append(labels.cpu().numpy())
    log_likelihood, codes = np.concatenate(log_likelihood), np.concatenate(codes)
    rng = np.random.default_rng(0)
    rows = []
    for code, cell_type in enumerate(model.labels):
        values = log_likelihood[codes == code]
        half = rng.permutation(len(values)) % 2 == 0  # two halves, sizes differing by <= 1
        best, p_value, gain = 0, np.nan, np.nan
        if len(values) >= _MIN_CELLS:
            best = int(np.argmax(values.sum(0)))
            gains = _cross_fitted_gains(values, half)
            if np.ptp(gains) == 0:  # no niche effect at all (the t-test is undefined)
                p_value = 1.0
            else:
                p_value = float(stats.ttest_1samp(gains, 0.0, alternative="greater").pvalue)
            gain = float(gains.mean())
        kept = best > 0 and p_value < alpha
        rows.append(
            {
                "cell_type": cell_type,
                "n_validation_cells": len(values),
                "niche_scale": float(_SCALES[best]) if kept else 0.0,
                "gain_per_cell": gain,
                "p_value": p_value,
                "kept": kept,
            }
        )
    table = pd.DataFrame(rows)
    scales = torch.tensor(table["niche_scale"].to_numpy(copy=True), dtype=torch.float32)
    module.set_niche_calibration(center, scales.to(center.device))
    failed = refit_intrinsic(model, train_indices, batch_size)
    table["status"] = np.where(table["cell_type"].isin(failed), "refit failed", "ok")
    return table


def _cross_fitted_gains(values: np.ndarray, half: np.ndarray) -> np.ndarray:
    """Gain of each cell at the scale chosen on the other half of the cells."""
    gains = np.empty(len(values))
    for side in (half, ~half):
        scale = int(np.argmax(values[~side].sum(0)))
        gains[side] = values[side, scale] - values[side, 0]
    return gains


def refit_intrinsic(model: InteractionVI, indices: np.ndarray, batch_size: int = 256) -> list[str]:
    """Refit every type's profile and spread by maximum likelihood (L-BFGS).

    Stochastic gradient steps leave the type profiles near, not at, their maximum-likelihood
    values; after the niche is calibrated, each type's profile (and spread, when per type) is
    refitted on its training cells (at most 20,000, a random subset beyond) with the niche term
    and the batch offsets held fixed. For counts, one pseudo-count per gene (a Dirichlet prior
    on the type's proportions) keeps the share of a gene never seen in a type's training cells
    above 0, where the maximum-likelihood share would be 0 and a held-out cell with one count
    of that gene would be impossible. Should the optimizer fail for a type (an overflow or a
    non-finite loss), it is retried in float64 throughout; should that fail too, the type keeps
    its trained values, a :class:`RuntimeWarning` names it and it is returned, so that no number
    computed from it is shown as a result.

    Parameters
    ----------
    model
        The model.
    indices
        Training cells.
    batch_size
        Receivers per minibatch when computing the fixed terms.

    Returns
    -------
    The cell types whose refit failed.
    """
    module = model.module
    labels = model.adata_manager.get_from_registry(REGISTRY_KEYS.LABELS_KEY)
    labels = np.asarray(labels).ravel().astype(np.int64)
    rng = np.random.default_rng(0)
    failed = []
    for code in range(len(model.labels)):
        rows = indices[labels[indices] == code]
        if len(rows) == 0:
            continue
        if len(rows) > _MAX_REFIT_CELLS:
            rows = np.sort(rng.choice(rows, _MAX_REFIT_CELLS, replace=False))
        parts = [
            (x, intrinsic - module.label_profile.weight[code] + niche)
            for x, intrinsic, niche, _ in model._expression_terms(None, rows, batch_size)
        ]
        # clones: tensors made in inference mode cannot enter autograd
        x, fixed = (torch.cat(part).clone() for part in zip(*parts, strict=True))
        with torch.enable_grad():
            failure = _refit_type(module, code, x, fixed)
        if failure is not None:
            failed.append(model.labels[code])
            warnings.warn(
                f"Refitting the profile of {model.labels[code]!r} stopped on {failure}; it "
                "keeps its trained values, and is marked 'refit failed'.",
                RuntimeWarning,
                stacklevel=2,
            )
    return failed


def _refit_type(module, code: int, x: torch.Tensor, fixed: torch.Tensor) -> str | None:
    """Maximum-likelihood profile (and spread, when per type) of one type, the rest fixed.

    Gaussian: in closed form (the mean residual, and the root mean squared deviation from it).
    Counts: L-BFGS from the trained values (:func:`_minimize_counts`).

    Returns
    -------
    ``None``, or why the optimizer failed (the trained values then stay).
    """
    per_type = len(module.log_scale) > 1
    row = code if per_type else 0
    if module.likelihood == "gaussian":
        with torch.no_grad():
            residual = x.double() - fixed.double()
            profile = residual.mean(0)
            module.label_profile.weight[code] = profile.float()
            if per_type:
                spread = (residual - profile).square().mean(0).sqrt().clamp(min=1e-6)
                module.log_scale[row] = spread.log().float()
        return None
    start = (module.label_profile.weight[code].detach(), module.log_scale[row : row + 1].detach())
    failures = []
    for stages in (_STAGES, _STABLE_STAGES):  # the second: a retry in float64 throughout
        profile, log_scale = start
        try:
            for dtype, iterations in stages:
                profile, log_scale = _minimize_counts(
                    x.to(dtype), fixed.to(dtype), profile.to(dtype), log_scale.to(dtype),
                    per_type, iterations,
                )  # fmt: skip
        except RuntimeError as error:  # e.g. a line search that overflows
            failures.append(str(error))
            continue
        if torch.isfinite(profile).all() and torch.isfinite(log_scale).all():
            break
        failures.append("non-finite values")
    if len(failures) == 2:
        return f"{failures[0]} (retried in float64: {failures[1]})"
    with torch.no_grad():
        module.label_profile.weight[code] = profile.float()
        module.log_scale[row] = log_scale[0].float()
    return None


def _minimize_counts(
    x: torch.Tensor,
    fixed: torch.Tensor,
    profile: torch.Tensor,
    log_scale: torch.Tensor,
    fit_scale: bool,
    iterations: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Minimize a type's mean negative log-likelihood from ``profile`` and ``log_scale``.

    The objective adds one pseudo-count per gene (``-sum_g log softmax(profile)_g / n``), a
    vague normal prior (standard deviation 10) on the log inverse dispersions, which keeps those
    of Poisson-like genes finite, and a quadratic term on the profile's sum: the softmax ignores
    a common shift of the profile, a direction along which the loss is flat and a line search
    can step without bound; the term holds the shift at its start (it changes no prediction).
    L-BFGS runs on variables rescaled by the inverse square roots of the diagonal curvature at
    the start (Fisher information for the profile, a central difference for the log inverse
    dispersions, each gene's alone), so that rare and common genes converge alike.

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
        tolerance_grad=1e-7,
        tolerance_change=1e-12,
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
        if previous - loss <= 1e-12 * max(1.0, abs(loss)):
            break
        previous = loss
    with torch.no_grad():
        return profile + profile_change * profile_step, log_scale + scale_change * scale_step

"""How much of each receiver type's niche carries over to held-out cells (InteractionVI)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from scipy import stats
from scvi import REGISTRY_KEYS
from scvi.data import AnnDataManager

from lucidvi._constants import RECEIVER_INDEX_KEY
from lucidvi.module import InteractionModule

from ._intrinsic_refit import cell_types, refit_intrinsic
from ._neighborhood_data import neighborhood_loader

# Held-out cells of a type needed to scale and test its niche: the cross-fitting splits them
# in two non-empty halves, and the t-test of their gains needs a variance (2 degrees of freedom).
_MIN_CELLS = 3
# Candidate scales of a type's centred niche, 0 to 1 in steps of 0.05: the chosen one is within
# 0.025 of the best scale, at the cost of 21 likelihoods per validation cell, all in one pass.
_SCALES = np.linspace(0.0, 1.0, 21)
# Seed of the random halves of each type's validation cells, so that a calibration is
# reproducible.
_HALVES_SEED = 0


@torch.no_grad()
def calibrate_niche(
    module: InteractionModule,
    adata_manager: AnnDataManager,
    train_indices: np.ndarray,
    validation_indices: np.ndarray,
    alpha: float = 0.05,
    batch_size: int = 256,
) -> pd.DataFrame:
    r"""Centre each receiver type's niche on its training mean and scale it on held-out cells.

    The mean niche term of a type over its training cells only shifts the type's profile, so it
    moves into the profile and the niche becomes :math:`\lambda_t (\eta_i - c_t)`
    (:meth:`~lucidvi.module.InteractionModule.set_niche_calibration`). The scale
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

    The cells are read in passes of :func:`~lucidvi.train.neighborhood_loader`: one over the
    training cells (the centres, from each cell's
    :meth:`~lucidvi.module.InteractionModule.niche_coordinates`, a few numbers of which the
    niche is a linear function), one over the validation cells (all 21 scales of each cell at
    once) and, in the refit, one over the training cells of the types that keep a niche.

    Parameters
    ----------
    module
        A trained module with heads; its calibration buffers, profiles and spreads are set in
        place.
    adata_manager
        Manager of the registered data it was trained on.
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
    nats), ``p_value`` (NaN with fewer than 3 cells), ``kept`` and ``status`` (``"ok"``, or
    ``"refit failed"`` when the type's refit failed).
    """
    module.eval()
    types = cell_types(adata_manager)
    center = _mean_niche(module, adata_manager, train_indices, batch_size)  # uncalibrated
    module.set_niche_calibration(center, torch.ones_like(module.niche_scale))
    log_likelihood, codes = _scaled_log_likelihoods(
        module, adata_manager, validation_indices, batch_size
    )
    rng = np.random.default_rng(_HALVES_SEED)
    rows = []
    for code, cell_type in enumerate(types):
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
    failed = refit_intrinsic(module, adata_manager, train_indices, batch_size)
    table["status"] = np.where(table["cell_type"].isin(failed), "refit failed", "ok")
    return table


def _scaled_log_likelihoods(
    module: InteractionModule, adata_manager: AnnDataManager, indices: np.ndarray, batch_size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Log-likelihood of each cell of ``indices`` at every niche scale, and its type's code.

    Rows follow ``indices`` whatever order the loader read the cells in.
    """
    indices = np.asarray(indices, dtype=np.int64)
    order = np.argsort(indices, kind="stable")
    log_likelihood = np.empty((len(indices), len(_SCALES)))
    codes = np.empty(len(indices), dtype=np.int64)
    loader = neighborhood_loader(adata_manager, indices, batch_size, keep_order=False)
    for tensors in loader:
        x, intrinsic, niche, labels = module.expression_terms(tensors)
        per_scale = module.scaled_niche_log_likelihood(x, intrinsic, niche, labels, _SCALES)
        receivers = tensors[RECEIVER_INDEX_KEY].numpy()
        rows = order[np.searchsorted(indices, receivers, sorter=order)]
        log_likelihood[rows] = per_scale.cpu().numpy()
        codes[rows] = labels.cpu().numpy()
    return log_likelihood, codes


def _mean_niche(
    module: InteractionModule, adata_manager: AnnDataManager, indices: np.ndarray, batch_size: int
) -> torch.Tensor:
    """Mean niche term of each type over ``indices``, shape ``(n_labels, n_genes)``.

    The niche is linear in each cell's coordinates, so their means per type give it.
    """
    n_labels, n_coordinates = len(module.niche_scale), module.loadings.shape[:2].numel()
    total = torch.zeros(n_labels, n_coordinates, dtype=torch.float64)
    counts = torch.zeros(n_labels, dtype=torch.float64)
    for tensors in neighborhood_loader(adata_manager, indices, batch_size, keep_order=False):
        labels = tensors[REGISTRY_KEYS.LABELS_KEY][:, 0].long()
        total.index_add_(0, labels, module.niche_coordinates(tensors).cpu().double())
        counts.index_add_(0, labels, torch.ones_like(labels, dtype=counts.dtype))
    codes = torch.arange(len(counts), device=module.niche_scale.device)
    mean = total / counts.clamp(min=1)[:, None]
    center = module.niche_from_coordinates(mean.to(codes.device), codes)
    center[counts.to(center.device) == 0] = 0.0
    return center.to(module.niche_center.dtype)


def _cross_fitted_gains(values: np.ndarray, half: np.ndarray) -> np.ndarray:
    """Gain of each cell at the scale chosen on the other half of the cells."""
    gains = np.empty(len(values))
    for side in (half, ~half):
        scale = int(np.argmax(values[~side].sum(0)))
        gains[side] = values[side, scale] - values[side, 0]
    return gains

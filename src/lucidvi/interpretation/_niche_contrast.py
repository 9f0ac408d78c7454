"""Which receivers a sender type affects, by the model, and how their expression differs."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import ttest_ind

CONTRAST_COLUMNS = [
    "n_affected",
    "observed_change",
    "observed_log2_fold_change",
    "de_statistic",
    "de_p_value",
]
_MIN_GROUP = 3  # receivers per group for a t-test


def otsu_threshold(values: np.ndarray) -> float:
    """Split a sample in two by Otsu's method: the cut that maximises the between-group variance.

    Parameters
    ----------
    values
        One-dimensional sample with at least two distinct values.

    Returns
    -------
    The midpoint between the last value of the lower group and the first of the upper.
    """
    ordered = np.sort(np.asarray(values, dtype=np.float64))
    n = len(ordered)
    cumulative = np.cumsum(ordered)
    below = np.arange(1, n)
    mean_low = cumulative[:-1] / below
    mean_high = (cumulative[-1] - cumulative[:-1]) / (n - below)
    between = below * (n - below) * (mean_low - mean_high) ** 2
    between[ordered[:-1] == ordered[1:]] = -1.0  # cut only between distinct values
    cut = int(np.argmax(between))
    return float((ordered[cut] + ordered[cut + 1]) / 2)


def affected_receivers(
    full: np.ndarray, masked: np.ndarray, exposed: np.ndarray, log_scale: bool, pseudo: float
) -> np.ndarray | None:
    """Receivers whose predictions the senders change strongly, by the model.

    Each receiver's change (with the senders minus without, on the log scale for counts) is
    projected on the mean change of the exposed receivers, giving the strength of the senders'
    effect on it (1 on average over the exposed, 0 for receivers without such a neighbour).
    Otsu's method splits the strengths of all receivers into affected and not.

    Parameters
    ----------
    full
        Predictions of all receivers with every neighbour, cells x genes.
    masked
        Predictions of the exposed receivers with the senders masked.
    exposed
        Which receivers have a neighbour of the sender type.
    log_scale
        Compare predictions on the log scale (counts) rather than as given.
    pseudo
        Added before the log.

    Returns
    -------
    Boolean mask over the receivers, or ``None`` when the senders change nothing or either
    group would have fewer than three receivers.
    """
    if log_scale:
        change = np.log(full[exposed] + pseudo) - np.log(masked + pseudo)
    else:
        change = full[exposed] - masked
    direction = change.mean(axis=0)
    norm = float(direction @ direction)
    if not np.isfinite(norm) or norm == 0.0:
        return None
    strength = np.zeros(len(full))
    strength[exposed] = change @ direction / norm
    if np.unique(strength).size < 2:
        return None
    affected = strength > otsu_threshold(strength)
    if min(affected.sum(), (~affected).sum()) < _MIN_GROUP:
        return None
    return affected


def observed_contrast(
    observed: np.ndarray, affected: np.ndarray | None, log_scale: bool, pseudo: float
) -> pd.DataFrame:
    """Per gene, the observed expression of affected receivers against the other receivers.

    Parameters
    ----------
    observed
        Observed expression of the receivers (counts per 10,000 for counts), cells x genes.
    affected
        Mask from :func:`affected_receivers`, or ``None`` (every column NaN, ``n_affected`` 0).
    log_scale
        Counts: the fold change of the means and Welch's t-test on ``log1p``; otherwise no fold
        change and the test on the values as given.
    pseudo
        Added to both means before the fold change.

    Returns
    -------
    Columns :data:`CONTRAST_COLUMNS`: ``n_affected``, ``observed_change`` (mean of the
    affected minus that of the others), ``observed_log2_fold_change``, ``de_statistic``
    (Welch's t, affected minus others) and ``de_p_value`` (two-sided).
    """
    n_genes = observed.shape[1]
    if affected is None:
        nothing = np.full(n_genes, np.nan)
        return pd.DataFrame({"n_affected": 0, **{name: nothing for name in CONTRAST_COLUMNS[1:]}})
    inside, outside = observed[affected], observed[~affected]
    mean_in, mean_out = inside.mean(axis=0), outside.mean(axis=0)
    tested = (np.log1p(inside), np.log1p(outside)) if log_scale else (inside, outside)
    with np.errstate(divide="ignore", invalid="ignore"):
        statistic, p_value = ttest_ind(*tested, equal_var=False)
        fold = np.log2((mean_in + pseudo) / (mean_out + pseudo)) if log_scale else np.nan
    # the same constant in both groups (scipy may return rounding noise or NaN): no evidence
    same = (np.ptp(observed, axis=0) == 0) | np.isnan(statistic)
    return pd.DataFrame(
        {
            "n_affected": int(affected.sum()),
            "observed_change": mean_in - mean_out,
            "observed_log2_fold_change": fold,
            "de_statistic": np.where(same, 0.0, statistic),
            "de_p_value": np.where(same, 1.0, p_value),
        }
    )

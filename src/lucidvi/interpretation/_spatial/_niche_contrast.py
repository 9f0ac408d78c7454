"""Which receivers a sender type affects, by the model, and how their expression differs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from anndata import AnnData
from scipy.stats import ttest_ind
from scvi.utils import track

from ._inputs import neighbor_types, predicted_expression

if TYPE_CHECKING:
    from collections.abc import Iterator

    from lucidvi.model import InteractionVI

PSEUDOCOUNT = 1e-3  # counts per 10,000 (or units) added before a log
# the columns observed_contrast() adds to NeighborAblation's table, in order
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


def niche_types(model: InteractionVI) -> list[str]:
    """List the cell types that keep a niche after the calibration (scale above 0)."""
    scale = model.module.niche_scale.cpu().numpy()
    return [t for t, s in zip(model.labels, scale, strict=True) if s > 0]


@dataclass(frozen=True)
class MaskedPair:
    """One receiver and sender type: the receivers' predictions with and without the senders.

    Attributes
    ----------
    receiver, sender
        The cell types.
    rows
        The receivers (rows of the data).
    full
        Their predictions with every neighbour, cells x genes.
    exposed
        Which receivers have a neighbour of the sender type.
    masked
        Predictions of the exposed receivers with the senders masked (``full[exposed]`` when
        masking changes nothing: no such neighbour, or a receiver type without niche).
    with_niche
        Whether the receiver type keeps a niche.
    affected
        :func:`affected_receivers`, or ``None``.
    """

    receiver: str
    sender: str
    rows: np.ndarray
    full: np.ndarray
    exposed: np.ndarray
    masked: np.ndarray
    with_niche: bool
    affected: np.ndarray | None


def masked_pairs(
    model: InteractionVI,
    adata: AnnData,
    cells: np.ndarray,
    types: np.ndarray,
    receivers: list[str],
    senders: list[str],
    batch_size: int,
    description: str,
) -> Iterator[MaskedPair]:
    """Mask each sender type for each receiver type in turn, with a progress bar.

    Each receiver type's full predictions are computed once, for all its senders.

    Parameters
    ----------
    model
        A trained :class:`~lucidvi.model.InteractionVI`.
    adata
        Registered data.
    cells
        The evaluation cells.
    types
        Their cell types.
    receivers, senders
        Cell types to pair.
    batch_size
        Receivers per minibatch.
    description
        Label of the progress bar.

    Yields
    ------
    One :class:`MaskedPair` per receiver and sender type.
    """
    slot_types = neighbor_types(model, adata)
    kept = set(niche_types(model))
    counts = model.module.likelihood == "nb"
    jobs = [(r, s) for r in receivers for s in senders]
    current, full = None, None
    for receiver, sender in track(jobs, description=description, disable=len(jobs) < 2):
        rows = cells[types == receiver]
        if receiver != current:
            current = receiver
            full = predicted_expression(model, adata, rows, "total", batch_size)
        exposed = np.any(slot_types[rows] == sender, axis=1)
        affected = None
        if exposed.any() and receiver in kept:
            masked = predicted_expression(
                model, adata, rows[exposed], "total", batch_size, mask_sender_types=[sender]
            )
            affected = affected_receivers(full, masked, exposed, counts, PSEUDOCOUNT)
        else:
            masked = full[exposed]
        yield MaskedPair(receiver, sender, rows, full, exposed, masked, receiver in kept, affected)

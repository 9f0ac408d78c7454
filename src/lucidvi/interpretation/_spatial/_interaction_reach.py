"""How far a sender type's effect on a receiver type reaches, read from the receivers it affects."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from anndata import AnnData
from scipy.spatial import cKDTree
from scipy.special import expit

from lucidvi._constants import NEIGHBORS_UNS
from lucidvi._docstrings import lucidvi_dsp

from .._result import TableResult, plot_method
from ._inputs import cell_types, chosen_types, evaluation_cells
from ._niche_contrast import masked_pairs, niche_types

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from matplotlib.axes import Axes

    from lucidvi.model import InteractionVI

# the columns of the table, in order
_COLUMNS = [
    "receiver_type",
    "sender_type",
    "n_receivers",
    "n_affected",
    "reach",
    "ci_low",
    "ci_high",
    "logit_intercept",
    "logit_slope",
    "status",
]
# The logistic fit of P(affected) on the standardised distance z (mean 0, SD 1):
# Ridge penalty on the slope, per receiver. When distance separates affected from unaffected
# receivers perfectly the likelihood has no finite maximum; the penalty keeps the slope finite
# (a steep curve through the gap). Its curvature, 1e-6 x n, is negligible next to the
# likelihood's own (up to n / 4) whenever the groups overlap.
_RIDGE = 1e-6
# Newton steps from a = b = 0. Overlapping groups converge within about 10; separable ones take
# about 20 clipped steps to reach a steep curve. The bootstrap fits run in lockstep, so a fixed
# count replaces a convergence test.
_NEWTON_STEPS = 50
# Largest change of the intercept or the standardised slope per step: keeps the first steps of a
# (nearly) separable fit from jumping far into the flat tails of the sigmoid.
_MAX_STEP = 5.0
# Added to the intercept's curvature: keeps the 2 x 2 system solvable for a resample whose
# weights leave p(1 - p) at 0 everywhere (every weighted receiver in one group).
_CURVATURE_FLOOR = 1e-12


def fit_logistic(
    distance: np.ndarray, affected: np.ndarray, weights: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Fit ``P(affected) = sigmoid(a + b * distance)`` by Newton's method, one fit per weight row.

    The slope of the standardised distance carries a tiny ridge penalty, so that a distance
    that separates the two groups perfectly still gives a finite fit (a steep curve through
    the gap).

    Parameters
    ----------
    distance
        Distances, shape ``(n,)``.
    affected
        Outcomes, shape ``(n,)``, boolean.
    weights
        Case weights, shape ``(n_fits, n)`` (bootstrap counts); one fit of weight 1 when
        ``None``.

    Returns
    -------
    Intercepts and slopes, each of shape ``(n_fits,)``, on the distance's own scale.
    """
    weights = np.ones((1, len(distance))) if weights is None else np.asarray(weights, float)
    center, spread = distance.mean(), distance.std() or 1.0  # all at one distance: no scaling
    z = (distance - center) / spread
    y = affected.astype(float)
    ridge = _RIDGE * len(distance)
    a = np.zeros(len(weights))
    b = np.zeros(len(weights))
    for _ in range(_NEWTON_STEPS):
        p = expit(a[:, None] + b[:, None] * z)  # no overflow for large |a + b z|
        residual, curvature = weights * (y - p), weights * p * (1 - p)
        grad_a, grad_b = residual.sum(1), (residual * z).sum(1) - ridge * b
        h_aa, h_ab = curvature.sum(1) + _CURVATURE_FLOOR, (curvature * z).sum(1)
        h_bb = (curvature * z**2).sum(1) + ridge
        determinant = h_aa * h_bb - h_ab**2
        step_a = (h_bb * grad_a - h_ab * grad_b) / determinant
        step_b = (h_aa * grad_b - h_ab * grad_a) / determinant
        a += np.clip(step_a, -_MAX_STEP, _MAX_STEP)
        b += np.clip(step_b, -_MAX_STEP, _MAX_STEP)
    return a - b * center / spread, b / spread


@dataclass(frozen=True, eq=False)
class InteractionReach(TableResult):
    """Distance within which a sender type changes a receiver type, from the affected receivers.

    :class:`LengthScales` reads each head's distance decay; this result reads the whole
    model's effect. For each receiver, the model's predicted change when the senders are
    masked decides whether the senders affect it (as in
    :meth:`NeighborAblation.interaction_genes`); a logistic curve of that outcome against the
    distance to the nearest sender of the type gives the distance at which a receiver is as
    likely affected as not. The split always finds some receivers more affected than others,
    so read the reach of the pairs that interact (``NeighborAblation``'s interaction matrix,
    ``AttentionPatterns``); for the others it measures a negligible effect.

    Attributes
    ----------
    table
        One row per receiver type and sender type: ``n_receivers``, ``n_affected``, ``reach``
        (the distance where the fitted probability of being affected is one half; NaN when
        no receiver is affected or the probability does not fall with distance), its
        bootstrap interval over receivers (``ci_low``, ``ci_high``) and the curve's
        ``logit_intercept`` and ``logit_slope`` (per unit of distance), and ``status``:
        ``"ok"``, ``"no affected receiver"``, ``"all affected"``, ``"no fall with
        distance"`` or ``"fit failed"`` (a non-finite logistic fit); the numbers are NaN
        unless ``"ok"`` (the fitted curve is kept for ``"no fall with distance"``).
    confidence
        Level of the bootstrap intervals.
    n_bootstrap
        Bootstrap resamples of the receivers.
    cells
        Which receivers the result was computed on.
    """

    _text_columns = ("receiver_type", "sender_type")

    table: pd.DataFrame
    confidence: float
    n_bootstrap: int
    cells: str

    @classmethod
    @lucidvi_dsp.dedent
    def compute(
        cls,
        model: InteractionVI,
        receiver_type: str | Sequence[str] | None = None,
        sender_types: Sequence[str] | None = None,
        adata: AnnData | None = None,
        indices: Sequence[int] | None = None,
        n_bootstrap: int = 200,
        confidence: float = 0.95,
        seed: int | None = None,
        batch_size: int = 256,
    ) -> InteractionReach:
        """Fit, per receiver and sender type, how being affected falls with distance.

        Only receiver types that keep a niche are fitted; receivers with no sender of the
        type in their sample are left out (nothing to measure a distance to).

        Parameters
        ----------
        %(interaction_model)s
        receiver_type
            Receiver type(s) (default: every type that keeps a niche).
        %(interaction_sender_types)s
        %(interaction_adata)s
        %(interaction_indices)s
        n_bootstrap
            Bootstrap resamples of the receivers for the interval.
        %(confidence)s
        %(random_seed)s
        %(interaction_batch_size)s

        Returns
        -------
        The result.
        """
        if not 0 < confidence < 1:
            raise ValueError(f"confidence must lie in (0, 1), got {confidence}.")
        if n_bootstrap < 1:
            raise ValueError(f"n_bootstrap must be at least 1, got {n_bootstrap}.")
        adata, cells, description = evaluation_cells(model, adata, indices)
        types = cell_types(model, adata, cells)
        kept = niche_types(model)
        receivers = (
            kept
            if receiver_type is None
            else chosen_types(receiver_type, model.labels, "receiver_type")
        )
        senders = chosen_types(sender_types, model.labels, "sender_types")
        receivers = [t for t in receivers if np.any(types == t)]
        if not receivers:
            raise ValueError(
                f"No cells of a receiver type with a niche among the {description} "
                f"(types with a niche: {kept})."
            )
        nearest = _NearestSender(model, adata)
        rng = np.random.default_rng(seed)
        rows_out = [
            _fit_pair(
                pair.receiver,
                pair.sender,
                nearest.distance(pair.rows, pair.sender),
                pair.affected,
                n_bootstrap,
                confidence,
                rng,
            )
            for pair in masked_pairs(
                model, adata, cells, types, receivers, senders, batch_size, "Reach"
            )
        ]
        return cls(pd.DataFrame(rows_out)[_COLUMNS], float(confidence), n_bootstrap, description)

    @lucidvi_dsp.dedent
    def for_pair(self, *, sender_type: str, receiver_type: str) -> pd.Series:
        """Return the row of one sender -> receiver pair.

        Parameters
        ----------
        %(interaction_pair)s

        Returns
        -------
        The pair's row of :attr:`table`.

        Raises
        ------
        ValueError
            If the pair is not in the table.
        """
        rows = self.table.query("sender_type == @sender_type and receiver_type == @receiver_type")
        if rows.empty:
            raise ValueError(
                f"No row for {sender_type!r} -> {receiver_type!r}; the table has receivers "
                f"{sorted(self.table['receiver_type'].unique())}."
            )
        return rows.iloc[0]

    def to_dataframe(self) -> pd.DataFrame:
        """Return the table (see :attr:`table`).

        Returns
        -------
        Columns ``receiver_type``, ``sender_type``, ``n_receivers``, ``n_affected``, ``reach``,
        ``ci_low``, ``ci_high``, ``logit_intercept``, ``logit_slope``, ``status``.
        """
        return self.table.copy()

    def _parameters(self) -> dict[str, Any]:
        return {"confidence": self.confidence, "n_bootstrap": self.n_bootstrap, "cells": self.cells}

    @classmethod
    def _from_table(cls, table: pd.DataFrame, parameters: dict[str, Any]) -> InteractionReach:
        for column in ("receiver_type", "sender_type", "status"):
            table[column] = table[column].astype(str)
        return cls(table=table[_COLUMNS], **parameters)

    plot_curves = plot_method(
        "interaction_reach_curves",
        "Fitted probability of being affected against the distance to the nearest sender.",
        options="(``n_pairs``): a curve per pair with its reach marked",
    )

    def _figures(self) -> Iterator[tuple[str, Axes]]:
        yield "curves", self.plot_curves()


class _NearestSender:
    """Distance from cells to the nearest cell of a type, within the same sample."""

    def __init__(self, model: InteractionVI, adata: AnnData) -> None:
        settings = adata.uns[NEIGHBORS_UNS]
        self.coordinates = np.asarray(adata.obsm[settings["spatial_key"]], dtype=np.float64)
        key = settings["sample_key"]
        self.groups = (
            np.zeros(adata.n_obs, dtype=np.int64)
            if key is None
            else adata.obs[key].astype(str).to_numpy()
        )
        self.types = cell_types(model, adata, np.arange(adata.n_obs))

    def distance(self, cells: np.ndarray, sender: str) -> np.ndarray:
        """Distance of each cell to its nearest sender (``inf`` with none in its sample)."""
        result = np.full(len(cells), np.inf)
        for group in np.unique(self.groups[cells]):
            senders = (self.types == sender) & (self.groups == group)
            here = self.groups[cells] == group
            if senders.any():
                tree = cKDTree(self.coordinates[senders])
                result[here] = tree.query(self.coordinates[cells[here]])[0]
        return result


def _fit_pair(
    receiver: str,
    sender: str,
    distance: np.ndarray,
    affected: np.ndarray | None,
    n_bootstrap: int,
    confidence: float,
    rng: np.random.Generator,
) -> dict[str, Any]:
    row = {"receiver_type": receiver, "sender_type": sender}
    measured = np.isfinite(distance)
    row["n_receivers"] = int(measured.sum())
    row["n_affected"] = 0 if affected is None else int(affected[measured].sum())
    nothing = dict.fromkeys(
        ("reach", "ci_low", "ci_high", "logit_intercept", "logit_slope"), np.nan
    )
    if affected is None or row["n_affected"] == 0:
        return {**row, **nothing, "status": "no affected receiver"}
    if row["n_affected"] == row["n_receivers"]:
        return {**row, **nothing, "status": "all affected"}
    d, y = distance[measured], affected[measured]
    (a,), (b,) = fit_logistic(d, y)
    if not (np.isfinite(a) and np.isfinite(b)):  # never a number from a failed fit
        return {**row, **nothing, "status": "fit failed"}
    if b >= 0:  # no fall with distance: no reach
        curve = {"logit_intercept": a, "logit_slope": b}
        return {**row, **nothing, **curve, "status": "no fall with distance"}
    counts = rng.multinomial(len(d), np.full(len(d), 1 / len(d)), size=n_bootstrap)
    a_boot, b_boot = fit_logistic(d, y, counts)
    with np.errstate(divide="ignore", invalid="ignore"):
        boot = np.where((b_boot < 0) & np.isfinite(a_boot), -a_boot / b_boot, np.nan)
    tail = (1 - confidence) / 2
    low, high = np.nanquantile(boot, [tail, 1 - tail]) if np.isfinite(boot).any() else (np.nan,) * 2
    return {
        **row, "reach": -a / b, "ci_low": low, "ci_high": high,
        "logit_intercept": a, "logit_slope": b, "status": "ok",
    }  # fmt: skip

"""Whom each receiver type attends to, per head and sender type, and over what distance."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, get_args

import numpy as np
import pandas as pd
from anndata import AnnData

from lucidvi._constants import NEIGHBOR_DISTANCE_OBSM, NEIGHBOR_INDEX_OBSM
from lucidvi._docstrings import lucidvi_dsp

from .._result import TableResult, plot_method
from ._inputs import evaluation_cells

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from matplotlib.axes import Axes

    from lucidvi.model import InteractionVI

NULL_SENDER = "(none)"  # the sender type of the null slot (attending to no neighbour)
# receivers per get_attention call: the long attention table (one row per receiver, head and
# slot: about 250 per receiver with 8 heads and 30 neighbours) is only ever this big
_RECEIVERS_PER_PASS = 4096
# the columns of the table, in order
_COLUMNS = [
    "level",
    "head",
    "receiver_type",
    "sender_type",
    "distance_low",
    "distance_high",
    "attention",
    "weighted_effect",
    "neighbor_share",
    "n_receivers",
    "n_neighbors",
]
# what pair_scores can summarise (see its docstring)
Statistic = Literal["weighted_effect", "attention", "enrichment"]
_STATISTICS = get_args(Statistic)


@dataclass(frozen=True, eq=False)
class AttentionPatterns(TableResult):
    """Attention of each receiver type to each sender type, per head and distance.

    Attributes
    ----------
    table
        Rows of ``level="pair"``: per ``head``, ``receiver_type`` and ``sender_type`` (the
        null slot is sender type ``"(none)"``), the mean over receivers of the summed
        ``attention`` weight on that type's neighbours, the same for the value-weighted
        attention (``weighted_effect``: weight times the size of the niche term the
        neighbour's value gives at full weight), the mean share of neighbour slots the type
        fills (``neighbor_share``), the receivers (``n_receivers``) and the neighbours
        (``n_neighbors``). Rows of ``level="distance"``: the same per distance bin
        [``distance_low``, ``distance_high``), as the mean ``attention`` and
        ``weighted_effect`` of one neighbour in the bin.
    cells
        Which receivers the result was computed on.
    """

    _text_columns = ("level", "receiver_type", "sender_type")

    table: pd.DataFrame
    cells: str

    @classmethod
    @lucidvi_dsp.dedent
    def compute(
        cls,
        model: InteractionVI,
        adata: AnnData | None = None,
        indices: Sequence[int] | None = None,
        distance_bins: int | Sequence[float] = 10,
        batch_size: int = 256,
    ) -> AttentionPatterns:
        """Summarise :meth:`~lucidvi.model.InteractionVI.get_attention` by cell-type pair.

        Held-out receivers by default (the cells of the training data the model did not
        train on), so the patterns are those the model carries to new cells. The receivers are
        read a few thousand at a time, so memory does not grow with their number.

        Parameters
        ----------
        %(interaction_model)s
        %(interaction_adata)s
        %(interaction_indices)s
        distance_bins
            Number of equal-width bins from 0 to the largest neighbour distance, or the bin
            edges.
        %(interaction_batch_size)s

        Returns
        -------
        The result.
        """
        adata, cells, description = evaluation_cells(model, adata, indices)
        edges = _distance_edges(adata, cells, distance_bins)
        pair_sums, receivers, distance_sums = [], [], []
        for start in range(0, len(cells), _RECEIVERS_PER_PASS):
            attention = model.get_attention(
                adata, indices=cells[start : start + _RECEIVERS_PER_PASS], batch_size=batch_size
            )
            is_null = attention["neighbor_index"].to_numpy() < 0
            attention["neighbor_type"] = attention["neighbor_type"].where(~is_null, NULL_SENDER)
            pair_sums.append(_pair_sums(attention))
            receivers.append(attention.groupby("cell_type")["cell_index"].nunique())
            distance_sums.append(_distance_sums(attention[~is_null], edges))
        n_receivers = pd.concat(receivers).groupby(level=0).sum()
        pairs = _pair_level(_summed(pair_sums), n_receivers, model.labels)
        by_distance = _distance_level(_summed(distance_sums), edges)
        table = pd.concat([pairs, by_distance], ignore_index=True)[_COLUMNS]
        return cls(table, description)

    def pair_scores(
        self, statistic: Statistic = "weighted_effect", head: int | None = None
    ) -> pd.DataFrame:
        """Sender type x receiver type matrix of attention, summed over heads.

        Parameters
        ----------
        statistic
            ``"weighted_effect"`` (value-weighted attention), ``"attention"`` (the weight a
            receiver puts on the type's neighbours together) or ``"enrichment"`` (that weight
            divided by the share of neighbour slots the type fills: 1 when a head spreads all
            its weight evenly over the neighbours, whatever their composition). The first two
            grow with how common a sender type is among the neighbours; enrichment does not,
            but for a type that few neighbours belong to it rests on few cells.
        head
            One head only (default: the sum over heads).

        Returns
        -------
        DataFrame, senders (rows) x receivers (columns), without the null slot.
        """
        if statistic not in _STATISTICS:
            raise ValueError(f"statistic must be one of {_STATISTICS}, got {statistic!r}.")
        rows = self.table[
            (self.table["level"] == "pair") & (self.table["sender_type"] != NULL_SENDER)
        ]
        if head is not None:
            rows = rows[rows["head"] == head]
        if statistic == "enrichment":
            share = rows["neighbor_share"].to_numpy()
            ratio = np.divide(
                rows["attention"].to_numpy(), share, out=np.zeros(len(rows)), where=share > 0
            )
            rows = rows.assign(enrichment=ratio)
        return rows.pivot_table(
            index="sender_type",
            columns="receiver_type",
            values=statistic,
            aggfunc="sum",
            fill_value=0.0,
            sort=False,
        )

    def to_dataframe(self) -> pd.DataFrame:
        """Return the table (see :attr:`table`).

        Returns
        -------
        Columns ``level``, ``head``, ``receiver_type``, ``sender_type``, ``distance_low``,
        ``distance_high``, ``attention``, ``weighted_effect``, ``neighbor_share``,
        ``n_receivers``, ``n_neighbors``.
        """
        return self.table.copy()

    def _parameters(self) -> dict[str, Any]:
        return {"cells": self.cells}

    @classmethod
    def _from_table(cls, table: pd.DataFrame, parameters: dict[str, Any]) -> AttentionPatterns:
        for column in ("level", "receiver_type", "sender_type"):
            table[column] = table[column].astype(str)
        return cls(table=table[_COLUMNS], **parameters)

    plot_summary = plot_method(
        "attention_summary",
        "Heatmap of :meth:`pair_scores`: which sender types each receiver type attends to.",
        options="(``statistic``, ``head``, ``cmap``)",
    )

    plot_distance = plot_method(
        "attention_distance",
        "Mean attention of one neighbour against its distance, a line per sender type.",
        options="(``receiver_type``, ``head``, ``statistic``)",
    )

    def _figures(self) -> Iterator[tuple[str, Axes]]:
        yield "summary", self.plot_summary()
        yield "distance", self.plot_distance()


def _distance_edges(
    adata: AnnData, cells: np.ndarray, distance_bins: int | Sequence[float]
) -> np.ndarray:
    """Bin edges: ``distance_bins`` equal bins up to the cells' farthest neighbour, or as given."""
    if np.ndim(distance_bins) == 0:
        if int(distance_bins) < 1:
            raise ValueError(f"distance_bins must be >= 1, got {distance_bins}.")
        present = np.asarray(adata.obsm[NEIGHBOR_INDEX_OBSM])[cells] >= 0
        distances = np.asarray(adata.obsm[NEIGHBOR_DISTANCE_OBSM])[cells][present]
        top = float(distances.max()) if distances.size else 1.0
        return np.linspace(0.0, np.nextafter(top, np.inf), int(distance_bins) + 1)
    edges = np.asarray(distance_bins, dtype=np.float64)
    if edges.ndim != 1 or len(edges) < 2 or np.any(np.diff(edges) <= 0):
        raise ValueError("distance_bins must be an int or increasing bin edges.")
    return edges


def _summed(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """Add up per-pass sums that share an index (passes hold disjoint receivers)."""
    combined = pd.concat(parts)
    return combined.groupby(level=list(range(combined.index.nlevels)), sort=True).sum()


def _pair_sums(attention: pd.DataFrame) -> pd.DataFrame:
    """Per head, receiver type and sender type: sums over receivers of their per-type totals."""
    per_cell = attention.groupby(
        ["cell_index", "cell_type", "head", "neighbor_type"], observed=True, sort=False
    ).agg(
        attention=("weight", "sum"),
        weighted_effect=("weighted_effect", "sum"),
        n_neighbors=("weight", "size"),
    )
    per_cell = per_cell.reset_index()
    real = per_cell["neighbor_type"] != NULL_SENDER
    slots = per_cell[real].groupby(["cell_index", "head"])["n_neighbors"].transform("sum")
    per_cell["neighbor_share"] = 0.0
    per_cell.loc[real, "neighbor_share"] = per_cell.loc[real, "n_neighbors"] / slots
    per_cell.loc[~real, "n_neighbors"] = 0
    return per_cell.groupby(["head", "cell_type", "neighbor_type"], observed=True)[
        ["attention", "weighted_effect", "neighbor_share", "n_neighbors"]
    ].sum()


def _pair_level(sums: pd.DataFrame, receivers: pd.Series, labels: list[str]) -> pd.DataFrame:
    """Means over each type's receivers of the summed attention on each sender type's slots."""
    present = set(sums.index.get_level_values("neighbor_type"))
    senders = [t for t in labels if t in present] + [NULL_SENDER]
    index = pd.MultiIndex.from_product(
        [sorted(set(sums.index.get_level_values("head"))), list(receivers.index), senders],
        names=["head", "receiver_type", "sender_type"],
    )
    sums = sums.copy()
    sums.index.names = index.names
    sums = sums.reindex(index, fill_value=0.0).reset_index()
    n_receivers = receivers.reindex(sums["receiver_type"]).to_numpy()
    for column in ("attention", "weighted_effect", "neighbor_share"):
        sums[column] = sums[column] / n_receivers  # receivers without such neighbours count 0
    sums["n_receivers"] = n_receivers
    sums["n_neighbors"] = sums["n_neighbors"].astype(np.int64)
    return sums.assign(level="pair", distance_low=np.nan, distance_high=np.nan)


def _distance_sums(attention: pd.DataFrame, edges: np.ndarray) -> pd.DataFrame:
    """Per head, cell-type pair and distance bin: summed weights, neighbours and receivers."""
    bins = np.digitize(attention["distance"].to_numpy(), edges) - 1
    inside = (bins >= 0) & (bins < len(edges) - 1)
    frame = attention[inside].assign(bin=bins[inside])
    return frame.groupby(["head", "cell_type", "neighbor_type", "bin"], observed=True).agg(
        attention=("weight", "sum"),
        weighted_effect=("weighted_effect", "sum"),
        n_neighbors=("weight", "size"),
        n_receivers=("cell_index", "nunique"),
    )


def _distance_level(sums: pd.DataFrame, edges: np.ndarray) -> pd.DataFrame:
    """Mean attention of one neighbour per head, cell-type pair and distance bin."""
    grouped = sums.reset_index().rename(
        columns={"cell_type": "receiver_type", "neighbor_type": "sender_type"}
    )
    for column in ("attention", "weighted_effect"):
        grouped[column] = grouped[column] / grouped["n_neighbors"]
    grouped["distance_low"] = edges[grouped["bin"].to_numpy()]
    grouped["distance_high"] = edges[grouped["bin"].to_numpy() + 1]
    return grouped.drop(columns="bin").assign(level="distance", neighbor_share=np.nan)

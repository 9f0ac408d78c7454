"""What masking the neighbours of one cell type does to a receiver type's predicted expression."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from anndata import AnnData
from scipy.stats import false_discovery_control
from scipy.stats import t as student_t

from lucidvi._docstrings import lucidvi_dsp

from .._result import TableResult, plot_method
from ._inputs import (
    cell_types,
    chosen_types,
    evaluation_cells,
    observed_expression,
)
from ._niche_contrast import CONTRAST_COLUMNS, PSEUDOCOUNT, masked_pairs, observed_contrast

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from matplotlib.axes import Axes

    from lucidvi.model import InteractionVI

# the columns of the table, in order
_COLUMNS = [
    "receiver_type",
    "sender_type",
    "gene",
    "n_receivers",
    "prediction_change",
    "log2_fold_change",
    "residual_change",
    "statistic",
    "p_value",
    "p_value_adj",
    "significant",
    *CONTRAST_COLUMNS,
    "de_p_value_adj",
    "de_significant",
    "sender_log2_ratio",
]
_CELLS_PER_READ = 10_000  # cells whose expression is read at once for the types' mean profiles


@dataclass(frozen=True, eq=False)
class NeighborAblation(TableResult):
    """Per gene, what a receiver type's predictions lose when a sender type is masked.

    Attributes
    ----------
    table
        One row per receiver type, sender type and gene: ``n_receivers`` (receivers with a
        neighbour of the sender type), ``prediction_change`` (mean prediction with the
        senders minus without; counts per 10,000 for ``"nb"``), ``log2_fold_change`` (of the
        mean predictions; NaN for ``"gaussian"`` models), ``residual_change`` (mean over
        receivers of the squared error without the senders minus with them: positive when the
        senders help predict the gene), ``statistic`` (paired t statistic of that change),
        ``p_value`` (one-sided: the senders help; NaN for receiver types without a niche,
        where masking changes nothing), ``p_value_adj`` (Benjamini-Hochberg over the tested
        rows) and ``significant`` (``p_value_adj < alpha``). Then the genes of the
        interaction in the data: ``n_affected`` (receivers whose predictions the senders
        change strongly, see :meth:`compute`), ``observed_change`` and
        ``observed_log2_fold_change`` (observed expression of the affected receivers against
        the other receivers of the type: difference and log2 ratio of the means, the latter
        NaN for ``"gaussian"``), ``de_statistic`` and ``de_p_value`` (Welch's t-test, on
        ``log1p`` of the counts per 10,000 for ``"nb"``, two-sided), ``de_p_value_adj``
        (Benjamini-Hochberg) and ``de_significant``; NaN where no receiver is affected.
        Last, ``sender_log2_ratio``: log2 of the sender type's mean expression over the
        receiver type's (counts per 10,000, over the cells the result is computed on; NaN for
        ``"gaussian"``). Interaction genes that the senders express far more than the
        receivers (say, ratio above 1) may be the senders' own transcripts assigned to the
        receivers by cell segmentation (spillover) rather than a response.
    alpha
        Significance level.
    cells
        Which receivers the result was computed on.
    """

    _text_columns = ("receiver_type", "sender_type", "gene")

    table: pd.DataFrame
    alpha: float
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
        alpha: float = 0.05,
        batch_size: int = 256,
    ) -> NeighborAblation:
        r"""Mask each sender type in turn and test, per gene, whether the prediction got worse.

        For a receiver cell ``i`` and gene ``g``, with predictions ``p`` (all neighbours) and
        ``p'`` (the sender type masked: as if absent from the tissue), the change in squared
        residual is :math:`d_{ig} = (y_{ig} - p'_{ig})^2 - (y_{ig} - p_{ig})^2`. Over the
        receivers that have a neighbour of the sender type (for the others nothing changes),
        ``statistic`` is the t statistic of the mean of :math:`d_{ig}` and ``p_value`` its
        one-sided p-value (Student's t): how sure we can be that the senders help predict the
        gene on cells the model did not fit. Receivers share neighbours, so their changes are
        not fully independent and the p-values are somewhat optimistic; the t statistic ranks
        genes regardless.

        Which genes the interaction changes is then read from the data, with the model only
        deciding which receivers the senders affect. Each receiver's predicted change (log
        scale for counts) is projected on the mean change over the exposed receivers; Otsu's
        method splits these strengths (0 for receivers without such a neighbour) into
        affected receivers and the rest, and Welch's t-test compares their observed
        expression gene by gene. Its power grows with the number of receivers (see the
        Interpretation section of the benchmarks in the documentation); on training cells its
        p-values are somewhat optimistic (the model never saw a receiver's own expression when
        deciding whom it affects, but its attention was fit on them).
        :meth:`interaction_genes` ranks the genes of one pair.

        Held-out receivers by default (the cells of the training data the model did not
        train on).

        Parameters
        ----------
        %(interaction_model)s
        receiver_type
            Receiver type(s) (default: every type with held-out cells).
        %(interaction_sender_types)s
        %(interaction_adata)s
        %(interaction_indices)s
        %(alpha)s
            Here: of ``significant`` and ``de_significant``.
        %(interaction_batch_size)s

        Returns
        -------
        The result.
        """
        if not 0 < alpha < 1:
            raise ValueError(f"alpha must lie in (0, 1), got {alpha}.")
        adata, cells, description = evaluation_cells(model, adata, indices)
        types = cell_types(model, adata, cells)
        receivers = chosen_types(receiver_type, model.labels, "receiver_type")
        receivers = [t for t in receivers if np.any(types == t)]
        if not receivers:
            raise ValueError(f"No cells of the chosen receiver types among the {description}.")
        senders = chosen_types(sender_types, model.labels, "sender_types")
        genes = np.asarray(adata.var_names, dtype=object)
        counts = model.module.likelihood == "nb"
        frames = []
        means = _type_means(model, adata, cells, types) if counts else {}
        observed, current = None, None
        for pair in masked_pairs(
            model, adata, cells, types, receivers, senders, batch_size, "Ablations"
        ):
            if pair.receiver != current:
                current = pair.receiver
                observed = observed_expression(model, adata, pair.rows)
            exposed = pair.exposed
            frame = pd.concat(
                [
                    _gene_tests(observed[exposed], pair.full[exposed], pair.masked),
                    observed_contrast(observed, pair.affected, counts, PSEUDOCOUNT),
                ],
                axis=1,
            )
            if not pair.with_niche:  # nothing to test: kept out of the correction
                frame[["statistic", "p_value"]] = np.nan
            if not counts:  # means may be negative: no fold change
                frame["log2_fold_change"] = np.nan
            if pair.sender in means and pair.receiver in means:
                ratio = (means[pair.sender] + PSEUDOCOUNT) / (means[pair.receiver] + PSEUDOCOUNT)
                frame["sender_log2_ratio"] = np.log2(ratio)
            else:  # Gaussian data, or no cell of the type among those the result is computed on
                frame["sender_log2_ratio"] = np.nan
            frame.insert(0, "gene", genes)
            frame.insert(0, "sender_type", pair.sender)
            frame.insert(0, "receiver_type", pair.receiver)
            frames.append(frame)
        table = pd.concat(frames, ignore_index=True)
        table["p_value_adj"] = _benjamini_hochberg(table["p_value"])
        table["significant"] = table["p_value_adj"].to_numpy() < alpha
        table["de_p_value_adj"] = _benjamini_hochberg(table["de_p_value"])
        table["de_significant"] = table["de_p_value_adj"].to_numpy() < alpha
        return cls(table[_COLUMNS], float(alpha), description)

    def interaction_matrix(self) -> pd.DataFrame:
        """Count the significant genes per sender type (rows) and receiver type (columns).

        Returns
        -------
        DataFrame of integers.
        """
        return (
            self.table.groupby(["sender_type", "receiver_type"], sort=False)["significant"]
            .sum()
            .unstack(fill_value=0)
            .astype(int)
        )

    @lucidvi_dsp.dedent
    def interaction_genes(self, *, sender_type: str, receiver_type: str) -> pd.DataFrame:
        """Rank the genes by how the senders change the receivers' observed expression.

        The genes the Welch test calls significant (``de_significant``) come first, then the
        rest; within each group, by the absolute observed log2 fold change (the absolute
        observed change for ``"gaussian"`` models), largest first. On imaged tissue, check
        ``sender_log2_ratio`` of the top genes: genes of the senders found in the receivers
        they touch may be segmentation spillover.

        Parameters
        ----------
        %(interaction_pair)s

        Returns
        -------
        The pair's rows of :attr:`table`, ranked, indexed by gene.

        Raises
        ------
        ValueError
            If the pair is not in the table, or the model finds no receiver that the senders
            affect (e.g. the receiver type kept no niche): then there is nothing to rank.
        """
        rows = self.table.query("receiver_type == @receiver_type and sender_type == @sender_type")
        if rows.empty:
            raise ValueError(
                f"No rows for {sender_type!r} -> {receiver_type!r}; the table has receivers "
                f"{sorted(self.table['receiver_type'].unique())} and senders "
                f"{sorted(self.table['sender_type'].unique())}."
            )
        if not (rows["n_affected"] > 0).any():
            raise ValueError(
                f"The model finds no {receiver_type!r} cell that {sender_type!r} affects (is the "
                "niche kept? model.get_niche_calibration()), so no gene can be ranked."
            )
        fold = rows["observed_log2_fold_change"]
        size = (fold if fold.notna().any() else rows["observed_change"]).abs().fillna(0.0)
        order = np.lexsort((-size.to_numpy(), ~rows["de_significant"].to_numpy()))
        return rows.iloc[order].set_index("gene")

    def to_dataframe(self) -> pd.DataFrame:
        """Return the table (see :attr:`table`).

        Returns
        -------
        Columns ``receiver_type``, ``sender_type``, ``gene``, ``n_receivers``,
        ``prediction_change``, ``log2_fold_change``, ``residual_change``, ``statistic``,
        ``p_value``, ``p_value_adj``, ``significant``, ``n_affected``, ``observed_change``,
        ``observed_log2_fold_change``, ``de_statistic``, ``de_p_value``, ``de_p_value_adj``,
        ``de_significant``, ``sender_log2_ratio``.
        """
        return self.table.copy()

    def _parameters(self) -> dict[str, Any]:
        return {"alpha": self.alpha, "cells": self.cells}

    @classmethod
    def _from_table(cls, table: pd.DataFrame, parameters: dict[str, Any]) -> NeighborAblation:
        for column in ("receiver_type", "sender_type", "gene"):
            table[column] = table[column].astype(str)
        table["significant"] = table["significant"].astype(bool)
        table["de_significant"] = table["de_significant"].astype(bool)
        if "sender_log2_ratio" not in table:  # saved before the column existed
            table["sender_log2_ratio"] = np.nan
        return cls(table=table[_COLUMNS], **parameters)

    plot_heatmap = plot_method(
        "interaction_heatmap",
        "Heatmap of :meth:`interaction_matrix`.",
    )

    plot_graph = plot_method(
        "interaction_graph",
        "Directed graph of the interactions: an arrow per sender -> receiver pair.",
        options="(``min_genes``); arrow widths grow with the number of significant genes",
    )

    @lucidvi_dsp.dedent
    def plot_volcano(
        self, *, sender_type: str, receiver_type: str, ax: Axes | None = None, **kwargs: Any
    ) -> Axes:
        """Volcano plot of one pair's genes (see :meth:`interaction_genes`).

        Drawn by :func:`lucidvi.pl.interaction_volcano`, whose parameters it takes
        (``n_labels``): observed log2 fold change against ``-log10`` adjusted p-value.

        Parameters
        ----------
        %(interaction_pair)s
        %(ax)s
        %(plot_kwargs)s

        Returns
        -------
        The Axes.
        """
        from lucidvi.pl import interaction_volcano

        return interaction_volcano(
            self, sender_type=sender_type, receiver_type=receiver_type, ax=ax, **kwargs
        )

    def _figures(self) -> Iterator[tuple[str, Axes]]:
        yield "heatmap", self.plot_heatmap()
        yield "graph", self.plot_graph()


def _benjamini_hochberg(p_values: pd.Series) -> np.ndarray:
    """Adjust the p-values of the rows that have one (NaN elsewhere)."""
    adjusted = np.full(len(p_values), np.nan)
    tested = p_values.notna().to_numpy()
    if tested.any():
        adjusted[tested] = false_discovery_control(p_values.to_numpy()[tested])
    return adjusted


def _gene_tests(observed: np.ndarray, full: np.ndarray, masked: np.ndarray) -> pd.DataFrame:
    """Per gene: prediction change, residual change and its one-sided paired t-test."""
    n = len(observed)
    if n == 0:
        nothing = np.full(observed.shape[1], np.nan)
        return pd.DataFrame(
            {
                "n_receivers": 0,
                "prediction_change": nothing,
                "log2_fold_change": nothing,
                "residual_change": nothing,
                "statistic": nothing,
                "p_value": nothing,
            }
        )
    change = (observed - masked) ** 2 - (observed - full) ** 2
    mean_full, mean_masked = full.mean(axis=0), masked.mean(axis=0)
    frame = pd.DataFrame(
        {
            "n_receivers": n,
            "prediction_change": mean_full - mean_masked,
            "log2_fold_change": np.log2((mean_full + PSEUDOCOUNT) / (mean_masked + PSEUDOCOUNT)),
            "residual_change": change.mean(axis=0),
        }
    )
    if n < 3:
        frame["statistic"], frame["p_value"] = np.nan, np.nan
        return frame
    sd = change.std(axis=0, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        statistic = np.where(sd > 0, change.mean(axis=0) / (sd / np.sqrt(n)), 0.0)
    frame["statistic"] = statistic
    frame["p_value"] = np.where(sd > 0, student_t.sf(statistic, df=n - 1), 1.0)
    return frame


def _type_means(
    model: InteractionVI, adata: AnnData, cells: np.ndarray, types: np.ndarray
) -> dict[str, np.ndarray]:
    """Mean expression per cell type over ``cells`` (counts per 10,000), read in blocks."""
    means = {}
    for kind in np.unique(types):
        rows = cells[types == kind]
        total = np.zeros(adata.n_vars)
        for start in range(0, len(rows), _CELLS_PER_READ):
            total += observed_expression(model, adata, rows[start : start + _CELLS_PER_READ]).sum(0)
        means[str(kind)] = total / len(rows)
    return means

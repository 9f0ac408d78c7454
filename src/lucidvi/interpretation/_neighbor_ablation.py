"""What masking the neighbours of one cell type does to a receiver type's predicted expression."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from anndata import AnnData
from scipy.stats import false_discovery_control
from scipy.stats import t as student_t
from scvi.utils import track

from ._interaction_inputs import (
    cell_types,
    evaluation_cells,
    observed_expression,
    predicted_expression,
)
from ._result import TableResult

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from matplotlib.axes import Axes

    from lucidvi.model import InteractionVI

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
]
_PSEUDO = 1e-3  # counts per 10,000 (or units) added before the log2 fold change


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
        rows) and ``significant`` (``p_value_adj < alpha``).
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

        Held-out receivers by default (the cells of the training data the model did not
        train on).

        Parameters
        ----------
        model
            A trained :class:`~lucidvi.model.InteractionVI` with heads.
        receiver_type
            Receiver type(s) (default: every type with held-out cells).
        sender_types
            Sender types to mask one at a time (default: every type).
        adata
            Registered data; the training data when ``None``.
        indices
            Receivers (default: held-out cells of the training data, all cells of other
            data).
        alpha
            Significance level of ``significant``.
        batch_size
            Receivers per minibatch.

        Returns
        -------
        The result.
        """
        if not 0 < alpha < 1:
            raise ValueError(f"alpha must lie in (0, 1), got {alpha}.")
        adata, cells, description = evaluation_cells(model, adata, indices)
        types = cell_types(model, adata, cells)
        receivers = _chosen(receiver_type, model.labels, "receiver_type")
        receivers = [t for t in receivers if np.any(types == t)]
        if not receivers:
            raise ValueError(f"No cells of the chosen receiver types among the {description}.")
        senders = _chosen(sender_types, model.labels, "sender_types")
        neighbor_types = _neighbor_types(model, adata)
        scale = model.module.niche_scale.cpu().numpy()
        with_niche = {t for t, s in zip(model.labels, scale, strict=True) if s > 0}
        genes = np.asarray(adata.var_names, dtype=object)
        frames = []
        jobs = [(r, s) for r in receivers for s in senders]
        observed = full = None
        current = None
        for receiver, sender in track(jobs, description="Ablations", disable=len(jobs) < 2):
            rows = cells[types == receiver]
            if receiver != current:
                current = receiver
                observed = observed_expression(model, adata, rows)
                full = predicted_expression(model, adata, rows, "total", batch_size)
            exposed = np.any(neighbor_types[rows] == sender, axis=1)
            if exposed.any() and receiver in with_niche:
                masked = predicted_expression(
                    model, adata, rows[exposed], "total", batch_size, mask_sender_types=[sender]
                )
            else:  # no such neighbour, or a type without niche: masking changes nothing
                masked = full[exposed]
            frame = _gene_tests(observed[exposed], full[exposed], masked)
            if receiver not in with_niche:  # nothing to test: kept out of the correction
                frame[["statistic", "p_value"]] = np.nan
            if model.module.likelihood != "nb":  # means may be negative: no fold change
                frame["log2_fold_change"] = np.nan
            frame.insert(0, "gene", genes)
            frame.insert(0, "sender_type", sender)
            frame.insert(0, "receiver_type", receiver)
            frames.append(frame)
        table = pd.concat(frames, ignore_index=True)
        tested = table["p_value"].notna().to_numpy()
        table["p_value_adj"] = np.nan
        if tested.any():
            table.loc[tested, "p_value_adj"] = false_discovery_control(table.loc[tested, "p_value"])
        table["significant"] = table["p_value_adj"].to_numpy() < alpha
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

    def to_dataframe(self) -> pd.DataFrame:
        """Return the table (see :attr:`table`).

        Returns
        -------
        Columns ``receiver_type``, ``sender_type``, ``gene``, ``n_receivers``,
        ``prediction_change``, ``log2_fold_change``, ``residual_change``, ``statistic``,
        ``p_value``, ``p_value_adj``, ``significant``.
        """
        return self.table.copy()

    def _parameters(self) -> dict[str, Any]:
        return {"alpha": self.alpha, "cells": self.cells}

    @classmethod
    def _from_table(cls, table: pd.DataFrame, parameters: dict[str, Any]) -> NeighborAblation:
        for column in ("receiver_type", "sender_type", "gene"):
            table[column] = table[column].astype(str)
        table["significant"] = table["significant"].astype(bool)
        return cls(table=table[_COLUMNS], **parameters)

    def plot_heatmap(self, ax: Axes | None = None) -> Axes:
        """Heatmap of :meth:`interaction_matrix`.

        Parameters
        ----------
        ax
            Axes to draw into (a new figure when ``None``).

        Returns
        -------
        The Axes.
        """
        from lucidvi.pl import interaction_heatmap

        return interaction_heatmap(self, ax=ax)

    def plot_graph(self, min_genes: int = 1, ax: Axes | None = None) -> Axes:
        """Directed graph of the interactions: an arrow per sender -> receiver pair.

        Parameters
        ----------
        min_genes
            Draw pairs with at least this many significant genes.
        ax
            Axes to draw into (a new figure when ``None``).

        Returns
        -------
        The Axes; arrow widths grow with the number of significant genes.
        """
        from lucidvi.pl import interaction_graph

        return interaction_graph(self, min_genes, ax=ax)

    def _figures(self) -> Iterator[tuple[str, Axes]]:
        yield "heatmap", self.plot_heatmap()
        yield "graph", self.plot_graph()


def _chosen(given, labels: list[str], name: str) -> list[str]:
    if given is None:
        return list(labels)
    given = [given] if isinstance(given, str) else [str(t) for t in given]
    unknown = sorted(set(given) - set(labels))
    if unknown:
        raise ValueError(f"{name}: unknown cell types {unknown}; the types are {labels}.")
    return given


def _neighbor_types(model: InteractionVI, adata: AnnData) -> np.ndarray:
    """Type of every neighbour slot of every cell (``None`` for empty slots)."""
    from lucidvi.model._interaction_vi import NEIGHBOR_INDEX_OBSM

    neighbors = np.asarray(adata.obsm[NEIGHBOR_INDEX_OBSM])
    types = cell_types(model, adata, np.clip(neighbors, 0, None).ravel()).reshape(neighbors.shape)
    return np.where(neighbors >= 0, types, None)


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
            "log2_fold_change": np.log2((mean_full + _PSEUDO) / (mean_masked + _PSEUDO)),
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

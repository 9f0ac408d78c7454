"""How much of each receiver type's expression each attention head explains, with p-values."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from anndata import AnnData
from scipy.stats import false_discovery_control
from scvi.utils import track

from lucidvi._docstrings import lucidvi_dsp

from .._result import TableResult, plot_method
from ._inputs import (
    batch_codes,
    cell_types,
    evaluation_cells,
    observed_expression,
    predicted_expression,
)
from ._permutation import explained_variance, permutation_p_value, random_permutations

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from matplotlib.axes import Axes

    from lucidvi.model import InteractionVI

logger = logging.getLogger(__name__)

# the columns of the table, in order
_COLUMNS = [
    "head",
    "cell_type",
    "gene",
    "expl_var_head_gene",
    "expl_var_head",
    "p_value_head",
    "p_value_adj_head",
    "n_cells",
]
_MIN_CELLS = 3  # cell types with fewer evaluation cells are left out


@dataclass(frozen=True, eq=False)
class ExplainedVariance(TableResult):
    """Explained variance of each receiver type's expression per attention head.

    Attributes
    ----------
    table
        One row per head, cell type and gene: ``expl_var_head_gene``, ``expl_var_head`` (over
        genes), ``p_value_head`` (permutation test; NaN for types with fewer than
        ``min_cells`` cells), ``p_value_adj_head`` (Benjamini-Hochberg over the tested pairs)
        and ``n_cells`` (the type's cells used).
    alpha
        Significance level, also setting the default number of permutations.
    n_permutations
        Permutations per (head, cell type); 0 when the test was not run.
    seed
        Seed of the permutations.
    cells
        Which cells the result was computed on.
    """

    _text_columns = ("cell_type", "gene")

    table: pd.DataFrame
    alpha: float
    n_permutations: int
    seed: int | None
    cells: str

    @classmethod
    @lucidvi_dsp.dedent
    def compute(
        cls,
        model: InteractionVI,
        adata: AnnData | None = None,
        indices: Sequence[int] | None = None,
        alpha: float = 0.05,
        run_permutation_test: bool = True,
        n_permutations: int | None = None,
        seed: int | None = None,
        min_cells: int = 10,
        batch_size: int = 256,
    ) -> ExplainedVariance:
        r"""Explain each receiver type's expression by one head at a time and test it.

        For head ``h`` and cell type ``t``, the model predicts the type's cells with ``h``
        kept and every other head ablated. With ``r`` the expression minus the prediction
        with every head ablated (type, batch and the calibrated niche centre) and ``e`` the
        head's prediction minus the same (the head's own contribution),
        gene ``g`` has explained variance ``1 - Var(r_g - e_g) / Var(r_g)`` (0 for genes
        without variance; with one batch, ``Var(r_g)`` is the gene's variance within the
        type), and the head's ``expl_var_head`` is the mean over the genes with variance.
        Expression is in counts per 10,000 for ``"nb"`` models, as given for ``"gaussian"``.

        The permutation test shuffles the head's effects ``e`` across the type's cells (within
        each batch, so batch offsets are never exchanged): the
        p-value is ``(1 + #{permuted MSE <= observed MSE}) / (1 + n_permutations)``, the MSE
        of ``r - e`` with every gene scaled to unit variance. Only a cross term of the MSE
        changes with the permutation, so all permutations cost one gather each
        (:func:`~lucidvi.interpretation._permutation.permutation_p_value`). P-values are
        adjusted over all tested (head, cell type) pairs with Benjamini-Hochberg.

        **Held-out cells by default.** A niche model fits the neighbourhoods of the cells it
        trained on, so on those cells heads look significant even on data without
        interactions. Unless ``adata``/``indices`` say otherwise, the result uses the cells
        of the training data that the model did not train on (the validation cells, which
        also chose which types keep a niche; pass a separate test split as ``indices`` for a
        strict test).

        Parameters
        ----------
        %(interaction_model)s
        %(interaction_adata)s
        indices
            Cells to use (default: the held-out cells of the training data, or all cells of
            other data).
        %(alpha)s
            It also sets the default number of permutations.
        run_permutation_test
            Compute p-values (NaN otherwise).
        n_permutations
            Permutations per pair; ``ceil(n_heads * n_cell_types / alpha)`` when ``None``
            (the types with ``min_cells`` or more cells), so the smallest possible p-value
            survives a Bonferroni correction over the pairs.
        %(random_seed)s
        min_cells
            Cell types with fewer cells get no p-value (NaN): their few distinct
            permutations give coarse, conservative p-values (3 cells have 6). Types with
            fewer than 3 cells are left out.
        %(interaction_batch_size)s

        Returns
        -------
        The result.
        """
        if not 0 < alpha < 1:
            raise ValueError(f"alpha must lie in (0, 1), got {alpha}.")
        adata, cells, description = evaluation_cells(model, adata, indices)
        types = cell_types(model, adata, cells)
        present, counts = np.unique(types, return_counts=True)
        too_few = present[counts < _MIN_CELLS]
        if len(too_few):
            logger.warning(
                "Skipping cell types with fewer than %d of the %s: %s.",
                _MIN_CELLS,
                description,
                ", ".join(map(str, too_few)),
            )
        tested = [t for t in model.labels if t in set(present[counts >= _MIN_CELLS])]
        if not tested:
            raise ValueError(f"No cell type has {_MIN_CELLS} or more of the {description}.")
        n_heads = model.module.n_heads
        if not run_permutation_test:
            n_permutations = 0
        elif n_permutations is None:
            n_tested = max(1, int(np.sum(counts >= max(min_cells, _MIN_CELLS))))
            n_permutations = math.ceil(n_heads * n_tested / alpha)
        elif n_permutations < 1:
            raise ValueError(f"n_permutations must be >= 1, got {n_permutations}.")
        observed = observed_expression(model, adata, cells)
        baseline = predicted_expression(model, adata, cells, "total", batch_size, heads=[])
        residual = observed - baseline
        batches = batch_codes(model, adata, cells)
        members = {t: np.flatnonzero(types == t) for t in tested}
        seeds = {t: None if seed is None else seed + i for i, t in enumerate(members)}
        permuted = [t for t, rows in members.items() if n_permutations and len(rows) >= min_cells]
        scales = {t: _unit_variance_weights(residual[members[t]]) for t in permuted}
        genes = np.asarray(adata.var_names, dtype=object)
        frames = []
        for head in track(range(n_heads), description="Heads", disable=n_heads < 2):
            effect = predicted_expression(model, adata, cells, "total", batch_size, heads=[head])
            effect -= baseline
            for t, rows in members.items():
                per_gene, overall = explained_variance(residual[rows], effect[rows])
                p_value = np.nan
                if t in scales:  # the same permutations for every head (drawn again: memory)
                    permutations = random_permutations(
                        len(rows), n_permutations, seeds[t], groups=batches[rows]
                    )
                    p_value = permutation_p_value(
                        residual[rows] * scales[t], effect[rows] * scales[t], permutations
                    )
                frames.append((head, t, per_gene, overall, p_value, len(rows)))
        p_values = np.array([f[4] for f in frames])
        adjusted = np.full_like(p_values, np.nan)
        tested_pairs = ~np.isnan(p_values)
        if tested_pairs.any():
            adjusted[tested_pairs] = false_discovery_control(p_values[tested_pairs])
        table = pd.concat(
            [
                pd.DataFrame(
                    {
                        "head": head,
                        "cell_type": t,
                        "gene": genes,
                        "expl_var_head_gene": per_gene,
                        "expl_var_head": overall,
                        "p_value_head": p_value,
                        "p_value_adj_head": p_adj,
                        "n_cells": n,
                    }
                )
                for (head, t, per_gene, overall, p_value, n), p_adj in zip(
                    frames, adjusted, strict=True
                )
            ],
            ignore_index=True,
        )
        return cls(table, float(alpha), int(n_permutations), seed, description)

    @property
    def summary(self) -> pd.DataFrame:
        """One row per (head, cell type): explained variance, p-values, cells, significance."""
        columns = ["head", "cell_type", "expl_var_head", "p_value_head", "p_value_adj_head"]
        summary = self.table.drop_duplicates(["head", "cell_type"])[[*columns, "n_cells"]]
        summary = summary.reset_index(drop=True)
        summary["significant"] = summary["p_value_adj_head"] < self.alpha
        return summary

    def max_explained_variance_head(self, cell_type: str) -> int:
        """Return the head that explains the most of a cell type's expression.

        Parameters
        ----------
        cell_type
            A receiver type of the result.

        Returns
        -------
        The head.
        """
        summary = self.summary
        rows = summary[summary["cell_type"] == str(cell_type)]
        if rows.empty:
            known = sorted(summary["cell_type"].unique())
            raise ValueError(f"No cell type {cell_type!r} in the result; it has {known}.")
        return int(rows.loc[rows["expl_var_head"].idxmax(), "head"])

    def to_dataframe(self) -> pd.DataFrame:
        """Return the long table (see :attr:`table`).

        Returns
        -------
        Columns ``head``, ``cell_type``, ``gene``, ``expl_var_head_gene``, ``expl_var_head``,
        ``p_value_head``, ``p_value_adj_head``, ``n_cells``.
        """
        return self.table[_COLUMNS].copy()

    def _parameters(self) -> dict[str, Any]:
        return {
            "alpha": self.alpha,
            "n_permutations": self.n_permutations,
            "seed": self.seed,
            "cells": self.cells,
        }

    @classmethod
    def _from_table(cls, table: pd.DataFrame, parameters: dict[str, Any]) -> ExplainedVariance:
        table = table.assign(
            cell_type=table["cell_type"].astype(str), gene=table["gene"].astype(str)
        )
        return cls(table=table[_COLUMNS], **parameters)

    plot_barplot = plot_method(
        "explained_variance_bars",
        "Bar per head and cell type: the share of the type's expression the head explains.",
        options="; pairs with an adjusted p-value below ``alpha`` are starred",
    )

    plot_gene_heatmap = plot_method(
        "explained_variance_heatmap",
        "Heatmap of the genes each significant (head, cell type) pair explains best.",
        options="(``cell_types``, ``n_top_genes``, ``cmap``)",
    )

    def _figures(self) -> Iterator[tuple[str, Axes]]:
        yield "barplot", self.plot_barplot()
        yield "gene_heatmap", self.plot_gene_heatmap()


def _unit_variance_weights(values: np.ndarray) -> np.ndarray:
    """One over each column's standard deviation (0 for constant columns)."""
    sd = values.std(axis=0)
    return np.where(sd > 0, 1.0 / np.where(sd > 0, sd, 1.0), 0.0)

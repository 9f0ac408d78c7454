"""Which genes two predictions of the same expression explain best, and which each prefers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from anndata import AnnData
from scipy.stats import rankdata

from lucidvi._docstrings import lucidvi_dsp

from .._core import r2_per_gene
from .._inputs import expression_matrix
from .._result import TableResult, plot_method

if TYPE_CHECKING:
    from collections.abc import Iterator

    from matplotlib.axes import Axes


def _prediction(
    prediction: np.ndarray | pd.DataFrame | str, adata: AnnData, name: str
) -> np.ndarray:
    if isinstance(prediction, str):
        if prediction not in adata.layers:
            raise ValueError(
                f"Prediction {name}={prediction!r} is not in adata.layers "
                f"(available: {list(adata.layers.keys())})."
            )
        prediction = adata.layers[prediction]
    if isinstance(prediction, pd.DataFrame):
        if not prediction.columns.equals(adata.var_names):
            prediction = prediction.reindex(columns=adata.var_names)
        prediction = prediction.to_numpy()
    values = prediction.toarray() if hasattr(prediction, "toarray") else np.asarray(prediction)
    values = values.astype(np.float64)
    if values.shape != adata.shape:
        raise ValueError(f"Prediction {name} has shape {values.shape}, adata has {adata.shape}.")
    if not np.all(np.isfinite(values)):
        raise ValueError(f"Prediction {name} contains NaN or infinite values (or absent genes).")
    return values


@dataclass(frozen=True, eq=False)
class GeneRanks(TableResult):
    """Per-gene predictive quality (R^2) of two predictions and the genes' ranks under each.

    Attributes
    ----------
    table
        One row per gene: ``gene``, ``r2_<a>``, ``r2_<b>``, ``rank_<a>``, ``rank_<b>`` (1 = the
        best predicted gene), ``rank_difference`` (``rank_<a> - rank_<b>``: negative when
        prediction ``a`` ranks the gene higher) and ``average_rank``; sorted by average rank.
    names
        Names of the two predictions.
    """

    table: pd.DataFrame
    names: tuple[str, str] = ("local", "global")

    def _validate(self) -> None:
        a, b = self.names
        if a == b:
            raise ValueError(f"The two predictions need different names, got {self.names}.")
        needed = ["gene", f"r2_{a}", f"r2_{b}", f"rank_{a}", f"rank_{b}", "rank_difference"]
        missing = [c for c in needed if c not in self.table.columns]
        if missing:
            raise ValueError(f"table lacks the columns {missing}.")

    @classmethod
    @lucidvi_dsp.dedent
    def compute(
        cls,
        adata: AnnData,
        pred_a: np.ndarray | pd.DataFrame | str,
        pred_b: np.ndarray | pd.DataFrame | str,
        layer: str | None = None,
        names: tuple[str, str] = ("local", "global"),
        *,
        log_normalize: bool | None = None,
    ) -> GeneRanks:
        """Score two predictions of the same expression gene by gene and compare the ranks.

        ``R^2_g = 1 - sum_i (y_ig - p_ig)^2 / sum_i (y_ig - mean_g(y))^2`` per gene (0 for genes
        without variance, negative when worse than the gene's mean). Genes are ranked by
        ``R^2`` under each prediction (ties share the average rank).

        Parameters
        ----------
        adata
            Cells x genes with the observed expression.
        pred_a, pred_b
            Cells x genes predictions, as arrays, DataFrames (columns = genes) or names of
            ``adata.layers``, on the scale of the compared expression: log-normalised when
            ``layer`` holds counts (the default), else the layer's own scale.
        %(expression_layer)s
        names
            Names of the two predictions (e.g. a model of the neighbourhood vs one of the cell).
        %(log_normalize)s

        Returns
        -------
        The ranks.
        """
        names = tuple(str(n) for n in names)
        if len(names) != 2:
            raise ValueError(f"names must hold two names, got {names}.")
        expression = expression_matrix(adata, layer, log_normalize)
        a, b = names
        r2_a = r2_per_gene(expression, _prediction(pred_a, adata, "pred_a"))
        r2_b = r2_per_gene(expression, _prediction(pred_b, adata, "pred_b"))
        rank_a, rank_b = rankdata(-r2_a), rankdata(-r2_b)
        table = pd.DataFrame(
            {
                "gene": adata.var_names.astype(str),
                f"r2_{a}": r2_a,
                f"r2_{b}": r2_b,
                f"rank_{a}": rank_a,
                f"rank_{b}": rank_b,
                "rank_difference": rank_a - rank_b,
                "average_rank": (rank_a + rank_b) / 2,
            }
        )
        table = table.sort_values("average_rank", kind="stable").reset_index(drop=True)
        return cls(table=table, names=names)

    def preferred(self, name: str, n_top: int = 10) -> pd.DataFrame:
        """Return the genes that prediction ``name`` ranks most above the other one.

        Parameters
        ----------
        name
            One of :attr:`names`.
        n_top
            Number of genes.

        Returns
        -------
        Rows of :attr:`table`, the largest rank gain first.
        """
        if name not in self.names:
            raise ValueError(f"name must be one of {self.names}, got {name!r}.")
        ascending = name == self.names[0]
        return self.table.sort_values("rank_difference", ascending=ascending).head(n_top)

    def best(self, n_top: int = 10) -> pd.DataFrame:
        """Return the genes best predicted overall (lowest average rank)."""
        return self.table.head(n_top)

    def to_dataframe(self) -> pd.DataFrame:
        """Return the per-gene table (see :attr:`table`)."""
        return self.table.copy()

    def _parameters(self) -> dict[str, Any]:
        return {"names": list(self.names)}

    @classmethod
    def _from_table(cls, table: pd.DataFrame, parameters: dict[str, Any]) -> GeneRanks:
        table = table.assign(gene=table["gene"].astype(str))
        return cls(table=table, names=tuple(parameters["names"]))

    plot_scatter = plot_method(
        "gene_ranks",
        "Scatter of the two R^2 values per gene, labelling the genes each prefers and the best.",
        options="(``n_top``: genes labelled in each group)",
    )

    def _figures(self) -> Iterator[tuple[str, Axes]]:
        yield "scatter", self.plot_scatter()

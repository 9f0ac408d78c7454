"""The genes that move most along each dimension, filtered for expression and specificity."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData

from lucidvi._docstrings import lucidvi_dsp

from .._core import residualize_columns, specificity
from .._inputs import column_moments, expression_matrix
from .._result import TableResult, plot_method
from ._gene_loadings import GeneLoadings

if TYPE_CHECKING:
    from collections.abc import Iterator

    from matplotlib.axes import Axes

# the columns every table has (compute() adds frac_expressed and sd)
_COLUMNS = ["dim", "direction", "rank", "gene", "loading", "score", "specificity"]


def _resolve_dims(dims: Sequence[int | str] | None, names: list[str]) -> list[str]:
    if dims is None:
        return names
    if isinstance(dims, (str, int, np.integer)):
        dims = [dims]
    resolved = []
    for dim in dims:
        if isinstance(dim, (int, np.integer)):
            if not -len(names) <= dim < len(names):
                raise IndexError(
                    f"Dimension index {dim} is out of range: the loadings have {len(names)} "
                    f"dimensions (0 to {len(names) - 1})."
                )
            resolved.append(names[dim])
        elif str(dim) in names:
            resolved.append(str(dim))
        else:
            raise KeyError(f"Dimension {dim!r} is not among the loadings' columns {names}.")
    if not resolved:
        raise ValueError("dims is empty: pass dimension names or indices, or None for all.")
    return list(dict.fromkeys(resolved))


def _fraction_expressed(matrix: np.ndarray | sp.spmatrix) -> np.ndarray:
    if sp.issparse(matrix):
        return np.asarray((matrix != 0).sum(axis=0)).ravel() / matrix.shape[0]
    return np.count_nonzero(np.asarray(matrix), axis=0) / matrix.shape[0]


@dataclass(frozen=True, eq=False)
class GenesPerDim(TableResult):
    """Top positive and negative genes of each dimension.

    Attributes
    ----------
    table
        One row per selected gene: ``dim``, ``direction`` (``"+"``/``"-"``), ``rank`` (1 = the
        strongest), ``gene``, ``loading`` (as given, on that dimension), ``score`` (what was
        ranked), ``specificity``, ``frac_expressed`` and ``sd``.
    heatmap_values
        Selected genes x dimensions loadings, for :meth:`plot_heatmap`.
    parameters
        The arguments of :meth:`compute`.
    """

    table: pd.DataFrame
    heatmap_values: pd.DataFrame
    parameters: dict[str, Any] = field(default_factory=dict)

    def _validate(self) -> None:
        missing = [c for c in _COLUMNS if c not in self.table.columns]
        if missing:
            raise ValueError(f"table lacks the columns {missing}.")

    @classmethod
    @lucidvi_dsp.dedent
    def compute(
        cls,
        adata: AnnData,
        loadings: GeneLoadings | pd.DataFrame,
        dims: Sequence[int | str] | None = None,
        n_top: int = 20,
        layer: str | None = None,
        min_frac: float = 0.1,
        min_sd: float | None = None,
        rank_by: Literal["loading", "loading_x_sd"] = "loading",
        residualize: bool = False,
        enforce_specificity: bool = False,
        specificity_mode: Literal["ratio", "margin"] = "ratio",
        specificity_min: float = 1.5,
        *,
        log_normalize: bool | None = None,
    ) -> GenesPerDim:
        """Pick each dimension's top positive and negative genes.

        A gene is a candidate when it is detected (non-zero) in at least ``min_frac`` of the
        cells and, if ``min_sd`` is given, its log-normalised expression has at least that SD.
        Candidates are ranked by ``score``: the loading, or the loading times the gene's SD
        (``"loading_x_sd"``: the change in expression units rather than in SD units, which
        favours genes that vary a lot).

        Parameters
        ----------
        adata
            Cells x genes with the loadings' genes.
        loadings
            :class:`GeneLoadings` (its standardised loadings are used) or genes x dimensions.
        dims
            Dimensions to report, by name or position (all when ``None``).
        n_top
            Genes per dimension and direction (fewer when fewer pass the filters).
        %(expression_layer)s
        min_frac
            Minimum fraction of cells in which a gene is detected.
        min_sd
            Minimum SD of a gene's log-normalised expression (no filter when ``None``).
        rank_by
            ``"loading"`` or ``"loading_x_sd"``.
        residualize
            Rank each dimension's loadings after removing their least-squares projection on
            the other dimensions' loadings, so genes shared by several dimensions drop.
        enforce_specificity
            Keep only genes whose loading on the dimension is at least ``specificity_min``
            times (``"ratio"``) or more than ``specificity_min`` above (``"margin"``, in
            loading units) their largest absolute loading on any other dimension.
        specificity_mode
            ``"ratio"`` or ``"margin"``.
        specificity_min
            Threshold of the specificity filter.
        %(log_normalize)s

        Returns
        -------
        The selected genes.
        """
        frame = loadings.loadings if isinstance(loadings, GeneLoadings) else loadings
        if not isinstance(frame, pd.DataFrame):
            raise TypeError("loadings must be a GeneLoadings or a genes x dimensions DataFrame.")
        if n_top < 1:
            raise ValueError(f"n_top must be at least 1, got {n_top}.")
        if rank_by not in ("loading", "loading_x_sd"):
            raise ValueError(f"rank_by must be 'loading' or 'loading_x_sd', got {rank_by!r}.")
        if not np.all(np.isfinite(frame.to_numpy())):
            raise ValueError("loadings contain NaN or infinite values.")
        absent = frame.index.difference(adata.var_names)
        if len(absent):
            raise ValueError(
                f"{len(absent)} genes of the loadings are not in adata.var_names "
                f"(e.g. {list(absent[:5])})."
            )
        names = [str(c) for c in frame.columns]
        chosen = _resolve_dims(dims, names)
        expression = expression_matrix(adata[:, frame.index], layer, log_normalize)
        _, sd = column_moments(expression)
        frac = _fraction_expressed(expression)
        values = frame.to_numpy(dtype=np.float64)
        ranked = residualize_columns(values) if residualize else values
        spec = specificity(ranked, specificity_mode)
        eligible = frac >= min_frac
        if min_sd is not None:
            eligible &= sd >= min_sd
        rows = []
        for dim in chosen:
            k = names.index(dim)
            score = ranked[:, k] * (sd if rank_by == "loading_x_sd" else 1.0)
            keep = eligible & (spec[:, k] >= specificity_min if enforce_specificity else True)
            for direction, sign in (("+", 1.0), ("-", -1.0)):
                candidates = np.flatnonzero(keep & (sign * score > 0))
                best = candidates[np.argsort(-sign * score[candidates], kind="stable")][:n_top]
                for rank, g in enumerate(best, start=1):
                    rows.append(
                        (dim, direction, rank, str(frame.index[g]), values[g, k], score[g])
                        + (spec[g, k], frac[g], sd[g])
                    )
        table = pd.DataFrame(rows, columns=[*_COLUMNS, "frac_expressed", "sd"])
        genes = list(dict.fromkeys(table["gene"]))
        heatmap = frame.loc[genes, [frame.columns[names.index(d)] for d in chosen]]
        heatmap.columns = chosen
        parameters = {
            "dims": chosen,
            "n_top": n_top,
            "min_frac": min_frac,
            "min_sd": min_sd,
            "rank_by": rank_by,
            "residualize": residualize,
            "enforce_specificity": enforce_specificity,
            "specificity_mode": specificity_mode,
            "specificity_min": specificity_min,
        }
        return cls(table=table, heatmap_values=heatmap.astype(np.float64), parameters=parameters)

    def gene_lists(self, include_empty: bool = False) -> dict[str, list[str]]:
        """Return the selected genes as lists named ``"<dim>+"`` and ``"<dim>-"``.

        Ready for :class:`GeneProgramEnrichment`.

        Parameters
        ----------
        include_empty
            Keep the lists of dimension/direction pairs where no gene passed the filters.

        Returns
        -------
        Gene lists in dimension order, each gene list from the strongest gene down.
        """
        lists: dict[str, list[str]] = {}
        for dim in self.parameters.get("dims", pd.unique(self.table["dim"])):
            for direction in ("+", "-"):
                rows = self.table[
                    (self.table["dim"] == dim) & (self.table["direction"] == direction)
                ]
                genes = rows.sort_values("rank")["gene"].tolist()
                if genes or include_empty:
                    lists[f"{dim}{direction}"] = genes
        return lists

    def to_dataframe(self) -> pd.DataFrame:
        """Return the table of selected genes (see :attr:`table`)."""
        return self.table.copy()

    def _parameters(self) -> dict[str, Any]:
        return {
            **self.parameters,
            "heatmap": {
                "genes": [str(g) for g in self.heatmap_values.index],
                "dims": [str(d) for d in self.heatmap_values.columns],
                "values": self.heatmap_values.to_numpy().tolist(),
            },
        }

    @classmethod
    def _from_table(cls, table: pd.DataFrame, parameters: dict[str, Any]) -> GenesPerDim:
        heatmap = parameters.pop("heatmap")
        values = pd.DataFrame(
            np.asarray(heatmap["values"], dtype=np.float64).reshape(
                len(heatmap["genes"]), len(heatmap["dims"])
            ),
            index=heatmap["genes"],
            columns=heatmap["dims"],
        )
        table = table.assign(dim=table["dim"].astype(str), gene=table["gene"].astype(str))
        return cls(table=table, heatmap_values=values, parameters=parameters)

    plot_heatmap = plot_method(
        "genes_per_dim_heatmap",
        "Heatmap of the selected genes' loadings (genes x dimensions, diverging colours).",
    )

    def _figures(self) -> Iterator[tuple[str, Axes]]:
        yield "heatmap", self.plot_heatmap()

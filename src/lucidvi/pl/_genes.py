"""Plots of gene-level results: genes per dimension and gene ranks under two predictions."""

from __future__ import annotations

from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import TwoSlopeNorm

from lucidvi._docstrings import lucidvi_dsp

from ._style import plot_style

if TYPE_CHECKING:
    from lucidvi.interpretation import GeneRanks, GenesPerDim


@lucidvi_dsp.dedent
def genes_per_dim_heatmap(
    result: GenesPerDim, *, ax: Axes | None = None, cmap: str = "RdBu_r"
) -> Axes:
    """Heatmap (genes x dimensions) of the loadings of each dimension's selected genes.

    Genes are grouped by the dimension and direction that selected them (each gene once, at
    its first selection), on a diverging colour scale centred at zero.

    Parameters
    ----------
    result
        A :class:`~lucidvi.interpretation.GenesPerDim`.
    %(ax)s
    %(cmap)s

    Returns
    -------
    The Axes.
    """
    values = result.heatmap_values
    with plot_style({"font.size": 7}):
        if ax is None:
            height = max(3.0, 0.13 * len(values) + 1.2)
            _, ax = plt.subplots(figsize=(0.45 * values.shape[1] + 2.8, height))
        if values.empty:
            ax.text(0.5, 0.5, "no gene passed the filters", ha="center", transform=ax.transAxes)
            ax.set_axis_off()
            return ax
        limit = float(np.abs(values.to_numpy()).max()) or 1.0
        image = ax.imshow(
            values.to_numpy(),
            aspect="auto",
            cmap=cmap,
            norm=TwoSlopeNorm(0.0, -limit, limit),
            interpolation="nearest",
        )
        ax.set_xticks(range(values.shape[1]), values.columns, rotation=90)
        ax.set_yticks(range(len(values)), values.index)
        first = result.table.drop_duplicates("gene").set_index("gene")
        groups = (first.loc[values.index, "dim"] + first.loc[values.index, "direction"]).to_numpy()
        for boundary in np.flatnonzero(groups[1:] != groups[:-1]):
            ax.axhline(boundary + 0.5, color="black", linewidth=0.4)
        ax.set_xlabel("dimension")
        ax.set_title("Top genes per dimension (+ then -)")
        ax.figure.colorbar(image, ax=ax, label="loading", shrink=0.6)
    return ax


@lucidvi_dsp.dedent
def gene_ranks(result: GeneRanks, *, n_top: int = 10, ax: Axes | None = None) -> Axes:
    """Scatter of each gene's R^2 under two predictions, labelling the most telling genes.

    Labelled: the ``n_top`` genes each prediction ranks most above the other (one colour per
    prediction) and the ``n_top`` best predicted overall (lowest average rank).

    Parameters
    ----------
    result
        A :class:`~lucidvi.interpretation.GeneRanks`.
    n_top
        Genes labelled per group.
    %(ax)s

    Returns
    -------
    The Axes.
    """
    a, b = result.names
    table = result.table
    groups = [
        (f"preferred by {a}", result.preferred(a, n_top), "tab:orange"),
        (f"preferred by {b}", result.preferred(b, n_top), "tab:blue"),
        ("best overall", result.best(n_top), "tab:green"),
    ]
    with plot_style({"font.size": 8}):
        if ax is None:
            _, ax = plt.subplots(figsize=(5.2, 4.8))
        ax.scatter(table[f"r2_{a}"], table[f"r2_{b}"], s=6, color="lightgray", label="all genes")
        for label, rows, color in groups:
            ax.scatter(rows[f"r2_{a}"], rows[f"r2_{b}"], s=14, color=color, label=label)
            for gene, x, y in zip(rows["gene"], rows[f"r2_{a}"], rows[f"r2_{b}"], strict=True):
                ax.annotate(str(gene), (x, y), fontsize=6, color=color)
        low = float(min(table[f"r2_{a}"].min(), table[f"r2_{b}"].min(), 0.0))
        high = float(max(table[f"r2_{a}"].max(), table[f"r2_{b}"].max(), 0.0))
        ax.plot([low, high], [low, high], color="black", linewidth=0.6, linestyle="--")
        ax.set(xlabel=f"R$^2$ ({a})", ylabel=f"R$^2$ ({b})", title="Per-gene predictive quality")
        ax.legend(loc="upper left", frameon=False)
    return ax

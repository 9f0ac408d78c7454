"""Plots of how much of each receiver type's expression each attention head explains."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from lucidvi._docstrings import lucidvi_dsp

from ._heatmap import labelled_heatmap
from ._style import plot_style

if TYPE_CHECKING:
    from lucidvi.interpretation import ExplainedVariance


@lucidvi_dsp.dedent
def explained_variance_bars(result: ExplainedVariance, *, ax: Axes | None = None) -> Axes:
    """Plot grouped bars: per head, the explained variance of each receiver type.

    Parameters
    ----------
    result
        An :class:`~lucidvi.interpretation.ExplainedVariance`.
    %(ax)s

    Returns
    -------
    The Axes; a star marks pairs with an adjusted p-value below the result's ``alpha``.
    """
    summary = result.summary
    heads = np.sort(summary["head"].unique())
    types = list(dict.fromkeys(summary["cell_type"]))
    width = 0.8 / len(types)
    colors = plt.get_cmap("tab20")(np.arange(len(types)) % 20)
    with plot_style({"font.size": 8}):
        if ax is None:
            _, ax = plt.subplots(figsize=(max(5.0, 0.9 * len(heads) + 2.5), 3.6))
        for k, cell_type in enumerate(types):
            rows = summary[summary["cell_type"] == cell_type].set_index("head").reindex(heads)
            x = np.arange(len(heads)) - 0.4 + (k + 0.5) * width
            values = rows["expl_var_head"].to_numpy()
            ax.bar(x, values, width, color=colors[k], label=cell_type)
            starred = rows["significant"].fillna(False).to_numpy(dtype=bool)
            for xi, value in zip(x[starred], values[starred], strict=True):
                ax.annotate("*", (xi, max(value, 0.0)), ha="center", va="bottom", fontsize=9)
        ax.axhline(0.0, color="black", linewidth=0.5)
        ax.set_xticks(range(len(heads)), [str(h) for h in heads])
        ax.set(xlabel="head", ylabel="explained variance (mean over genes)")
        ax.set_title(f"Explained variance per head ({result.cells}); * adjusted p < {result.alpha}")
        ax.legend(fontsize=6, ncol=2, frameon=False, bbox_to_anchor=(1.01, 1), loc="upper left")
    return ax


@lucidvi_dsp.dedent
def explained_variance_heatmap(
    result: ExplainedVariance,
    *,
    cell_types: Sequence[str] | None = None,
    n_top_genes: int = 20,
    ax: Axes | None = None,
    cmap: str = "viridis",
) -> Axes:
    """Heatmap of per-gene explained variance: (head, cell type) pairs x their top genes.

    Rows are the significant pairs of the chosen types (every pair of them when none is
    significant); columns the union of each row's ``n_top_genes`` best explained genes.

    Parameters
    ----------
    result
        An :class:`~lucidvi.interpretation.ExplainedVariance`.
    cell_types
        Receiver types to show (default: those with a significant head, else all).
    n_top_genes
        Genes per pair.
    %(ax)s
    %(cmap)s

    Returns
    -------
    The Axes.
    """
    if n_top_genes < 1:
        raise ValueError(f"n_top_genes must be >= 1, got {n_top_genes}.")
    summary = result.summary
    if cell_types is None:
        chosen = summary[summary["significant"]]
        chosen = chosen if not chosen.empty else summary
    else:
        cell_types = [cell_types] if isinstance(cell_types, str) else cell_types
        unknown = sorted(set(map(str, cell_types)) - set(summary["cell_type"]))
        if unknown:
            raise ValueError(f"Unknown cell types {unknown}.")
        chosen = summary[summary["cell_type"].isin(list(map(str, cell_types)))]
        significant = chosen[chosen["significant"]]
        chosen = significant if not significant.empty else chosen
    pairs = list(zip(chosen["head"], chosen["cell_type"], strict=True))
    table = result.table.set_index(["head", "cell_type"])
    genes: list[str] = []
    for pair in pairs:
        rows = table.loc[pair]
        top = rows.nlargest(n_top_genes, "expl_var_head_gene")["gene"]
        genes.extend(g for g in top if g not in genes)
    values = pd.DataFrame(
        [table.loc[pair].set_index("gene").loc[genes, "expl_var_head_gene"] for pair in pairs],
        index=[f"head {h} · {t}" for h, t in pairs],
        columns=genes,
    )
    with plot_style({"font.size": 7}):
        ax = labelled_heatmap(values, ax, cmap, "explained variance", cell_size=(0.16, 0.3))
        ax.set_title("Genes each head explains best")
    return ax

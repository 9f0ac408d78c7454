"""Heatmap of factor loadings for the genes that load most on each factor."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.colors import TwoSlopeNorm

from lucidvi._docstrings import lucidvi_dsp

from ._style import plot_style


def _extreme_genes(loadings: pd.DataFrame, n_top: int) -> list[str]:
    """Each factor's ``n_top`` most positive then most negative genes, each gene once."""
    if n_top < 1:
        raise ValueError(f"n_top must be at least 1, got {n_top}.")
    genes = []
    for factor in loadings.columns:
        column = loadings[factor].sort_values()
        genes += [*column.index[::-1][:n_top], *column.index[:n_top]]
    return list(dict.fromkeys(genes))


@lucidvi_dsp.dedent
def loadings_heatmap(
    loadings: pd.DataFrame,
    *,
    n_top: int = 3,
    ax: Axes | None = None,
    cmap: str = "RdBu_r",
) -> Axes:
    """Heatmap (genes x factors) of the loadings of each factor's most extreme genes.

    For each factor, the ``n_top`` genes with the largest positive and the ``n_top`` with the
    largest negative loading are shown (each gene once), in factor order, on a diverging colour
    scale centred at zero (the genes of :func:`lucidvi.tl.top_loading_genes`).

    Parameters
    ----------
    loadings
        Genes x factors, e.g. :meth:`lucidvi.model.LinearVI.get_loadings`.
    n_top
        Genes per factor and direction.
    %(ax)s
    %(cmap)s

    Returns
    -------
    The Axes with the heatmap.
    """
    genes = _extreme_genes(loadings, n_top)
    values = loadings.loc[genes].to_numpy()
    limit = float(np.abs(values).max()) or 1.0
    with plot_style({"font.size": 8}):
        if ax is None:
            height = max(3.0, 0.16 * len(genes) + 1.0)
            _, ax = plt.subplots(figsize=(0.45 * loadings.shape[1] + 2.5, height))
        image = ax.imshow(
            values,
            aspect="auto",
            cmap=cmap,
            norm=TwoSlopeNorm(0.0, -limit, limit),
            interpolation="nearest",
        )
        ax.set_xticks(range(loadings.shape[1]), loadings.columns, rotation=90)
        ax.set_yticks(range(len(genes)), genes)
        ax.set_xlabel("factor")
        ax.set_title(f"Top {n_top} +/- genes per factor")
        ax.figure.colorbar(image, ax=ax, label="loading", shrink=0.6)
    return ax

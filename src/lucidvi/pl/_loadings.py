"""Heatmap of factor loadings for the genes that load most on each factor."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.colors import TwoSlopeNorm

from ._style import plot_style


def top_loading_genes(loadings: pd.DataFrame, n_top: int = 10) -> pd.DataFrame:
    """List the genes with the largest positive and negative loading on each factor.

    Parameters
    ----------
    loadings
        Genes x factors, e.g. :meth:`lucidvi.model.LinearVI.get_loadings`.
    n_top
        Genes per factor and direction.

    Returns
    -------
    Tidy DataFrame with columns ``factor``, ``direction`` (``"+"``/``"-"``), ``rank``
    (1 = most extreme), ``gene`` and ``loading``.
    """
    if n_top < 1:
        raise ValueError(f"n_top must be at least 1, got {n_top}.")
    rows = []
    for factor in loadings.columns:
        column = loadings[factor].sort_values()
        for direction, genes in (("+", column[::-1][:n_top]), ("-", column[:n_top])):
            for rank, (gene, value) in enumerate(genes.items(), start=1):
                rows.append((factor, direction, rank, gene, float(value)))
    return pd.DataFrame(rows, columns=["factor", "direction", "rank", "gene", "loading"])


def loadings_heatmap(
    loadings: pd.DataFrame,
    n_top: int = 3,
    ax: Axes | None = None,
    cmap: str = "RdBu_r",
) -> Axes:
    """Heatmap (genes x factors) of the loadings of each factor's most extreme genes.

    For each factor, the ``n_top`` genes with the largest positive and the ``n_top`` with the
    largest negative loading are shown (each gene once), in factor order, on a diverging colour
    scale centred at zero.

    Parameters
    ----------
    loadings
        Genes x factors, e.g. :meth:`lucidvi.model.LinearVI.get_loadings`.
    n_top
        Genes per factor and direction.
    ax
        Axes to draw into (a new figure when ``None``).
    cmap
        Diverging colour map.

    Returns
    -------
    The Axes with the heatmap.
    """
    top = top_loading_genes(loadings, n_top)
    genes = list(dict.fromkeys(top["gene"]))
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

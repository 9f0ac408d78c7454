"""Plots of an embedding's dimensions: their correlations and their importance."""

from __future__ import annotations

from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes

from lucidvi._docstrings import lucidvi_dsp

from ._style import plot_style

if TYPE_CHECKING:
    from lucidvi.interpretation import DimImportance, LatentReport


def _cluster_order(correlation: np.ndarray) -> np.ndarray:
    """Leaf order of average-linkage clustering on the distance ``1 - |correlation|``."""
    if len(correlation) < 3:
        return np.arange(len(correlation))
    from scipy.cluster.hierarchy import leaves_list, linkage
    from scipy.spatial.distance import squareform

    distance = 1.0 - np.abs(correlation)
    np.fill_diagonal(distance, 0.0)
    condensed = squareform(np.clip((distance + distance.T) / 2, 0.0, None), checks=False)
    return leaves_list(linkage(condensed, method="average"))


@lucidvi_dsp.dedent
def latent_correlation(
    report: LatentReport, *, ax: Axes | None = None, cmap: str = "RdBu_r"
) -> Axes:
    """Clustered heatmap of the correlations between an embedding's dimensions.

    Dimensions are ordered by average-linkage clustering on ``1 - |correlation|``, so groups
    of dimensions that move together sit next to each other.

    Parameters
    ----------
    report
        A :class:`~lucidvi.interpretation.LatentReport`.
    %(ax)s
    %(cmap)s

    Returns
    -------
    The Axes.
    """
    values = report.correlation.to_numpy()
    order = _cluster_order(values)
    labels = report.correlation.columns[order]
    with plot_style({"font.size": 8}):
        if ax is None:
            size = max(3.5, 0.35 * report.n_dims + 1.5)
            _, ax = plt.subplots(figsize=(size + 0.8, size))
        image = ax.imshow(values[np.ix_(order, order)], cmap=cmap, vmin=-1, vmax=1)
        ax.set_xticks(range(report.n_dims), labels, rotation=90)
        ax.set_yticks(range(report.n_dims), labels)
        ax.set_title(f"Correlation between dimensions (rank {report.rank}/{report.n_dims})")
        ax.figure.colorbar(image, ax=ax, label="Pearson correlation", shrink=0.7)
    return ax


@lucidvi_dsp.dedent
def dim_importance_elbow(result: DimImportance, *, ax: Axes | None = None) -> Axes:
    """Elbow plot: importance per dimension in decreasing order, with the cumulative share.

    Bars show each dimension's importance; the line (right axis) its cumulative share; the
    dashed lines mark the cutoff and the number of dimensions that reach it.

    Parameters
    ----------
    result
        A :class:`~lucidvi.interpretation.DimImportance`.
    %(ax)s

    Returns
    -------
    The Axes with the bars (the cumulative share is on its twin).
    """
    table = result.to_dataframe()
    positions = np.arange(len(table))
    with plot_style({"font.size": 8}):
        if ax is None:
            _, ax = plt.subplots(figsize=(max(4.0, 0.4 * len(table) + 1.5), 3.2))
        colors = np.where(table["selected"], "tab:blue", "lightgray")
        ax.bar(positions, table["importance"], color=colors)
        ax.set_xticks(positions, table["dim"], rotation=90)
        ax.set_ylabel("share of variance" if result.use_ratio else "variance accounted for")
        ax.set_xlabel("dimension (most to least important)")
        twin = ax.twinx()
        twin.plot(positions, table["cumulative_ratio"], color="black", marker="o", markersize=3)
        twin.axhline(result.cumulative_cutoff, color="tab:red", linestyle="--", linewidth=1)
        twin.axvline(result.n_dims_at_cutoff - 0.5, color="tab:red", linestyle="--", linewidth=1)
        twin.set_ylim(0, 1.05)
        twin.set_ylabel("cumulative share")
        ax.set_title(
            f"Dimension importance ({result.mode}): {result.n_dims_at_cutoff} reach "
            f"{result.cumulative_cutoff:.0%}"
        )
    return ax

"""Plots of a fitted :class:`~lucidvi.model.MixtureVI`: expression models and choice of K."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy.stats import gamma

from ._style import plot_style

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from lucidvi.model import MixtureVI

_STYLE = {"axes.spines.top": False, "axes.spines.right": False, "font.size": 9}


def cluster_expression(
    model: MixtureVI,
    gene: str,
    clusters: Sequence[int] | None = None,
    scale: float = 1e4,
    ax: Axes | None = None,
) -> Axes:
    r"""Each cluster's fitted Gamma expression model of a gene, over the observed cells.

    The mixture says that a cell of cluster ``k`` expresses ``gene`` at rate
    ``lambda ~ Gamma(shape 1/phi_k, rate 1/(phi_k mu_k))`` per unit size factor; its counts are
    Poisson around ``s_i lambda``. A cluster merged from several components
    (``n_components > n_clusters``) has the weighted mixture of its components' Gammas. On a
    ``log1p`` axis (markers span orders of magnitude),
    lines show the densities of ``log1p(scale * lambda)`` and bars the cells'
    ``log1p(scale * x / s)`` (counts per ``scale`` when ``s`` is the library size), coloured
    by their most probable cluster. The Poisson noise widens the bars beyond the lines, most
    for lowly expressed genes, and puts the cells without counts at 0.

    Parameters
    ----------
    model
        A trained MixtureVI.
    gene
        Gene name (in ``model.adata.var_names``).
    clusters
        Clusters to draw (default: all).
    scale
        Multiplier of the expression axis.
    ax
        Axes to draw into (a new figure when ``None``).

    Returns
    -------
    The Axes.
    """
    if gene not in model.adata.var_names:
        raise ValueError(f"gene={gene!r} is not one of the model's genes.")
    params = model.get_cluster_parameters(level="component")
    clusters = list(range(model.n_clusters)) if clusters is None else list(clusters)
    column = model.adata.var_names.get_loc(gene)
    chunks = model._chunks()
    counts = chunks.counts[:, column]
    counts = np.asarray(counts.toarray() if hasattr(counts, "toarray") else counts).ravel()
    observed = np.log1p(scale * counts / np.exp(chunks.log_size))
    assignment = model.get_cluster_assignments().to_numpy()
    means = params["mean"].iloc[:, column].to_numpy() * scale
    shapes = 1.0 / params["dispersion"].iloc[:, column].to_numpy()
    weights = params["weight"].to_numpy()
    of_cluster = params["cluster"].to_numpy()
    drawn = np.isin(of_cluster, clusters)
    upper = gamma.ppf(0.999, a=shapes[drawn], scale=means[drawn] / shapes[drawn])
    top = max(observed.max(), np.log1p(upper).max()) * 1.05 + 1e-9
    grid = np.linspace(0.0, top, 500)[1:]
    bins = np.linspace(0.0, top, 40)
    with plot_style(_STYLE):
        if ax is None:
            _, ax = plt.subplots(figsize=(5.5, 3.5))
        colours = plt.get_cmap("tab20")
        for i, k in enumerate(clusters):
            colour = colours(i % 20)
            values = observed[assignment == k]
            if values.size:
                ax.hist(values, bins=bins, density=True, alpha=0.25, color=colour)
            # density of y = log1p(lambda): p(y) = p_lambda(e^y - 1) e^y
            mine = np.flatnonzero(of_cluster == k)
            density = sum(
                weights[c] * gamma.pdf(np.expm1(grid), a=shapes[c], scale=means[c] / shapes[c])
                for c in mine
            ) * (np.exp(grid) / weights[mine].sum())
            ax.plot(grid, density, color=colour, lw=1.5, label=f"{k} (n={values.size})")
        ax.set_xlabel(f"log1p({gene} per {scale:g} of size factor)")
        ax.set_ylabel("density")
        ax.set_title(f"{gene}: fitted Gamma per cluster (lines), cells (bars)")
        ax.legend(title="cluster", fontsize=7, frameon=False, ncol=2)
    return ax


def n_clusters_criterion(
    table: pd.DataFrame,
    criterion: Literal["bic", "icl", "heldout"] = "bic",
    ax: Axes | None = None,
) -> Axes:
    """Plot the criterion of :meth:`~lucidvi.model.MixtureVI.select_n_clusters` against K.

    Parameters
    ----------
    table
        The table returned by ``select_n_clusters``.
    criterion
        Which column to draw (``"heldout"`` draws the held-out log-likelihood).
    ax
        Axes to draw into (a new figure when ``None``).

    Returns
    -------
    The Axes, the selected K marked.
    """
    column = "heldout_log_likelihood" if criterion == "heldout" else criterion
    if column not in table.columns:
        raise ValueError(f"The table has no {column!r} column (columns: {list(table.columns)}).")
    with plot_style(_STYLE):
        if ax is None:
            _, ax = plt.subplots(figsize=(4.5, 3.2))
        ax.plot(table.index, table[column], marker="o", color="0.3")
        values = table[column]
        best = values.idxmax() if criterion == "heldout" else values.idxmin()
        ax.scatter([best], [values[best]], s=90, facecolor="none", edgecolor="C3", zorder=3)
        ax.set_xlabel("number of clusters K")
        better = "higher" if criterion == "heldout" else "lower"
        ax.set_ylabel(f"{column} ({better} is better)")
        ax.set_xticks(list(table.index))
    return ax

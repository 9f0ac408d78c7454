"""Plots of a mixture of negative binomials: expression models per cluster, and choice of K."""

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

_STYLE = {"axes.spines.top": False, "axes.spines.right": False, "font.size": 9}


def cluster_expression(
    expression: pd.Series | np.ndarray,
    cell_clusters: pd.Series | np.ndarray | Sequence[int],
    components: pd.DataFrame,
    *,
    clusters: Sequence[int] | None = None,
    scale: float = 1e4,
    ax: Axes | None = None,
) -> Axes:
    r"""Each cluster's fitted Gamma expression model of a gene, over the observed cells.

    A mixture of negative binomials (:class:`~lucidvi.model.MixtureVI`) says that a cell of
    component ``c`` expresses the gene at rate ``lambda ~ Gamma(shape 1/phi_c, rate 1/(phi_c
    mu_c))`` per unit size factor; its counts are Poisson around ``s_i lambda``. A cluster of
    several components has the weighted mixture of their Gammas. On a ``log1p`` axis (markers
    span orders of magnitude), lines show the densities of ``log1p(scale * lambda)`` and bars
    the cells' ``log1p(scale * x / s)`` (counts per ``scale`` when ``s`` is the library size),
    coloured by their cluster. The Poisson noise widens the bars beyond the lines, most for
    lowly expressed genes, and puts the cells without counts at 0.
    :meth:`lucidvi.model.MixtureVI.plot_cluster_expression` collects these inputs for a gene.

    Parameters
    ----------
    expression
        Each cell's count of the gene divided by its size factor, ``x_i / s_i``; the name of a
        Series (the gene) labels the axis.
    cell_clusters
        Each cell's cluster, in the order of ``expression``.
    components
        One row per mixture component, with the columns ``mean`` (``mu_c``, expression per unit
        size factor), ``dispersion`` (``phi_c``), ``weight`` (``pi_c``) and ``cluster`` (the
        cluster the component belongs to).
    clusters
        Clusters to draw (default: every cluster of ``components``).
    scale
        Multiplier of the expression axis.
    ax
        Axes to draw into (a new figure when ``None``).

    Returns
    -------
    The Axes.
    """
    missing = {"mean", "dispersion", "weight", "cluster"} - set(components.columns)
    if missing:
        raise ValueError(f"components lacks the columns {sorted(missing)}.")
    values = np.asarray(expression, dtype=np.float64).ravel()
    assignment = np.asarray(cell_clusters).ravel()
    if len(assignment) != len(values):
        raise ValueError(
            f"cell_clusters has {len(assignment)} values but expression {len(values)}: give "
            "one cluster per cell."
        )
    name = getattr(expression, "name", None) or "expression"
    of_cluster = components["cluster"].to_numpy()
    clusters = sorted(np.unique(of_cluster).tolist()) if clusters is None else list(clusters)
    observed = np.log1p(scale * values)
    means = components["mean"].to_numpy(dtype=np.float64) * scale
    shapes = 1.0 / components["dispersion"].to_numpy(dtype=np.float64)
    weights = components["weight"].to_numpy(dtype=np.float64)
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
            cells = observed[assignment == k]
            if cells.size:
                ax.hist(cells, bins=bins, density=True, alpha=0.25, color=colour)
            # density of y = log1p(lambda): p(y) = p_lambda(e^y - 1) e^y
            mine = np.flatnonzero(of_cluster == k)
            density = sum(
                weights[c] * gamma.pdf(np.expm1(grid), a=shapes[c], scale=means[c] / shapes[c])
                for c in mine
            ) * (np.exp(grid) / weights[mine].sum())
            ax.plot(grid, density, color=colour, lw=1.5, label=f"{k} (n={cells.size})")
        ax.set_xlabel(f"log1p({name} per {scale:g} of size factor)")
        ax.set_ylabel("density")
        ax.set_title(f"{name}: fitted Gamma per cluster (lines), cells (bars)")
        ax.legend(title="cluster", fontsize=7, frameon=False, ncol=2)
    return ax


def n_clusters_criterion(
    table: pd.DataFrame,
    *,
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

"""Plots of the cell-type interactions found by neighbour ablation: matrix and directed graph."""

from __future__ import annotations

from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.patches import FancyArrowPatch

from lucidvi._docstrings import lucidvi_dsp

from ._heatmap import labelled_heatmap
from ._style import plot_style

if TYPE_CHECKING:
    from lucidvi.interpretation import InteractionReach, NeighborAblation


@lucidvi_dsp.dedent
def interaction_heatmap(
    result: NeighborAblation, *, ax: Axes | None = None, cmap: str = "Purples"
) -> Axes:
    """Heatmap of significant genes per sender type (rows) and receiver type (columns).

    Parameters
    ----------
    result
        A :class:`~lucidvi.interpretation.NeighborAblation`.
    %(ax)s
    %(cmap)s

    Returns
    -------
    The Axes, with the counts written in the cells.
    """
    matrix = result.interaction_matrix()
    values = matrix.to_numpy()
    with plot_style({"font.size": 7}):
        ax = labelled_heatmap(matrix, ax, cmap, "significant genes")
        top = values.max() if values.size else 0
        for (row, column), value in np.ndenumerate(values):
            if value:
                color = "white" if value > top / 2 else "black"
                ax.text(column, row, str(value), ha="center", va="center", color=color)
        ax.set(xlabel="receiver type", ylabel="masked sender type")
        ax.set_title(f"Genes the senders significantly help predict ({result.cells})")
    return ax


@lucidvi_dsp.dedent
def interaction_graph(
    result: NeighborAblation, *, min_genes: int = 1, ax: Axes | None = None
) -> Axes:
    """Directed graph of sender -> receiver interactions, cell types on a circle.

    Parameters
    ----------
    result
        A :class:`~lucidvi.interpretation.NeighborAblation`.
    min_genes
        Draw pairs with at least this many significant genes.
    %(ax)s

    Returns
    -------
    The Axes; arrow width grows with the number of significant genes (labelled on the arrow).
    """
    matrix = result.interaction_matrix()
    types = list(dict.fromkeys([*matrix.index, *matrix.columns]))
    angle = 2 * np.pi * np.arange(len(types)) / max(len(types), 1)
    position = {t: (np.cos(a), np.sin(a)) for t, a in zip(types, angle, strict=True)}
    edges = [
        (sender, receiver, int(matrix.loc[sender, receiver]))
        for sender in matrix.index
        for receiver in matrix.columns
        if matrix.loc[sender, receiver] >= max(min_genes, 1)
    ]
    widest = max((n for *_, n in edges), default=1)
    with plot_style({"font.size": 7}):
        if ax is None:
            _, ax = plt.subplots(figsize=(4.8, 4.8))
        for t, (x, y) in position.items():
            ax.scatter([x], [y], s=120, color="lightgray", edgecolor="black", zorder=3)
            ax.annotate(t, (1.15 * x, 1.15 * y), ha="center", va="center")
        for sender, receiver, n in edges:
            start, end = position[sender], position[receiver]
            style = "arc3,rad=0.6" if sender == receiver else "arc3,rad=0.15"
            if sender == receiver:
                end = (start[0] * 1.001 + 0.05, start[1] * 1.001 + 0.05)
            arrow = FancyArrowPatch(
                start,
                end,
                connectionstyle=style,
                arrowstyle="-|>",
                mutation_scale=10,
                linewidth=0.5 + 3.5 * n / widest,
                color="tab:purple",
                shrinkA=8,
                shrinkB=8,
                zorder=2,
            )
            ax.add_patch(arrow)
            middle = (0.5 * (start[0] + end[0]), 0.5 * (start[1] + end[1]))
            ax.annotate(str(n), middle, ha="center", va="center", color="tab:purple")
        ax.set_xlim(-1.45, 1.45)
        ax.set_ylim(-1.45, 1.45)
        ax.set_aspect("equal")
        ax.set_axis_off()
        ax.set_title("Interactions (significant genes, sender -> receiver)")
        if not edges:
            ax.text(0.5, 0.5, "no significant interaction", ha="center", transform=ax.transAxes)
    return ax


@lucidvi_dsp.dedent
def interaction_volcano(
    result: NeighborAblation,
    *,
    sender_type: str,
    receiver_type: str,
    n_labels: int = 10,
    ax: Axes | None = None,
) -> Axes:
    """Volcano plot of one pair's genes: observed fold change against the test's significance.

    Parameters
    ----------
    result
        A :class:`~lucidvi.interpretation.NeighborAblation`.
    %(interaction_pair)s
    n_labels
        Name this many genes, the first of
        :meth:`~lucidvi.interpretation.NeighborAblation.interaction_genes`.
    %(ax)s

    Returns
    -------
    The Axes: affected against other receivers, log2 fold change of the observed means (the
    difference for ``"gaussian"`` models) on x, ``-log10`` of the adjusted p-value on y;
    significant genes in colour.
    """
    ranked = result.interaction_genes(sender_type=sender_type, receiver_type=receiver_type)
    fold = ranked["observed_log2_fold_change"]
    counts = fold.notna().any()
    x = (fold if counts else ranked["observed_change"]).to_numpy()
    adjusted = ranked["de_p_value_adj"].to_numpy()
    smallest = np.nanmin(adjusted[adjusted > 0], initial=1.0)
    y = -np.log10(np.clip(adjusted, smallest, None))  # p = 0 drawn at the smallest p > 0
    significant = ranked["de_significant"].to_numpy()
    with plot_style({"font.size": 7}):
        if ax is None:
            _, ax = plt.subplots(figsize=(4.2, 3.6))
        title = f"{sender_type} -> {receiver_type} ({result.cells})"
        if np.isnan(adjusted).all():
            ax.text(0.5, 0.5, "no receiver affected", ha="center", transform=ax.transAxes)
            ax.set_axis_off()
            ax.set_title(title)
            return ax
        ax.scatter(
            x[~significant], y[~significant], s=5, color="lightgray", label="not significant"
        )
        ax.scatter(
            x[significant], y[significant], s=7, color="tab:purple",
            label=f"adjusted p < {result.alpha:g} ({significant.sum()})",
        )  # fmt: skip
        for gene, gx, gy in list(zip(ranked.index, x, y, strict=True))[:n_labels]:
            ax.annotate(gene, (gx, gy), xytext=(2, 2), textcoords="offset points", fontsize=6)
        ax.axvline(0.0, color="black", linewidth=0.5)
        n_affected = int(ranked["n_affected"].iloc[0])
        ax.set(
            xlabel=("log2 fold change" if counts else "difference")
            + f", {n_affected} affected vs other receivers",
            ylabel="-log10 adjusted p-value",
            title=title,
        )
        ax.legend(frameon=False, loc="upper left")
    return ax


@lucidvi_dsp.dedent
def interaction_reach_curves(
    result: InteractionReach, *, n_pairs: int = 5, ax: Axes | None = None
) -> Axes:
    """Fitted probability that a receiver is affected, against the distance to the nearest sender.

    Parameters
    ----------
    result
        An :class:`~lucidvi.interpretation.InteractionReach`.
    n_pairs
        Draw this many pairs with a reach, those with the most affected receivers.
    %(ax)s

    Returns
    -------
    The Axes: one logistic curve per sender -> receiver pair, its reach (probability one half)
    marked with a dot and its bootstrap interval as a bar.
    """
    table = result.table.dropna(subset=["reach"]).nlargest(n_pairs, "n_affected")
    with plot_style({"font.size": 7}):
        if ax is None:
            _, ax = plt.subplots(figsize=(4.6, 3.2))
        if table.empty:
            ax.text(0.5, 0.5, "no pair with a reach", ha="center", transform=ax.transAxes)
            ax.set_axis_off()
            return ax
        distance = np.linspace(0.0, 2.0 * float(table["ci_high"].max()), 200)
        for row in table.itertuples(index=False):
            logit = row.logit_intercept + row.logit_slope * distance
            (line,) = ax.plot(
                distance,
                1 / (1 + np.exp(-logit)),
                label=f"{row.sender_type} -> {row.receiver_type}",
            )
            ax.plot([row.reach], [0.5], "o", color=line.get_color())
            ax.plot([row.ci_low, row.ci_high], [0.5, 0.5], color=line.get_color(), linewidth=3)
        ax.axhline(0.5, color="black", linewidth=0.5, linestyle="--")
        ax.set(
            xlabel="distance to the nearest sender",
            ylabel="P(receiver affected)",
            ylim=(0, 1),
            title=f"Reach of the interactions ({result.cells})",
        )
        ax.legend(frameon=False)
    return ax

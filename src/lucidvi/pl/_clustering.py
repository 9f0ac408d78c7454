"""Plots of a clustering evaluated against known labels: confusion heatmap and embeddings."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle

from lucidvi._docstrings import lucidvi_dsp

from ._style import plot_style

if TYPE_CHECKING:
    from lucidvi.interpretation import ClusteringEvaluation

_MAX_ANNOTATED_CELLS = 400  # beyond 20 x 20 cells, numbers in the heatmap become unreadable


def _palette(n: int) -> np.ndarray:
    """``n`` distinct RGBA colours: tab10, tab20, or evenly spaced on ``turbo`` beyond 20."""
    import matplotlib

    if n <= 10:
        return np.asarray(matplotlib.colormaps["tab10"].colors)[:n]
    if n <= 20:
        return np.asarray(matplotlib.colormaps["tab20"].colors)[:n]
    return matplotlib.colormaps["turbo"](np.linspace(0.05, 0.95, n))[:, :3]


def _score_title(result: ClusteringEvaluation) -> str:
    scores = result.scores
    title = f"accuracy {scores['accuracy']:.2f} | NMI {scores['nmi']:.2f} | ARI {scores['ari']:.2f}"
    if "log_loss" in scores:
        title += f" | log-loss {scores['log_loss']:.2f}"
    return title


@lucidvi_dsp.dedent
def clustering_confusion(
    result: ClusteringEvaluation,
    *,
    normalize: Literal["label", "cluster"] | None = "label",
    ax: Axes | None = None,
) -> Axes:
    """Annotated heatmap of the labels x clusters confusion table.

    Columns are ordered so that each label's matched cluster sits on the diagonal (outlined);
    unmatched clusters follow. Cells are annotated when the table has at most 400 cells.

    Parameters
    ----------
    result
        A :class:`~lucidvi.interpretation.ClusteringEvaluation`.
    normalize
        ``"label"``: fractions of each label's cells (rows sum to 1); ``"cluster"``: fractions
        of each cluster's cells (columns sum to 1); ``None``: cell counts.
    %(ax)s

    Returns
    -------
    The Axes.
    """
    counts = result.confusion
    values = counts.to_numpy(dtype=np.float64)
    if normalize == "label":
        values = values / values.sum(axis=1, keepdims=True)
        label, fmt = "fraction of the label's cells", "{:.2f}"
    elif normalize == "cluster":
        values = values / values.sum(axis=0, keepdims=True)
        label, fmt = "fraction of the cluster's cells", "{:.2f}"
    elif normalize is None:
        label, fmt = "cells", "{:.0f}"
    else:
        raise ValueError(f"normalize must be 'label', 'cluster' or None, got {normalize!r}.")
    n_labels, n_clusters = values.shape
    with plot_style({"font.size": 8}):
        if ax is None:
            _, ax = plt.subplots(
                figsize=(0.45 * n_clusters + 3.0, 0.35 * n_labels + 1.8), layout="constrained"
            )
        vmax = 1.0 if normalize is not None else max(float(values.max()), 1.0)
        image = ax.imshow(values, cmap="Blues", vmin=0.0, vmax=vmax, aspect="auto")
        names = [str(c) for c in counts.columns]
        ax.set_xticks(range(n_clusters), names, rotation=0 if max(map(len, names)) <= 3 else 90)
        ax.set_yticks(range(n_labels), [str(lab) for lab in counts.index])
        if values.size <= _MAX_ANNOTATED_CELLS:
            size = 7 if values.size <= 100 else 5
            for (i, j), value in np.ndenumerate(values):
                color = "white" if value > 0.6 * vmax else "black"
                text = fmt.format(value)
                ax.text(j, i, text, ha="center", va="center", fontsize=size, color=color)
        column = {cluster: j for j, cluster in enumerate(counts.columns)}
        row = {lab: i for i, lab in enumerate(counts.index)}
        for cluster, matched in result.matched_clusters.items():
            ax.add_patch(
                Rectangle(
                    (column[cluster] - 0.5, row[matched] - 0.5),
                    1,
                    1,
                    fill=False,
                    edgecolor="black",
                    linewidth=1.2,
                )
            )
        ax.set_xlabel("cluster")
        ax.set_ylabel(result.labels_key)
        ax.set_title(_score_title(result))
        ax.figure.colorbar(image, ax=ax, label=label, shrink=0.8)
    return ax


def _legend(ax: Axes, names: list[str], colors: np.ndarray, title: str) -> None:
    handles = [
        Line2D([], [], marker="o", linestyle="", markersize=5, color=color, label=name)
        for name, color in zip(names, colors, strict=True)
    ]
    ax.legend(
        handles=handles,
        title=title,
        loc="center left",
        bbox_to_anchor=(1.0, 0.5),
        frameon=False,
        fontsize=7,
        title_fontsize=7,
        ncol=int(np.ceil(len(handles) / 18)),
    )


@lucidvi_dsp.dedent
def clustering_embedding(
    result: ClusteringEvaluation,
    *,
    color: Literal["label", "cluster"] = "label",
    ax: Axes | None = None,
) -> Axes:
    """Scatter plot of the cells' embedding, coloured by label or by cluster.

    A cluster of the one-to-one matching takes its label's colour, so a good clustering gives
    the same picture with ``color="label"`` and ``color="cluster"`` (draw both side by side to
    compare); surplus (unmatched) clusters get colours no label uses. Cells are drawn in a
    fixed random order, so no group hides another.

    Parameters
    ----------
    result
        A :class:`~lucidvi.interpretation.ClusteringEvaluation` computed with an embedding.
    color
        ``"label"``: colour the cells by their label; ``"cluster"``: by their cluster (legend
        ``"<cluster> (<matched label>)"``).
    %(ax)s

    Returns
    -------
    The Axes.

    Examples
    --------
    >>> fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained")
    >>> lucidvi.pl.clustering_embedding(evaluation, color="label", ax=axes[0])
    >>> lucidvi.pl.clustering_embedding(evaluation, color="cluster", ax=axes[1])
    """
    if color not in ("label", "cluster"):
        raise ValueError(f"color must be 'label' or 'cluster', got {color!r}.")
    if not result.has_embedding:
        if result.basis is None:
            reason = "it was computed with basis=None"
        else:
            reason = f"adata.obsm had no {result.basis!r} when it was computed"
        raise ValueError(
            f"This ClusteringEvaluation has no embedding to plot: {reason}. Run "
            f"scanpy.pp.neighbors(adata) and scanpy.tl.umap(adata) first, or pass basis= the "
            f"key of an existing 2-d embedding in adata.obsm, and compute again."
        )
    table = result.table
    labels, clusters = list(result.label_order), result.confusion.columns.tolist()
    matched = result.matched_clusters
    unmatched = [c for c in clusters if c not in matched]
    palette = _palette(len(labels) + len(unmatched))
    label_color = {lab: palette[i] for i, lab in enumerate(labels)}
    if color == "label":
        colors, keys = label_color, labels
        names, title = [str(lab) for lab in labels], result.labels_key
    else:
        colors = {c: label_color[matched[c]] for c in matched}
        colors.update({c: palette[len(labels) + i] for i, c in enumerate(unmatched)})
        keys, title = clusters, "cluster (matched label)"
        names = [f"{c} ({matched[c]})" if c in matched else f"{c} (unmatched)" for c in clusters]

    order = np.random.default_rng(0).permutation(len(table))
    x = table["embedding_1"].to_numpy()[order]
    y = table["embedding_2"].to_numpy()[order]
    size = float(np.clip(2e4 / len(table), 1.0, 20.0))  # about 20,000 points' worth of ink
    basis = result.basis or "embedding"
    with plot_style({"font.size": 8}):
        if ax is None:
            _, ax = plt.subplots(figsize=(5.5, 4.2), layout="constrained")
        values = table[color].to_numpy()[order]
        point_colors = np.asarray([colors[v] for v in values])
        ax.scatter(x, y, s=size, c=point_colors, linewidths=0, rasterized=len(table) > 5000)
        ax.set(xticks=[], yticks=[], xlabel=f"{basis} 1", ylabel=f"{basis} 2", title=title)
        _legend(ax, names, np.asarray([colors[k] for k in keys]), title=color)
    return ax

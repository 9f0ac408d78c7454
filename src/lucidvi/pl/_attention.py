"""Plots of InteractionVI's attention: by cell-type pair and by distance."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes

from lucidvi._docstrings import lucidvi_dsp

from ._heatmap import labelled_heatmap
from ._style import plot_style

if TYPE_CHECKING:
    from lucidvi.interpretation import AttentionPatterns, LengthScales


@lucidvi_dsp.dedent
def attention_summary(
    result: AttentionPatterns,
    *,
    statistic: Literal["weighted_effect", "attention", "enrichment"] = "weighted_effect",
    head: int | None = None,
    ax: Axes | None = None,
    cmap: str = "Reds",
) -> Axes:
    """Heatmap, sender types x receiver types, of the attention receivers pay to senders.

    Parameters
    ----------
    result
        An :class:`~lucidvi.interpretation.AttentionPatterns`.
    statistic
        ``"weighted_effect"`` (value-weighted attention), ``"attention"`` or ``"enrichment"``
        (attention relative to the share of neighbour slots; see
        :meth:`~lucidvi.interpretation.AttentionPatterns.pair_scores`).
    head
        One head (default: summed over heads).
    %(ax)s
    %(cmap)s

    Returns
    -------
    The Axes.
    """
    scores = result.pair_scores(statistic, head=head)
    label = {
        "weighted_effect": "value-weighted attention",
        "enrichment": "attention / neighbour share",
    }.get(statistic, "attention")
    with plot_style({"font.size": 7}):
        ax = labelled_heatmap(scores, ax, cmap, label)
        ax.set(xlabel="receiver type", ylabel="sender type")
        which = "all heads" if head is None else f"head {head}"
        ax.set_title(f"Attention to sender types ({which}, {result.cells})")
    return ax


@lucidvi_dsp.dedent
def attention_distance(
    result: AttentionPatterns,
    *,
    receiver_type: str | None = None,
    head: int | None = None,
    statistic: Literal["weighted_effect", "attention"] = "attention",
    ax: Axes | None = None,
) -> Axes:
    """Mean attention of one neighbour against its distance, a line per sender type.

    Parameters
    ----------
    result
        An :class:`~lucidvi.interpretation.AttentionPatterns`.
    receiver_type
        One receiver type (default: all, averaged over their neighbours).
    head
        One head (default: summed over heads).
    statistic
        ``"attention"`` or ``"weighted_effect"``.
    %(ax)s

    Returns
    -------
    The Axes.
    """
    if statistic not in ("weighted_effect", "attention"):
        raise ValueError(f"statistic must be weighted_effect or attention, got {statistic!r}.")
    rows = result.table[result.table["level"] == "distance"]
    if receiver_type is not None:
        if str(receiver_type) not in set(rows["receiver_type"]):
            raise ValueError(f"No receiver type {receiver_type!r} in the result.")
        rows = rows[rows["receiver_type"] == str(receiver_type)]
    if head is not None:
        rows = rows[rows["head"] == head]
    # total over the chosen heads of the neighbour-weighted mean over receiver types
    rows = rows.assign(total=rows[statistic] * rows["n_neighbors"])
    per_head = rows.groupby(["sender_type", "distance_low", "distance_high", "head"]).agg(
        total=("total", "sum"), n=("n_neighbors", "sum")
    )
    per_head["mean"] = per_head["total"] / per_head["n"]
    curves = per_head.groupby(["sender_type", "distance_low", "distance_high"])["mean"].sum()
    senders = list(dict.fromkeys(rows["sender_type"]))
    colors = plt.get_cmap("tab20")(np.arange(len(senders)) % 20)
    with plot_style({"font.size": 8}):
        if ax is None:
            _, ax = plt.subplots(figsize=(5.6, 3.6))
        for sender, color in zip(senders, colors, strict=True):
            curve = curves.loc[sender]
            middle = 0.5 * (
                curve.index.get_level_values(0).to_numpy()
                + curve.index.get_level_values(1).to_numpy()
            )
            ax.plot(middle, curve.to_numpy(), marker="o", markersize=3, color=color, label=sender)
        ax.set(xlabel="distance", ylabel=f"mean {statistic.replace('_', ' ')} of a neighbour")
        who = "all receivers" if receiver_type is None else receiver_type
        which = "all heads" if head is None else f"head {head}"
        ax.set_title(f"Attention by distance ({who}, {which})")
        ax.legend(fontsize=6, ncol=1, frameon=False, bbox_to_anchor=(1.01, 1), loc="upper left")
    return ax


@lucidvi_dsp.dedent
def length_scale_distribution(
    result: LengthScales, *, n_pairs: int = 10, ax: Axes | None = None
) -> Axes:
    """Box per (sender, receiver) pair: the length scale's spread over sender cells.

    Each pair is shown with its most important head
    (:meth:`~lucidvi.interpretation.LengthScales.for_pair`); pairs
    are the ``n_pairs`` most important among receiver types that keep a niche.

    Parameters
    ----------
    result
        A :class:`~lucidvi.interpretation.LengthScales`.
    n_pairs
        Pairs shown.
    %(ax)s

    Returns
    -------
    The Axes: boxes from ``q25`` to ``q75``, whiskers ``q10`` to ``q90``, a dot at the median
    with its bootstrap interval.
    """
    table = result.table[result.table["niche_kept"] & (result.table["importance"] > 0)]
    best = table.sort_values("importance", ascending=False).drop_duplicates(
        ["sender_type", "receiver_type"]
    )
    best = best.head(n_pairs).iloc[::-1]
    with plot_style({"font.size": 7}):
        if ax is None:
            _, ax = plt.subplots(figsize=(5.2, 0.35 * max(len(best), 1) + 1.4))
        if best.empty:
            ax.text(0.5, 0.5, "no receiver type keeps a niche", ha="center", transform=ax.transAxes)
            ax.set_axis_off()
            return ax
        y = np.arange(len(best))
        ax.hlines(y, best["q10"], best["q90"], color="gray", linewidth=0.8)
        ax.barh(y, best["q75"] - best["q25"], left=best["q25"], height=0.5, color="lightsteelblue")
        error = np.vstack(
            [best["length_scale"] - best["ci_low"], best["ci_high"] - best["length_scale"]]
        )
        ax.errorbar(
            best["length_scale"], y, xerr=np.nan_to_num(error), fmt="o", color="black",
            markersize=3, capsize=2,
        )  # fmt: skip
        labels = [
            f"{row.sender_type} -> {row.receiver_type} (head {row.head})"
            for row in best.itertuples()
        ]
        ax.set_yticks(y, labels)
        ax.set(xlabel=f"distance where attention to a lone sender < {result.threshold:g}")
        ax.set_title(f"Length scales ({result.cells})")
    return ax

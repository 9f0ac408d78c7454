"""Dot plot of the ligand-receptor pairs ranked for a sender -> receiver interaction."""

from __future__ import annotations

from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes

from lucidvi._docstrings import lucidvi_dsp

from ._style import plot_style

if TYPE_CHECKING:
    from lucidvi.interpretation import LigandReceptorPairs

_SIZES = (20.0, 160.0)  # marker areas of the smallest and the largest gene set drawn


@lucidvi_dsp.dedent
def ligand_receptor_dotplot(
    result: LigandReceptorPairs,
    *,
    n_top: int = 15,
    sender_type: str | None = None,
    receiver_type: str | None = None,
    cmap: str = "viridis",
    ax: Axes | None = None,
) -> Axes:
    """Dot plot of the best-ranked ligand-receptor pairs: score, p-value and targets.

    One row per pair, the best on top (within each sender and receiver type, in the table's
    order): its ``score`` on x, coloured by ``-log10`` p-value and sized by the number of
    known targets on the panel; pairs with ``q_value < alpha`` are outlined in black.

    Parameters
    ----------
    result
        A :class:`~lucidvi.interpretation.LigandReceptorPairs`.
    n_top
        Pairs per sender and receiver type.
    sender_type
        Only this sender type.
    receiver_type
        Only this receiver type.
    %(cmap)s
    %(ax)s

    Returns
    -------
    The Axes, rows labelled ``ligand -> receptor`` (followed by the cell types when the plot
    shows several sender and receiver types).

    Examples
    --------
    >>> res = LigandReceptorPairs.compute(model, sender_type="B", receiver_type="CD14+ Mono")
    >>> ax = lucidvi.pl.ligand_receptor_dotplot(res, n_top=10)
    """
    rows = result.top(n_top, sender_type=sender_type, receiver_type=receiver_type)
    several = rows[["sender_type", "receiver_type"]].drop_duplicates().shape[0] > 1
    labels = [
        f"{r.ligand} -> {r.receptor}" + (f"  ({r.sender_type} -> {r.receiver_type})" * several)
        for r in rows.itertuples(index=False)
    ]
    y = np.arange(len(rows))[::-1]
    strength = -np.log10(rows["p_value"].to_numpy(dtype=np.float64))
    targets = rows["n_targets"].to_numpy(dtype=np.float64)
    spread = max(float(targets.max(initial=0.0)), 1.0)
    sizes = _SIZES[0] + (_SIZES[1] - _SIZES[0]) * np.sqrt(targets / spread)
    edges = np.where(rows["significant"].to_numpy(dtype=bool), "black", "none")
    with plot_style({"font.size": 7}):
        if ax is None:
            _, ax = plt.subplots(
                figsize=(5.2, max(2.0, 0.24 * len(rows) + 1.2)), layout="constrained"
            )
        title = "Ligand-receptor pairs"
        if not several and len(rows):
            title += f": {rows['sender_type'].iloc[0]} -> {rows['receiver_type'].iloc[0]}"
        ax.set_title(f"{title} ({result.resource})")
        if rows.empty:
            ax.text(0.5, 0.5, "no pair", ha="center", transform=ax.transAxes)
            ax.set_axis_off()
            return ax
        points = ax.scatter(
            rows["score"], y, c=strength, s=sizes, cmap=cmap, edgecolors=edges, linewidths=0.8,
            vmin=0.0,
        )  # fmt: skip
        ax.figure.colorbar(points, ax=ax, label="-log10 p-value", shrink=0.8)
        ax.set_yticks(y, labels)
        ax.axvline(0.0, color="0.6", linewidth=0.5)
        ax.set_xlabel(f"score (mean evidence of receptor and targets; targets: {result.targets})")
        ax.margins(y=0.5 / max(len(rows), 1))
    return ax

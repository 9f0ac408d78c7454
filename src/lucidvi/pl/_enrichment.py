"""Bar charts of gene-set over-representation: one list, or two lists facing each other."""

from __future__ import annotations

from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.ticker import FuncFormatter

from lucidvi._docstrings import lucidvi_dsp

from ._style import plot_style

if TYPE_CHECKING:
    from lucidvi.interpretation import GeneProgramEnrichment

_ALPHA = 0.05  # the dashed line: adjusted p = 0.05
_STYLE = {"font.size": 8}  # long term names need a small font


def _neg_log10(p: pd.Series) -> np.ndarray:
    """``-log10 p``, finite even when a p-value underflowed to zero."""
    return -np.log10(np.clip(p.to_numpy(dtype=np.float64), np.finfo(np.float64).tiny, 1.0))


def _new_axes(n_rows: int, width: float) -> Axes:
    _, ax = plt.subplots(figsize=(width, max(2.0, 0.28 * n_rows + 1.2)), layout="constrained")
    return ax


def _note_empty(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", color="0.4")


@lucidvi_dsp.dedent
def enrichment_bars(
    result: GeneProgramEnrichment,
    *,
    list_name: str | None = None,
    n_top: int = 10,
    ax: Axes | None = None,
) -> Axes:
    """Horizontal bars of ``-log10`` adjusted p for the most significant terms of one list.

    The most significant term is on top; each bar is labelled ``overlap/term_size`` and a dashed
    line marks an adjusted p of 0.05.

    Parameters
    ----------
    result
        A :class:`~lucidvi.interpretation.GeneProgramEnrichment`.
    list_name
        The gene list; may be left out when the result holds a single list.
    n_top
        Number of terms.
    %(ax)s

    Returns
    -------
    The Axes, one bar per term.

    Examples
    --------
    >>> res = GeneProgramEnrichment.compute({"Z_0+": genes}, "hallmark", background=var_names)
    >>> ax = lucidvi.pl.enrichment_bars(res, n_top=5)
    """
    if list_name is None:
        if len(result.list_names) != 1:
            raise ValueError(
                f"The result holds {len(result.list_names)} lists; pass list_name= one of "
                f"{list(result.list_names)}."
            )
        list_name = result.list_names[0]
    rows = result.top(list_name, n_top)
    with plot_style(_STYLE):
        if ax is None:
            ax = _new_axes(len(rows), width=6.0)
        y = np.arange(len(rows))[::-1]
        bars = ax.barh(y, _neg_log10(rows["p_value_adj"]), color="#4C72B0", height=0.7)
        ax.bar_label(
            bars,
            labels=[f" {k}/{n}" for k, n in zip(rows["overlap"], rows["term_size"], strict=True)],
            fontsize=7,
        )
        ax.set_yticks(y, rows["term"])
        ax.axvline(-np.log10(_ALPHA), color="0.5", linestyle="--", linewidth=0.8)
        ax.set_xlabel("-log10 adjusted p")
        ax.set_title(f"{list_name} ({result.gene_sets_name})")
        ax.margins(x=0.15)
        if rows.empty:
            _note_empty(ax, "no term overlaps this list")
    return ax


@lucidvi_dsp.dedent
def enrichment_diverging(
    result: GeneProgramEnrichment,
    *,
    group_a: str,
    group_b: str,
    n_top: int = 10,
    ax: Axes | None = None,
    cmap: str = "viridis",
) -> Axes:
    """Diverging bars comparing two lists term by term, e.g. a factor's + and - genes.

    The rows are the union of the ``n_top`` most significant terms of each list. A term's bar
    to the right has length ``-log10`` of its adjusted p in ``group_a``, to the left in
    ``group_b`` (a side is empty when the term shares no gene with that list); bars are
    coloured by gene ratio. Rows run from the most ``group_a``-specific term at the top to the
    most ``group_b``-specific at the bottom; dashed lines mark an adjusted p of 0.05.

    Parameters
    ----------
    result
        A :class:`~lucidvi.interpretation.GeneProgramEnrichment`.
    group_a
        List drawn to the right (positive).
    group_b
        List drawn to the left (negative).
    n_top
        Terms taken from each list.
    %(ax)s
        A colour bar is added beside it.
    cmap
        Colour map of the gene ratio.

    Returns
    -------
    The Axes, one bar per term and list in which the term has a row.

    Examples
    --------
    >>> res = GeneProgramEnrichment.compute({"Z_0+": up, "Z_0-": down}, background=var_names)
    >>> ax = lucidvi.pl.enrichment_diverging(res, group_a="Z_0+", group_b="Z_0-")
    """
    if group_a == group_b:
        raise ValueError(f"group_a and group_b must differ, got {group_a!r} twice.")
    terms = list(
        dict.fromkeys([*result.top(group_a, n_top)["term"], *result.top(group_b, n_top)["term"]])
    )
    sides = {}
    for group in (group_a, group_b):
        rows = result.table[result.table["list"] == group].set_index("term")
        rows = rows.reindex(terms)
        sides[group] = (
            pd.Series(_neg_log10(rows["p_value_adj"].fillna(1.0)), index=terms),
            rows["gene_ratio"],
        )
    balance = sides[group_a][0] - sides[group_b][0]
    order = balance.sort_values(ascending=True, kind="stable").index
    y = pd.Series(np.arange(len(order)), index=order)
    ratios = pd.concat([sides[group_a][1], sides[group_b][1]]).dropna()
    norm = Normalize(vmin=0.0, vmax=float(ratios.max()) if len(ratios) else 1.0)
    colormap = plt.get_cmap(cmap)
    with plot_style(_STYLE):
        if ax is None:
            ax = _new_axes(len(terms), width=7.0)
        for group, sign in ((group_a, 1.0), (group_b, -1.0)):
            score, ratio = sides[group]
            present = ratio.dropna().index
            ax.barh(
                y[present],
                sign * score[present],
                color=colormap(norm(ratio[present].to_numpy())),
                height=0.7,
            )
        ax.set_yticks(y.to_numpy(), y.index)
        ax.axvline(0.0, color="0.2", linewidth=0.8)
        for sign in (1.0, -1.0):
            ax.axvline(sign * -np.log10(_ALPHA), color="0.5", linestyle="--", linewidth=0.8)
        longest = max(float(sides[group][0].max()) if terms else 0.0 for group in sides)
        limit = 1.1 * max(longest, -np.log10(_ALPHA))
        ax.set_xlim(-limit, limit)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{abs(value):g}"))
        ax.set_xlabel(f"-log10 adjusted p\n<- {group_b}    |    {group_a} ->")
        ax.set_title(f"{group_a} vs {group_b} ({result.gene_sets_name})")
        ax.figure.colorbar(
            ScalarMappable(norm=norm, cmap=colormap), ax=ax, label="gene ratio", shrink=0.6
        )
        if not terms:
            _note_empty(ax, "no term overlaps either list")
    return ax

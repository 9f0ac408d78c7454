"""Plot of :class:`~lucidvi.interpretation.PanelInformation`: information against panel size."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import matplotlib.pyplot as plt
import numpy as np

from lucidvi._docstrings import lucidvi_dsp

from ._style import plot_style

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from lucidvi.interpretation import PanelInformation

# light axes: the plot is small and sits beside others in reports
_STYLE = {"axes.spines.top": False, "axes.spines.right": False, "font.size": 9}
# the y-axis label of each metric the plot can show
_LABELS = {
    "mutual_information": "I(panel; transcriptome) [nats]",
    "knn_accuracy": "kNN cell-type accuracy",
}


@lucidvi_dsp.dedent
def panel_information(
    result: PanelInformation,
    *,
    metric: Literal["mutual_information", "knn_accuracy"] = "mutual_information",
    ax: Axes | None = None,
) -> Axes:
    """Mutual information (or kNN accuracy) of each panel against its size.

    One line per group of nested panels (a ranking), points for given panels; the mutual
    information has its resampling interval as error bars, InfoNCE's ceiling ``log N`` as a
    dotted line, and kNN accuracy the full embedding's accuracy as a dashed line.

    Parameters
    ----------
    result
        A :class:`~lucidvi.interpretation.PanelInformation`.
    metric
        ``"mutual_information"`` or ``"knn_accuracy"``.
    %(ax)s

    Returns
    -------
    The Axes.
    """
    if metric not in _LABELS:
        raise ValueError(f"metric must be one of {list(_LABELS)}, got {metric!r}.")
    table = result.to_dataframe()
    if table[metric].isna().all():
        raise ValueError(f"The result has no {metric} (compute it with labels_key= for kNN).")
    with plot_style(_STYLE):
        if ax is None:
            _, ax = plt.subplots(figsize=(4.8, 3.4))
        for group, rows in table.groupby("group", sort=False):
            rows = rows.sort_values("n_genes")
            style = {"marker": "o", "label": group, "linestyle": "-" if len(rows) > 1 else "none"}
            if metric == "mutual_information" and rows["ci_low"].notna().all():
                errors = np.vstack([
                    rows[metric] - rows["ci_low"], rows["ci_high"] - rows[metric]
                ])  # fmt: skip
                ax.errorbar(rows["n_genes"], rows[metric], yerr=errors, capsize=2, **style)
            else:
                ax.plot(rows["n_genes"], rows[metric], **style)
        if metric == "mutual_information" and table["upper_bound"].notna().any():
            ax.axhline(table["upper_bound"].max(), color="0.5", ls=":", lw=1, label="log N")
        if metric == "knn_accuracy" and np.isfinite(result.full_knn_accuracy):
            ax.axhline(result.full_knn_accuracy, color="0.5", ls="--", lw=1, label="all genes")
        ax.set_xlabel("genes in panel")
        ax.set_ylabel(_LABELS[metric])
        title = f"{result.embedding} embedding, {result.n_cells} cells"
        if metric == "mutual_information":
            title = f"{result.method} estimate, {title}"
        ax.set_title(title)
        ax.legend(frameon=False, fontsize=8)
    return ax

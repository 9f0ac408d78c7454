"""A labelled heatmap of a DataFrame, shared by the cell-type pair and gene plots."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.axes import Axes


def labelled_heatmap(
    frame: pd.DataFrame,
    ax: Axes | None,
    cmap: str,
    colorbar_label: str,
    cell_size: tuple[float, float] = (0.4, 0.3),
) -> Axes:
    """Draw ``frame`` as a heatmap, its index and columns as tick labels, with a colour bar.

    Parameters
    ----------
    frame
        Rows x columns of values.
    ax
        Axes to draw into (a new figure sized by ``cell_size`` when ``None``).
    cmap
        Colour map.
    colorbar_label
        Label of the colour bar.
    cell_size
        Width and height of one cell in inches, for a new figure.

    Returns
    -------
    The Axes (column labels rotated by 90 degrees).
    """
    if ax is None:
        width, height = cell_size
        _, ax = plt.subplots(figsize=(width * frame.shape[1] + 2.8, height * len(frame) + 1.8))
    image = ax.imshow(frame.to_numpy(), aspect="auto", cmap=cmap, interpolation="nearest")
    ax.set_xticks(range(frame.shape[1]), [str(c) for c in frame.columns], rotation=90)
    ax.set_yticks(range(len(frame)), [str(i) for i in frame.index])
    ax.figure.colorbar(image, ax=ax, label=colorbar_label, shrink=0.7)
    return ax

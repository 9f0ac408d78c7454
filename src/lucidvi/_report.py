"""Helpers of the demo's report: saving figures and writing markdown tables."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd


def save_figure(fig: plt.Figure, path: Path) -> str:
    """Save and close ``fig``; return the file name (for a markdown image link)."""
    fig.savefig(path, dpi=130, bbox_inches="tight")
    plt.close(fig)
    return path.name


def markdown_table(frame: pd.DataFrame) -> str:
    """Render a DataFrame as a markdown table (no index)."""
    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(str(v) for v in row) + " |" for row in frame.itertuples(False)]
    return "\n".join([header, rule, *body])

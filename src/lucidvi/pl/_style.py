"""A scoped plotting style that leaves the user's matplotlib set-up as it was."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import matplotlib
import matplotlib.pyplot as plt


@contextmanager
def plot_style(rc: dict[str, Any]) -> Iterator[None]:
    """Apply ``rc`` inside the block, like :func:`matplotlib.pyplot.rc_context`.

    If the block draws the session's first figure, loading the backend turns interactive mode
    on (Jupyter's inline backend does); a plain ``rc_context`` would switch it back off on exit,
    and the notebook would show no figure from then on. The interactive mode reached inside
    the block is kept.

    Parameters
    ----------
    rc
        rcParams for the block.
    """
    with plt.rc_context(rc):
        try:
            yield
        finally:
            interactive = matplotlib.is_interactive()
    matplotlib.interactive(interactive)

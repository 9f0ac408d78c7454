"""Tools that act on data and models (as scanpy's ``tl``): panel selection, top genes."""

from ._loadings import top_loading_genes
from ._panel_selection import PANEL_STRATEGIES, select_panel

__all__ = ["PANEL_STRATEGIES", "select_panel", "top_loading_genes"]

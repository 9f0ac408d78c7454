"""Tools that act on data and models (as scanpy's ``tl``): panels, top genes, annotation."""

from ._annotation import annotate_clusters
from ._loadings import top_loading_genes
from ._panel_selection import PANEL_STRATEGIES, select_panel

__all__ = ["PANEL_STRATEGIES", "annotate_clusters", "select_panel", "top_loading_genes"]

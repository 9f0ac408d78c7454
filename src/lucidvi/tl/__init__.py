"""Tools that act on data and models (as scanpy's ``tl``): panel selection."""

from ._panel_selection import select_panel

__all__ = ["select_panel"]

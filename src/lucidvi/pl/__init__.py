"""Plot functions: take results, accept ``ax=``, return matplotlib Axes."""

from ._loadings import loadings_heatmap

__all__ = ["loadings_heatmap"]

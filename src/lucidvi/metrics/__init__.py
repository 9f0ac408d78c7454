"""Array-in metrics."""

from ._canonical_correlation import canonical_correlations
from ._clustering import clustering_scores, match_clusters

__all__ = ["canonical_correlations", "clustering_scores", "match_clusters"]

"""Array-in metrics."""

from ._canonical_correlation import canonical_correlations
from ._clustering import clustering_scores, match_clusters
from ._knn_accuracy import knn_accuracy
from ._mutual_information import MutualInformation, mutual_information

__all__ = [
    "MutualInformation",
    "canonical_correlations",
    "clustering_scores",
    "knn_accuracy",
    "match_clusters",
    "mutual_information",
]

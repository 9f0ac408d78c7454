"""Array-in metrics."""

from ._canonical_correlation import canonical_correlations
from ._clustering import (
    clustering_log_loss,
    clustering_scores,
    match_clusters,
    matched_cluster_probability,
)
from ._knn_accuracy import knn_accuracy
from ._mutual_information import MutualInformation, mutual_information
from ._normalization import TARGET_SUM, log_normalize_counts

__all__ = [
    "MutualInformation",
    "TARGET_SUM",
    "canonical_correlations",
    "clustering_log_loss",
    "clustering_scores",
    "knn_accuracy",
    "log_normalize_counts",
    "match_clusters",
    "matched_cluster_probability",
    "mutual_information",
]

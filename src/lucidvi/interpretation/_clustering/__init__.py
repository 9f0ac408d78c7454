"""Results on a clustering of cells: agreement with known labels."""

from ._evaluation import ClusteringEvaluation

__all__ = ["ClusteringEvaluation"]

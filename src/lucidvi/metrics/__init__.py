"""Array-in metrics."""

from ._canonical_correlation import canonical_correlations

__all__ = ["canonical_correlations"]

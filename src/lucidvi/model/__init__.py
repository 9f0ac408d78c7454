"""scvi-tools models of lucidvi: ``setup_anndata``, ``train`` and ``get_*`` methods."""

from ._linear_vi import LinearVI

__all__ = ["LinearVI"]

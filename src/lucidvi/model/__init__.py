"""scvi-tools models of lucidvi: ``setup_anndata``, ``train`` and ``get_*`` methods."""

from ._interaction import InteractionVI
from ._linear_vi import LinearVI
from ._mixture import MixtureVI

__all__ = ["InteractionVI", "LinearVI", "MixtureVI"]

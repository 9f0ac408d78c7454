"""InteractionVI: its model class, outputs, attention table, ablation options and neighbours."""

from ._model import InteractionVI

__all__ = ["InteractionVI"]

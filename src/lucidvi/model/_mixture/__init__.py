"""MixtureVI: its model class, training steps, outputs, parameters, choice of K, starts, merges."""

from ._model import MixtureVI

__all__ = ["MixtureVI"]

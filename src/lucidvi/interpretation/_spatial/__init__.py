"""Results that read a trained InteractionVI: who talks to whom, how much and how far."""

from ._attention_patterns import AttentionPatterns
from ._explained_variance import ExplainedVariance
from ._interaction_reach import InteractionReach
from ._length_scales import LengthScales
from ._ligand_receptor_pairs import LigandReceptorPairs
from ._neighbor_ablation import NeighborAblation

__all__ = [
    "AttentionPatterns",
    "ExplainedVariance",
    "InteractionReach",
    "LengthScales",
    "LigandReceptorPairs",
    "NeighborAblation",
]

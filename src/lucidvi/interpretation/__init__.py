"""Interpretation results: frozen dataclasses with ``compute()``, tables, plots and logging."""

from ._clustering import ClusteringEvaluation
from ._latent import (
    DimImportance,
    GeneLoadings,
    GeneProgramEnrichment,
    GeneRanks,
    GenesPerDim,
    LatentReport,
    PanelInformation,
)
from ._spatial import (
    AttentionPatterns,
    ExplainedVariance,
    InteractionReach,
    LengthScales,
    LigandReceptorPairs,
    NeighborAblation,
)

__all__ = [
    "AttentionPatterns",
    "ClusteringEvaluation",
    "DimImportance",
    "ExplainedVariance",
    "GeneLoadings",
    "GeneProgramEnrichment",
    "GeneRanks",
    "GenesPerDim",
    "InteractionReach",
    "LatentReport",
    "LengthScales",
    "LigandReceptorPairs",
    "NeighborAblation",
    "PanelInformation",
]

"""Interpretation results: frozen dataclasses with ``compute()``, tables, plots and logging."""

from ._attention_patterns import AttentionPatterns
from ._clustering_evaluation import ClusteringEvaluation
from ._dim_importance import DimImportance
from ._explained_variance import ExplainedVariance
from ._gene_loadings import GeneLoadings
from ._gene_program_enrichment import GeneProgramEnrichment
from ._gene_ranks import GeneRanks
from ._genes_per_dim import GenesPerDim
from ._interaction_reach import InteractionReach
from ._latent_report import LatentReport
from ._length_scales import LengthScales
from ._neighbor_ablation import NeighborAblation
from ._panel_information import PanelInformation

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
    "NeighborAblation",
    "PanelInformation",
]

"""Interpretation results: frozen dataclasses with ``compute()``, tables, plots and logging."""

from ._clustering_evaluation import ClusteringEvaluation
from ._dim_importance import DimImportance
from ._gene_loadings import GeneLoadings
from ._gene_program_enrichment import GeneProgramEnrichment
from ._gene_ranks import GeneRanks
from ._genes_per_dim import GenesPerDim
from ._latent_report import LatentReport
from ._panel_information import PanelInformation

__all__ = [
    "ClusteringEvaluation",
    "DimImportance",
    "GeneLoadings",
    "GeneProgramEnrichment",
    "GeneRanks",
    "GenesPerDim",
    "LatentReport",
    "PanelInformation",
]

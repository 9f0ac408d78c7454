"""Results on an embedding's dimensions and the genes behind them."""

from ._dim_importance import DimImportance
from ._gene_loadings import GeneLoadings
from ._gene_program_enrichment import GeneProgramEnrichment
from ._gene_ranks import GeneRanks
from ._genes_per_dim import GenesPerDim
from ._latent_report import LatentReport
from ._panel_information import PanelInformation

__all__ = [
    "DimImportance",
    "GeneLoadings",
    "GeneProgramEnrichment",
    "GeneRanks",
    "GenesPerDim",
    "LatentReport",
    "PanelInformation",
]

"""Plot functions: take results, accept ``ax=``, return matplotlib Axes."""

from ._enrichment import enrichment_bars, enrichment_diverging
from ._genes import gene_ranks, genes_per_dim_heatmap
from ._latent import dim_importance_elbow, latent_correlation
from ._loadings import loadings_heatmap

__all__ = [
    "dim_importance_elbow",
    "enrichment_bars",
    "enrichment_diverging",
    "gene_ranks",
    "genes_per_dim_heatmap",
    "latent_correlation",
    "loadings_heatmap",
]

"""Plot functions: take results, accept ``ax=``, return matplotlib Axes."""

from ._clustering import clustering_confusion, clustering_embedding
from ._enrichment import enrichment_bars, enrichment_diverging
from ._genes import gene_ranks, genes_per_dim_heatmap
from ._latent import dim_importance_elbow, latent_correlation
from ._loadings import loadings_heatmap
from ._mixture import cluster_expression, n_clusters_criterion
from ._panels import panel_information

__all__ = [
    "cluster_expression",
    "clustering_confusion",
    "clustering_embedding",
    "dim_importance_elbow",
    "enrichment_bars",
    "enrichment_diverging",
    "gene_ranks",
    "genes_per_dim_heatmap",
    "latent_correlation",
    "loadings_heatmap",
    "n_clusters_criterion",
    "panel_information",
]

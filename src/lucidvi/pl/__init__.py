"""Plot functions: take results, accept ``ax=``, return matplotlib Axes."""

from ._attention import attention_distance, attention_summary, length_scale_distribution
from ._clustering import clustering_confusion, clustering_embedding
from ._enrichment import enrichment_bars, enrichment_diverging
from ._explained_variance import explained_variance_bars, explained_variance_heatmap
from ._genes import gene_ranks, genes_per_dim_heatmap
from ._interactions import (
    interaction_graph,
    interaction_heatmap,
    interaction_reach_curves,
    interaction_volcano,
)
from ._latent import dim_importance_elbow, latent_correlation
from ._ligand_receptor import ligand_receptor_dotplot
from ._loadings import loadings_heatmap
from ._mixture import cluster_expression, n_clusters_criterion
from ._panels import panel_information

__all__ = [
    "attention_distance",
    "attention_summary",
    "cluster_expression",
    "clustering_confusion",
    "clustering_embedding",
    "dim_importance_elbow",
    "enrichment_bars",
    "enrichment_diverging",
    "explained_variance_bars",
    "explained_variance_heatmap",
    "gene_ranks",
    "genes_per_dim_heatmap",
    "interaction_graph",
    "interaction_heatmap",
    "interaction_reach_curves",
    "interaction_volcano",
    "latent_correlation",
    "length_scale_distribution",
    "ligand_receptor_dotplot",
    "loadings_heatmap",
    "n_clusters_criterion",
    "panel_information",
]

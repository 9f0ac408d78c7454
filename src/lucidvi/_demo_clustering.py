"""The clustering section of ``lucidvi demo``: MixtureVI against Leiden on the same cells."""

from __future__ import annotations

import time
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from anndata import AnnData

from lucidvi._registration import unregistered_copy
from lucidvi._report import markdown_table, save_figure
from lucidvi.interpretation import ClusteringEvaluation
from lucidvi.model import MixtureVI


def cluster_cells(adata: AnnData, out: Path, seed: int) -> str:
    """Fit MixtureVI (EM) with K = the number of cell types, score it and Leiden; return markdown.

    Parameters
    ----------
    adata
        The demo's cells with ``obs["cell_type"]``, ``obs["leiden_linearvi"]``, ``obsm["X_umap"]``
        and counts in ``layers["counts"]`` (a copy is registered).
    out
        Output folder.
    seed
        Random seed.

    Returns
    -------
    The report section.
    """
    data = unregistered_copy(adata)
    MixtureVI.setup_anndata(data, layer="counts")
    n_types = data.obs["cell_type"].nunique()
    start = time.perf_counter()
    model = MixtureVI(data, n_clusters=n_types)  # the default a user gets
    model.train(seed=seed)
    seconds = time.perf_counter() - start
    model.save(out / "mixture_model", overwrite=True)

    mixture = ClusteringEvaluation.compute(model, data, "cell_type", basis="X_umap")
    mixture.save(out / "mixture_clusters.csv")
    leiden = ClusteringEvaluation.compute("leiden_linearvi", data, "cell_type", basis="X_umap")
    scores = pd.DataFrame(
        {"MixtureVI (EM)": mixture.scores, "Leiden on LinearVI latent": leiden.scores}
    ).T
    scores = scores.reset_index(names="method").round(3).fillna("")
    confusion_png = save_figure(mixture.plot_confusion().figure, out / "mixture_confusion.png")
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained")
    mixture.plot_embedding(color="label", ax=axes[0])
    mixture.plot_embedding(color="cluster", ax=axes[1])
    embedding_png = save_figure(figure, out / "mixture_umap.png")

    markers = model.get_marker_genes(n_top=5)
    markers.to_csv(out / "mixture_markers.csv", index=False)
    top_markers = markers[markers["rank"] == 1]
    best = top_markers.sort_values("expression", ascending=False).iloc[0]
    expression_png = save_figure(
        model.plot_cluster_expression(best["gene"]).figure, out / "mixture_expression.png"
    )
    summary = markers.groupby("cluster")["gene"].apply(", ".join).reset_index()
    summary.columns = ["cluster", "top 5 marker genes (log2 fold change over the next cluster)"]
    return f"""## Model-based clustering with MixtureVI

MixtureVI's default with K = {n_types} (the annotated cell types): a mixture of
{model.n_components} negative binomials over the {len(model.informative_genes_)} genes of
highest binomial deviance (dispersions per gene), fitted by batch EM from a k-means start and
merged into {n_types} clusters by their Kullback-Leibler divergence ({seconds:.1f} s, the
genes' ranking included). Scores against the cell types (`mixture_clusters.csv`), next to
Leiden on the LinearVI latent above:

{markdown_table(scores)}

![confusion]({confusion_png})

![clusters on the UMAP]({embedding_png})

Markers from the fitted centroids (`mixture_markers.csv`):

{markdown_table(summary)}

The fitted Gamma expression models of {best["gene"]}, the most highly expressed first-ranked
marker (of cluster {best["cluster"]}), per cluster:

![Gamma expression models]({expression_png})
"""

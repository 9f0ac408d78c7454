import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from anndata import AnnData

from lucidvi.interpretation import GeneRanks, GenesPerDim
from lucidvi.pl import gene_ranks, genes_per_dim_heatmap

matplotlib.use("Agg")


def _toy():
    rng = np.random.default_rng(0)
    adata = AnnData(rng.poisson(3.0, size=(100, 6)).astype(float))
    adata.var_names = [f"g{i}" for i in range(6)]
    loadings = pd.DataFrame(
        [[2, 0], [1, 0], [-2, 0], [0, 2], [0, -1], [0.1, 0.1]],
        index=adata.var_names,
        columns=["Z_0", "Z_1"],
        dtype=float,
    )
    return adata, loadings


def test_heatmap_shows_each_selected_gene_once():
    adata, loadings = _toy()
    result = GenesPerDim.compute(adata, loadings, n_top=2, min_frac=0)
    ax = genes_per_dim_heatmap(result)
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["g0", "g1", "g2", "g3", "g5", "g4"]  # Z_0 +, Z_0 -, Z_1 +, Z_1 -
    assert ax.images[0].get_array().shape == (6, 2)
    plt.close("all")


def test_heatmap_of_an_empty_selection_says_so():
    adata, loadings = _toy()
    result = GenesPerDim.compute(adata, loadings, min_frac=0, min_sd=1e9)
    ax = genes_per_dim_heatmap(result)
    assert "no gene" in ax.texts[0].get_text()
    plt.close("all")


def test_gene_ranks_scatter_labels_three_groups():
    adata, _ = _toy()
    expression = np.log1p(adata.X / adata.X.sum(1, keepdims=True) * 1e4)
    mean = np.tile(expression.mean(0), (100, 1))
    local = mean.copy()
    local[:, :2] = expression[:, :2]
    result = GeneRanks.compute(adata, local, mean, names=("local", "cell type mean"))
    ax = gene_ranks(result, n_top=2)
    assert len(ax.collections) == 4  # all genes + three labelled groups
    assert {t.get_text() for t in ax.texts} >= {"g0", "g1"}
    assert ax.get_xlabel() == "R$^2$ (local)"
    plt.close("all")

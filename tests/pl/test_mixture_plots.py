import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

import lucidvi
from lucidvi.model import MixtureVI


@pytest.fixture(scope="module")
def model():
    adata = lucidvi.data.simulate_nb_mixture(n=60, p=30, k=2, seed=0)
    MixtureVI.setup_anndata(adata, layer="counts")
    model = MixtureVI(adata, n_clusters=2)
    model.train(init="kmeans", seed=0, progress_bar=False)
    return model


def test_cluster_expression_draws_one_line_per_cluster(model):
    ax = lucidvi.pl.cluster_expression(model, "gene_3")
    assert len(ax.get_lines()) == 2
    assert "gene_3" in ax.get_xlabel()
    ax = lucidvi.pl.cluster_expression(model, "gene_3", clusters=[1])
    assert len(ax.get_lines()) == 1
    with pytest.raises(ValueError, match="not one of"):
        lucidvi.pl.cluster_expression(model, "nope")
    plt.close("all")


def test_cluster_expression_draws_a_merged_cluster_as_one_mixture():
    adata = lucidvi.data.simulate_nb_mixture(n=60, p=30, k=2, seed=0)
    MixtureVI.setup_anndata(adata, layer="counts")
    merged = MixtureVI(adata, n_clusters=2, n_components=4)
    merged.train(init="kmeans", seed=0, progress_bar=False)
    ax = lucidvi.pl.cluster_expression(merged, "gene_3")
    assert len(ax.get_lines()) == 2
    x, y = ax.get_lines()[0].get_data()
    assert np.all(np.isfinite(y)) and y.max() > 0
    plt.close("all")


def test_n_clusters_criterion_marks_the_selected_k():
    table = pd.DataFrame(
        {"bic": [10.0, 5.0, 7.0], "selected": [False, True, False]},
        index=pd.Index([2, 3, 4], name="n_clusters"),
    )
    ax = lucidvi.pl.n_clusters_criterion(table, "bic")
    offsets = ax.collections[0].get_offsets()
    assert tuple(offsets[0]) == (3, 5.0)
    with pytest.raises(ValueError, match="no 'icl' column"):
        lucidvi.pl.n_clusters_criterion(table, "icl")
    plt.close("all")

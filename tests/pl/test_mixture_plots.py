import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from scipy.stats import gamma

import lucidvi
from lucidvi.model import MixtureVI


@pytest.fixture(scope="module")
def model():
    adata = lucidvi.data.simulate_nb_mixture(n=60, p=30, k=2, seed=0)
    MixtureVI.setup_anndata(adata, layer="counts")
    model = MixtureVI(adata, n_clusters=2)
    model.train(init="kmeans", seed=0, progress_bar=False)
    return model


def _components() -> pd.DataFrame:
    """Three components in two clusters: cluster 1 is a mixture of components 1 and 2."""
    return pd.DataFrame(
        {
            "mean": [1e-4, 5e-4, 2e-3],
            "dispersion": [0.5, 0.2, 0.1],
            "weight": [0.5, 0.3, 0.2],
            "cluster": [0, 1, 1],
        }
    )


def test_cluster_expression_draws_the_given_tables():
    rng = np.random.default_rng(0)
    expression = pd.Series(rng.gamma(2.0, 2e-4, 50), name="CD3E")
    cell_clusters = np.repeat([0, 1], 25)
    ax = lucidvi.pl.cluster_expression(expression, cell_clusters, _components())
    assert len(ax.get_lines()) == 2
    assert "CD3E" in ax.get_xlabel()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["0 (n=25)", "1 (n=25)"]
    # a cluster of two components is their weighted mixture, on the log1p(1e4 x) axis
    grid, density = ax.get_lines()[1].get_data()
    lam = np.expm1(grid) / 1e4
    expected = (
        0.3 * gamma.pdf(lam, a=5.0, scale=5e-4 / 5.0) + 0.2 * gamma.pdf(lam, a=10.0, scale=2e-4)
    ) * (np.exp(grid) / 1e4 / 0.5)
    np.testing.assert_allclose(density, expected, rtol=1e-10)
    ax = lucidvi.pl.cluster_expression(expression, cell_clusters, _components(), clusters=[1])
    assert len(ax.get_lines()) == 1
    plt.close("all")


def test_cluster_expression_says_what_is_missing():
    expression = np.ones(4)
    with pytest.raises(ValueError, match="lacks the columns \\['weight'\\]"):
        lucidvi.pl.cluster_expression(
            expression, [0, 0, 1, 1], _components().drop(columns="weight")
        )
    with pytest.raises(ValueError, match="one cluster per cell"):
        lucidvi.pl.cluster_expression(expression, [0, 1], _components())
    plt.close("all")


def test_the_model_draws_one_line_per_cluster(model):
    ax = model.plot_cluster_expression("gene_3")
    assert len(ax.get_lines()) == 2
    assert "gene_3" in ax.get_xlabel()
    _, given = plt.subplots()
    assert model.plot_cluster_expression("gene_3", clusters=[1], ax=given) is given
    assert len(given.get_lines()) == 1
    with pytest.raises(ValueError, match="not one of"):
        model.plot_cluster_expression("nope")
    plt.close("all")


def test_the_model_draws_a_merged_cluster_as_one_mixture():
    adata = lucidvi.data.simulate_nb_mixture(n=60, p=30, k=2, seed=0)
    MixtureVI.setup_anndata(adata, layer="counts")
    merged = MixtureVI(adata, n_clusters=2, n_components=4)
    merged.train(init="kmeans", seed=0, progress_bar=False)
    ax = merged.plot_cluster_expression("gene_3")
    assert len(ax.get_lines()) == 2
    x, y = ax.get_lines()[0].get_data()
    assert np.all(np.isfinite(y)) and y.max() > 0
    plt.close("all")


def test_n_clusters_criterion_marks_the_selected_k():
    table = pd.DataFrame(
        {"bic": [10.0, 5.0, 7.0], "selected": [False, True, False]},
        index=pd.Index([2, 3, 4], name="n_clusters"),
    )
    ax = lucidvi.pl.n_clusters_criterion(table, criterion="bic")
    offsets = ax.collections[0].get_offsets()
    assert tuple(offsets[0]) == (3, 5.0)
    with pytest.raises(ValueError, match="no 'icl' column"):
        lucidvi.pl.n_clusters_criterion(table, criterion="icl")
    with pytest.raises(TypeError):
        lucidvi.pl.n_clusters_criterion(table, "bic")  # options are keyword-only
    plt.close("all")

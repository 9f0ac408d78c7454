import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from anndata import AnnData
from matplotlib.patches import Rectangle

from lucidvi.interpretation import ClusteringEvaluation
from lucidvi.pl import clustering_confusion, clustering_embedding

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def result():
    """3 labels x 20 cells; cluster 'k9' takes 2 cells of 'b' and matches no label."""
    rng = np.random.default_rng(0)
    labels = np.repeat(["a", "b", "c"], 20)
    clusters = np.repeat(["k2", "k0", "k1"], 20).astype(object)
    clusters[[20, 21]] = "k9"
    clusters[0] = "k1"
    adata = AnnData(np.zeros((60, 1), dtype=np.float32))
    adata.obs["truth"] = labels
    adata.obsm["X_umap"] = rng.normal(size=(60, 2))
    return ClusteringEvaluation.compute(clusters, adata, "truth")


def _rectangles(ax):
    return [p for p in ax.patches if isinstance(p, Rectangle)]


def test_confusion_heatmap_is_row_normalised_annotated_and_outlines_matches(result):
    ax = clustering_confusion(result)
    values = ax.images[0].get_array()
    assert values.shape == (3, 4)
    np.testing.assert_allclose(values.sum(axis=1), 1.0)
    np.testing.assert_allclose(np.diag(values), [19 / 20, 18 / 20, 20 / 20])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["k2", "k0", "k1", "k9"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b", "c"]
    assert len(ax.texts) == 12 and ax.texts[0].get_text() == "0.95"
    assert len(_rectangles(ax)) == 3  # one outline per matched pair
    assert ax.get_ylabel() == "truth" and "accuracy 0.95" in ax.get_title()
    plt.close("all")


def test_confusion_counts_and_given_axes(result):
    _, ax = plt.subplots()
    returned = result.plot_confusion(ax=ax, normalize=None)
    assert returned is ax
    np.testing.assert_array_equal(ax.images[0].get_array(), result.confusion.to_numpy())
    by_cluster = clustering_confusion(result, normalize="cluster").images[0].get_array()
    np.testing.assert_allclose(by_cluster.sum(axis=0), 1.0)
    with pytest.raises(ValueError, match="normalize"):
        clustering_confusion(result, normalize="cell")
    plt.close("all")


def test_embedding_panels_share_colours_where_clusters_match(result):
    by_label = clustering_embedding(result)
    by_cluster = clustering_embedding(result, color="cluster")
    assert by_label.figure is not by_cluster.figure  # one panel per call
    label_points, cluster_points = (
        ax.collections[0].get_facecolors() for ax in (by_label, by_cluster)
    )
    assert len(label_points) == len(cluster_points) == 60
    same = np.all(np.isclose(label_points, cluster_points), axis=1)
    # the points are drawn in a shuffled order: compare counts, 3 cells sit in foreign clusters
    assert same.sum() == 57
    label_colors = {tuple(c) for c in np.round(label_points, 6)}
    cluster_colors = {tuple(c) for c in np.round(cluster_points, 6)}
    assert len(label_colors) == 3 and len(cluster_colors) == 4  # k9 has a colour of its own
    legend = [t.get_text() for t in by_cluster.get_legend().get_texts()]
    assert legend == ["k2 (a)", "k0 (b)", "k1 (c)", "k9 (unmatched)"]
    assert by_label.get_title() == "truth"
    assert by_cluster.get_title() == "cluster (matched label)"
    plt.close("all")


def test_embedding_into_given_axes_and_errors(result):
    _, given = plt.subplots(1, 2)
    assert result.plot_embedding(ax=given[0]) is given[0]
    assert result.plot_embedding(color="cluster", ax=given[1]) is given[1]
    assert [ax.get_legend().get_title().get_text() for ax in given] == ["label", "cluster"]
    with pytest.raises(ValueError, match="color must be 'label' or 'cluster'"):
        clustering_embedding(result, color="truth")
    bare = ClusteringEvaluation(
        table=result.table.drop(columns=["embedding_1", "embedding_2"]),
        labels_key="truth",
        basis="X_umap",
    )
    with pytest.raises(ValueError, match="no 'X_umap'.*scanpy.pp.neighbors"):
        clustering_embedding(bare)
    plt.close("all")


def test_many_labels_get_distinct_colours():
    labels = np.repeat([f"type{i}" for i in range(25)], 4)
    adata = AnnData(np.zeros((100, 1), dtype=np.float32))
    adata.obs["truth"] = pd.Categorical(labels)
    adata.obsm["X_umap"] = np.random.default_rng(0).normal(size=(100, 2))
    evaluation = ClusteringEvaluation.compute(np.arange(100) // 4, adata, "truth")
    ax = evaluation.plot_embedding()
    colors = {tuple(c) for c in np.round(ax.collections[0].get_facecolors(), 6)}
    assert len(colors) == 25
    assert len(evaluation.plot_confusion().texts) == 0  # 625 cells: too many to annotate
    plt.close("all")

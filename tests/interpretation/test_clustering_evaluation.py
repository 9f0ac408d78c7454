import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from anndata import AnnData

from lucidvi.interpretation import ClusteringEvaluation
from lucidvi.metrics import clustering_scores

matplotlib.use("Agg")

N_PER_LABEL = 30


def _adata() -> AnnData:
    """90 cells of 3 labels; clusters 0-2 recover them with 5 swaps, cluster 3 is surplus."""
    rng = np.random.default_rng(0)
    labels = np.repeat(["T", "B", "NK"], N_PER_LABEL)
    clusters = np.repeat([2, 0, 1], N_PER_LABEL)
    clusters[[0, 1, 2]] = 0  # three T cells in B's cluster
    clusters[35] = 1  # a B cell in NK's cluster
    clusters[89] = 3  # an NK cell alone in a surplus cluster
    adata = AnnData(np.zeros((len(labels), 2), dtype=np.float32))
    adata.obs_names = [f"cell{i}" for i in range(len(labels))]
    adata.obs["cell_type"] = pd.Categorical(labels, categories=["T", "B", "NK"])
    adata.obs["leiden"] = pd.Categorical(clusters.astype(str))  # as scanpy stores clusters
    adata.obs["cluster_id"] = clusters
    adata.obsm["X_umap"] = (
        rng.normal(size=(len(labels), 2)) + 3 * np.eye(3)[np.repeat([0, 1, 2], N_PER_LABEL), :2]
    )
    return adata


def _probabilities(clusters: np.ndarray) -> pd.DataFrame:
    values = 0.8 * np.eye(4)[clusters] + 0.05
    return pd.DataFrame(values, columns=[0, 1, 2, 3])


class FakeMixture:
    """The two methods ClusteringEvaluation needs from a fitted clustering model."""

    def __init__(self, adata: AnnData):
        self.adata = adata
        self.calls = []

    def get_cluster_assignments(self, adata=None):
        self.calls.append(adata)
        adata = self.adata if adata is None else adata
        series = pd.Series(adata.obs["cluster_id"].to_numpy(), index=adata.obs_names)
        return series.iloc[::-1]  # a different order: must be aligned by cell name

    def get_cluster_probabilities(self, adata=None):
        adata = self.adata if adata is None else adata
        frame = _probabilities(adata.obs["cluster_id"].to_numpy())
        return frame.set_index(adata.obs_names)


@pytest.fixture(scope="module")
def adata():
    return _adata()


def test_from_an_obs_key(adata):
    result = ClusteringEvaluation.compute("leiden", adata, "cell_type")
    expected = clustering_scores(adata.obs["cell_type"], adata.obs["leiden"])
    assert result.scores == pytest.approx(expected)
    assert result.scores["accuracy"] == pytest.approx(85 / 90)
    assert "log_loss" not in result.scores and not result.has_probabilities
    assert result.label_order == ("T", "B", "NK")  # the categories' order
    assert result.cluster_order == ("0", "1", "2", "3")
    assert result.matching == {"0": "B", "1": "NK", "2": "T", "3": "NK"}
    assert list(result.table.columns) == [
        "cell",
        "label",
        "cluster",
        "probability",
        "probability_true",
        "embedding_1",
        "embedding_2",
    ]
    assert result.table["probability"].isna().all()
    np.testing.assert_allclose(result.table["embedding_1"], adata.obsm["X_umap"][:, 0])
    confusion = result.confusion
    assert list(confusion.index) == ["T", "B", "NK"]
    assert list(confusion.columns) == ["2", "0", "1", "3"]  # matched clusters on the diagonal
    np.testing.assert_array_equal(np.diag(confusion.to_numpy()), [27, 29, 29])
    assert confusion.to_numpy().sum() == adata.n_obs


def test_from_an_array_and_a_misordered_series(adata):
    clusters = adata.obs["cluster_id"].to_numpy()
    from_array = ClusteringEvaluation.compute(clusters, adata, "cell_type")
    from_key = ClusteringEvaluation.compute("cluster_id", adata, "cell_type")
    pd.testing.assert_frame_equal(from_array.table, from_key.table)
    shuffled = pd.Series(clusters, index=adata.obs_names).sample(frac=1.0, random_state=0)
    from_series = ClusteringEvaluation.compute(shuffled, adata, "cell_type")
    pd.testing.assert_frame_equal(from_series.table, from_key.table)
    assert from_array.cluster_order == (0, 1, 2, 3)
    assert from_array.scores == pytest.approx(clustering_scores(adata.obs["cell_type"], clusters))


def test_from_a_model_with_probabilities(adata):
    model = FakeMixture(adata)
    result = ClusteringEvaluation.compute(model, adata, "cell_type")
    assert model.calls == [adata]
    clusters = adata.obs["cluster_id"].to_numpy()
    probabilities = _probabilities(clusters)
    expected = clustering_scores(adata.obs["cell_type"], clusters, probabilities)
    assert result.scores == pytest.approx(expected)
    # 85 cells give their label's cluster 0.85, the 5 others 0.05
    assert result.scores["log_loss"] == pytest.approx(-(85 * np.log(0.85) + 5 * np.log(0.05)) / 90)
    np.testing.assert_allclose(result.table["probability"], 0.85)
    assert result.table["cluster"].tolist() == clusters.tolist()  # aligned by cell name
    assert ClusteringEvaluation.compute(model, None, "cell_type").scores == result.scores


def test_explicit_probabilities_without_a_model(adata):
    clusters = adata.obs["cluster_id"].to_numpy()
    result = ClusteringEvaluation.compute(
        clusters, adata, "cell_type", probabilities=_probabilities(clusters).to_numpy()
    )
    expected = clustering_scores(adata.obs["cell_type"], clusters, _probabilities(clusters))
    assert result.scores["log_loss"] == pytest.approx(expected["log_loss"])


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
@pytest.mark.parametrize("source", ["leiden", "model"])
def test_save_and_load_keep_table_scores_and_parameters(adata, source, suffix, tmp_path):
    clusters = FakeMixture(adata) if source == "model" else source
    result = ClusteringEvaluation.compute(clusters, adata, "cell_type")
    loaded = ClusteringEvaluation.load(result.save(tmp_path / f"evaluation{suffix}"))
    pd.testing.assert_frame_equal(loaded.to_dataframe(), result.to_dataframe())
    assert loaded._parameters() == result._parameters()
    assert loaded.scores == result.scores
    assert loaded.matching == result.matching
    pd.testing.assert_frame_equal(loaded.confusion, result.confusion)
    titles = [(name, ax.get_title()) for name, ax in result._figures()]
    assert titles == [(name, ax.get_title()) for name, ax in loaded._figures()]
    assert [name for name, _ in titles] == ["confusion", "embedding"]
    plt.close("all")


def test_missing_basis_is_computed_without_an_embedding(adata):
    bare = adata.copy()
    del bare.obsm["X_umap"]
    result = ClusteringEvaluation.compute("leiden", bare, "cell_type")
    assert not result.has_embedding
    assert "embedding_1" not in result.table.columns
    assert result.basis == "X_umap"
    with pytest.raises(ValueError, match=r"scanpy\.tl\.umap.*basis="):
        result.plot_embedding()
    assert [name for name, _ in result._figures()] == ["confusion"]
    skipped = ClusteringEvaluation.compute("leiden", adata, "cell_type", basis=None)
    with pytest.raises(ValueError, match="basis=None"):
        skipped.plot_embedding()
    plt.close("all")


def test_another_basis_uses_its_first_two_columns(adata):
    other = adata.copy()
    other.obsm["X_pca"] = np.arange(other.n_obs * 5, dtype=float).reshape(-1, 5)
    result = ClusteringEvaluation.compute("leiden", other, "cell_type", basis="X_pca")
    np.testing.assert_array_equal(result.table["embedding_2"], other.obsm["X_pca"][:, 1])
    other.obsm["X_line"] = np.zeros((other.n_obs, 1))
    with pytest.raises(ValueError, match="cells x 2"):
        ClusteringEvaluation.compute("leiden", other, "cell_type", basis="X_line")


def test_input_errors(adata):
    with pytest.raises(ValueError, match="labels_key='missing' is not a column"):
        ClusteringEvaluation.compute("leiden", adata, "missing")
    with pytest.raises(ValueError, match="'nope' are not a column"):
        ClusteringEvaluation.compute("nope", adata, "cell_type")
    with pytest.raises(ValueError, match="89 rows"):
        ClusteringEvaluation.compute(np.zeros(89, dtype=int), adata, "cell_type")
    with pytest.raises(ValueError, match="adata is needed"):
        ClusteringEvaluation.compute("leiden", None, "cell_type")
    unlabelled = adata.copy()
    unlabelled.obs.loc[unlabelled.obs_names[:2], "cell_type"] = np.nan
    with pytest.raises(ValueError, match="2 missing values"):
        ClusteringEvaluation.compute("leiden", unlabelled, "cell_type")
    clusters = adata.obs["cluster_id"].to_numpy().astype(object)
    clusters[4] = None
    with pytest.raises(ValueError, match="missing values"):
        ClusteringEvaluation.compute(clusters, adata, "cell_type")
    with pytest.raises(ValueError, match="sum to 1"):
        ClusteringEvaluation.compute(
            "cluster_id", adata, "cell_type", probabilities=np.full((90, 4), 0.5)
        )


def test_table_is_validated(adata):
    table = ClusteringEvaluation.compute("leiden", adata, "cell_type").table
    with pytest.raises(ValueError, match="lacks the columns"):
        ClusteringEvaluation(table=table.drop(columns="cluster"), labels_key="cell_type")
    with pytest.raises(ValueError, match="both or neither"):
        ClusteringEvaluation(table=table.drop(columns="embedding_2"), labels_key="cell_type")
    with pytest.raises(ValueError, match="label_order"):
        ClusteringEvaluation(table=table, labels_key="cell_type", label_order=("T", "B"))

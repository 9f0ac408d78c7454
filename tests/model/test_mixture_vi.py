import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

import lucidvi
from lucidvi.metrics import clustering_scores
from lucidvi.model import MixtureVI


def _simulate():
    """The issue's simulation: 100 cells, 500 genes, 4 clusters, seed 1 (unregistered)."""
    return lucidvi.data.simulate_nb_mixture(n=100, p=500, k=4, seed=1)


@pytest.fixture(scope="module")
def planted():
    """The simulation, registered once (tests register their own copies elsewhere)."""
    adata = _simulate()
    MixtureVI.setup_anndata(adata, layer="counts")
    return adata


@pytest.fixture(scope="module")
def fitted(planted):
    model = MixtureVI(planted, n_clusters=4)
    model.train(method="em", init="kmeans", n_init=2, seed=0, progress_bar=False)
    return model


@pytest.mark.parametrize("init", ["random", "kmeans"])
def test_em_recovers_planted_clusters_exactly(planted, init):
    model = MixtureVI(planted, n_clusters=4)
    model.train(method="em", init=init, n_init=5, seed=0, progress_bar=False)
    scores = clustering_scores(
        planted.obs["cluster"], model.get_cluster_assignments(), model.get_cluster_probabilities()
    )
    assert scores["accuracy"] == 1.0
    assert scores["nmi"] == pytest.approx(1.0)
    assert scores["ari"] == pytest.approx(1.0)
    assert scores["log_loss"] < 1e-6


def test_fitted_centroids_match_the_planted_means(fitted, planted):
    truth = planted.uns["nb_mixture"]
    assignments = fitted.get_cluster_assignments().to_numpy()
    codes = planted.obs["cluster"].cat.codes.to_numpy()
    order = [np.bincount(codes[assignments == k], minlength=4).argmax() for k in range(4)]
    params = fitted.get_cluster_parameters()
    sizes = np.asarray(planted.layers["counts"].sum(1)).ravel()
    # With the library size as s_i, mu is a proportion: rescale the truth to proportions.
    truth_props = truth["means"] / truth["means"].sum(1, keepdims=True)
    fitted_props = params["mean"].to_numpy() / params["mean"].to_numpy().sum(1, keepdims=True)
    expressed = truth["means"][order] * 1e4 >= 5
    log_ratio = np.log(fitted_props) - np.log(truth_props[order])
    # ~25 cells per cluster, means >= 5 counts and theta >= 1: log-scale sd <= sqrt(1.2 / 25).
    assert np.median(np.abs(log_ratio[expressed])) < np.sqrt(1.2 / 25)
    assert sizes.min() > 0
    assert params["weight"].sum() == pytest.approx(1.0, abs=1e-5)
    assert params["dispersion"].shape == (4, 500) and (params["dispersion"] > 0).all().all()


def test_outputs_are_labelled(fitted, planted):
    probabilities = fitted.get_cluster_probabilities()
    assert probabilities.shape == (100, 4) and probabilities.index.equals(planted.obs_names)
    np.testing.assert_allclose(probabilities.sum(1), 1.0, atol=1e-5)
    assignments = fitted.get_cluster_assignments(indices=[3, 1])
    assert list(assignments.index) == [planted.obs_names[3], planted.obs_names[1]]
    per_cell = fitted.get_log_likelihood(per_cell=True)
    assert per_cell.sum() == pytest.approx(fitted.get_log_likelihood(), rel=1e-9)
    history = fitted.history_["log_likelihood"]["log_likelihood"]
    assert history.iloc[-1] == pytest.approx(fitted.get_log_likelihood(), rel=1e-6)
    markers = fitted.get_marker_genes(n_top=3)
    assert len(markers) == 12 and (markers["log2_fold_change"] > 0).all()
    assert set(markers["gene"]) <= set(planted.var_names)


def test_save_load_round_trip(fitted, planted, tmp_path):
    fitted.save(tmp_path / "model", save_anndata=False)
    loaded = MixtureVI.load(str(tmp_path / "model"), adata=planted)
    pd.testing.assert_frame_equal(
        loaded.get_cluster_probabilities(), fitted.get_cluster_probabilities()
    )
    assert loaded.history_["log_likelihood"].equals(fitted.history_["log_likelihood"])


def test_select_n_clusters_finds_the_planted_number(fitted):
    for criterion in ("bic", "icl", "heldout"):
        table = fitted.select_n_clusters(
            range(2, 7), criterion=criterion, n_init=3, seed=0, progress_bar=False
        )
        assert table.index[table["selected"]].tolist() == [4], criterion
    assert {"log_likelihood", "n_parameters", "bic", "icl"} <= set(table.columns)
    assert "heldout_log_likelihood" in table.columns


def test_amortized_training_matches_em(planted):
    model = MixtureVI(planted, n_clusters=4, dispersion="gene")
    model.train(method="amortized", init="kmeans", seed=0, max_epochs=40, progress_bar=False)
    for source in ("posterior", "encoder"):
        probabilities = model.get_cluster_probabilities(source=source)
        assignments = probabilities.to_numpy().argmax(1)
        assert clustering_scores(planted.obs["cluster"], assignments)["ari"] == 1.0, source
    assert "train_loss" in model.history


def test_init_from_labels_and_arrays(planted):
    with pytest.raises(ValueError, match="n_components equal to the number of labels"):
        MixtureVI(planted, n_clusters=4, n_components=8).train(init="cluster", progress_bar=False)
    model = MixtureVI(planted, n_clusters=4, n_components=4)
    model.train(init="cluster", progress_bar=False)
    truth = planted.obs["cluster"].cat.codes.to_numpy()
    assert clustering_scores(truth, model.get_cluster_assignments())["ari"] == 1.0
    model.train(init=truth, progress_bar=False)
    assert clustering_scores(truth, model.get_cluster_assignments())["ari"] == 1.0
    with pytest.raises(ValueError, match="n_init=1"):
        model.train(init=truth, n_init=2, progress_bar=False)


def test_encoder_probabilities_need_amortized_fit(fitted):
    with pytest.raises(ValueError, match="amortized"):
        fitted.get_cluster_probabilities(source="encoder")


def test_bad_input_raises_clear_errors(planted):
    with pytest.raises(ValueError, match="one process on one device"):
        MixtureVI(planted, n_clusters=3).train(method="em", accelerator="cpu", devices=2)
    with pytest.raises(ValueError, match="between 2 and the number of cells"):
        MixtureVI(planted, n_clusters=1)
    with pytest.raises(ValueError, match="between 2 and the number of cells"):
        MixtureVI(planted, n_clusters=101)
    bad = _simulate()
    bad.layers["counts"] = bad.layers["counts"] * 0.5
    with pytest.raises(ValueError, match="non-integer"):
        MixtureVI.setup_anndata(bad, layer="counts")
    empty = _simulate()
    counts = empty.layers["counts"].tolil()
    counts[0, :] = 0
    empty.layers["counts"] = sp.csr_matrix(counts)
    with pytest.raises(ValueError, match="zero total counts"):
        MixtureVI.setup_anndata(empty, layer="counts")
    missing = _simulate()
    missing.obs["label"] = missing.obs["cluster"].astype(object)
    missing.obs.loc[missing.obs_names[0], "label"] = np.nan
    MixtureVI.setup_anndata(missing, layer="counts")
    model = MixtureVI(missing, n_clusters=4)
    with pytest.raises(ValueError, match="missing values"):
        model.train(init="label", progress_bar=False)
    with pytest.raises(ValueError, match="neither"):
        model.train(init="no_such_column", progress_bar=False)
    with pytest.raises(ValueError, match="method"):
        model.train(method="gibbs", progress_bar=False)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no GPU"):
            model.train(accelerator="gpu", progress_bar=False)
    factors = _simulate()
    factors.obs["size_factor"] = -1.0
    with pytest.raises(ValueError, match="positive size factors"):
        MixtureVI.setup_anndata(factors, layer="counts", size_factor_key="size_factor")


def test_size_factors_and_batches():
    adata = _simulate()
    adata.obs["batch"] = np.where(np.arange(100) % 2 == 0, "a", "b")
    MixtureVI.setup_anndata(adata, layer="counts", size_factor_key="size_factor", batch_key="batch")
    model = MixtureVI(adata, n_clusters=4)
    model.train(init="kmeans", n_init=3, seed=0, progress_bar=False)
    assert clustering_scores(adata.obs["cluster"], model.get_cluster_assignments())["ari"] == 1.0
    # With the true size factor, mu is on the planted scale (no batch effect was planted).
    mean = model.get_cluster_parameters()["mean"].to_numpy()
    assert np.median(mean) == pytest.approx(np.median(adata.uns["nb_mixture"]["means"]), rel=0.3)


def test_em_logs_the_likelihood_to_a_lightning_logger(planted, tmp_path):
    from lightning.pytorch.loggers import CSVLogger

    logger = CSVLogger(tmp_path, name="em")
    model = MixtureVI(planted, n_clusters=4)
    model.train(init="kmeans", seed=0, logger=logger, progress_bar=False)
    logged = pd.read_csv(tmp_path / "em" / "version_0" / "metrics.csv")
    history = model.history_["log_likelihood"]["log_likelihood"].to_numpy()
    np.testing.assert_allclose(logged["em_log_likelihood"].to_numpy(), history)
    with pytest.raises(ValueError, match="amortized"):
        model.train(init="kmeans", callbacks=[], progress_bar=False)


def test_new_data_is_evaluated_with_the_fitted_mixture(fitted, planted):
    other = _simulate()[10:30].copy()  # the same cells, as a new, unregistered AnnData
    probabilities = fitted.get_cluster_probabilities(adata=other)
    expected = fitted.get_cluster_probabilities(indices=np.arange(10, 30))
    np.testing.assert_allclose(probabilities.to_numpy(), expected.to_numpy(), atol=1e-5)
    assert list(probabilities.index) == list(other.obs_names)


@pytest.mark.parametrize("init", ["kmeans", "random", "leiden"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_training_leaves_dense_counts_in_x_as_they_were(init, dtype):
    """The start's PCA normalised a float32 adata.X in place (an uncopied np.asarray)."""
    adata = _simulate()
    adata.X = np.asarray(adata.layers["counts"].toarray(), dtype=dtype)
    del adata.layers["counts"]
    before = adata.X.copy()
    MixtureVI.setup_anndata(adata)
    MixtureVI(adata, n_clusters=4).train(method="em", init=init, seed=0, progress_bar=False)
    np.testing.assert_array_equal(adata.X, before)
    MixtureVI.setup_anndata(adata)  # counts still integers: a second registration works


def test_amortized_training_keeps_the_callers_seed_and_torch_generator(planted):
    import scvi

    previous = scvi.settings.seed
    scvi.settings.seed = 123
    try:
        model = MixtureVI(planted, n_clusters=4)  # its initial weights draw from torch's RNG
        torch_state = torch.get_rng_state()
        model.train(method="amortized", max_epochs=2, seed=7, progress_bar=False)
        assert scvi.settings.seed == 123
        assert torch.equal(torch.get_rng_state(), torch_state)
    finally:
        scvi.settings.seed = previous


def test_accelerators_that_cannot_run_em_raise(planted, monkeypatch):
    model = MixtureVI(planted, n_clusters=4)
    with pytest.raises(ValueError, match="accelerator must be"):
        model.train(method="em", accelerator="tpu", progress_bar=False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    with pytest.raises(ValueError, match="float64, which MPS lacks"):
        model.train(method="em", accelerator="mps", progress_bar=False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    with pytest.raises(ValueError, match="no MPS is available"):
        model.train(method="em", accelerator="mps", progress_bar=False)

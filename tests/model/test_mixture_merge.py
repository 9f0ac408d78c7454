import numpy as np
import pytest
from scipy.stats import norm

import lucidvi
from lucidvi.metrics import clustering_scores
from lucidvi.model import MixtureVI
from lucidvi.model._mixture._merging import divergences, merge_components


def _gaussian_cells(means: list[float], n_per: int, seed: int = 0):
    """Cells drawn from unit-variance 1-D Gaussians, their log-likelihoods and log weights."""
    rng = np.random.default_rng(seed)
    x = np.concatenate([rng.normal(m, 1.0, n_per) for m in means])
    log_likelihood = np.stack([norm.logpdf(x, m, 1.0) for m in means], axis=1)
    return log_likelihood, np.log(np.full(len(means), 1.0 / len(means)))


def test_divergence_estimates_the_symmetric_kl_of_two_gaussians():
    d, n = 6.0, 20_000
    log_likelihood, log_weights = _gaussian_cells([0.0, d], n)
    estimate = divergences(log_likelihood, log_weights, [[0], [1]])
    # KL(N(0,1) || N(d,1)) = d^2 / 2 both ways. Per cell log p_a - log p_b = d^2/2 - d x has
    # sd d, so each direction's mean has standard error d / sqrt(n) and their average
    # d / sqrt(2n); cells past the midpoint (P = Phi(-d/2) = 0.13%) bias it by < 0.01.
    standard_error = d / np.sqrt(2 * n)
    assert estimate[0, 1] == pytest.approx(d**2 / 2, abs=4 * standard_error)
    assert estimate[0, 1] == estimate[1, 0]
    assert np.isinf(estimate[0, 0])


def test_merging_joins_the_closest_components_first():
    # Components 0 and 1 are the same distribution, 2 is near them, 3 far away.
    log_likelihood, log_weights = _gaussian_cells([0.0, 0.0, 3.0, 12.0], 2_000)
    clusters, merges = merge_components(log_likelihood, log_weights, n_clusters=2)
    assert merges["components_a"].tolist() == ["0", "0+1"]
    assert merges["components_b"].tolist() == ["1", "2"]
    assert merges["divergence"].is_monotonic_increasing
    assert clusters.tolist() == [0, 0, 0, 1]
    same, _ = merge_components(log_likelihood, log_weights, n_clusters=4)
    assert same.tolist() == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="between 1 and the number of components"):
        merge_components(log_likelihood, log_weights, n_clusters=5)


@pytest.fixture(scope="module")
def merged():
    """Three planted clusters fitted with seven components, merged back into three."""
    adata = lucidvi.data.simulate_nb_mixture(n=300, p=200, k=3, seed=1)
    MixtureVI.setup_anndata(adata, layer="counts")
    model = MixtureVI(adata, n_clusters=3, n_components=7)
    model.train(init="kmeans", seed=0, progress_bar=False)
    return model


def test_merged_components_recover_the_planted_clusters(merged):
    truth = merged.adata.obs["cluster"]
    components = merged.get_cluster_probabilities(level="component")
    assert components.shape == (300, 7)
    # The seven components split the planted clusters; merging joins them exactly.
    assert clustering_scores(truth, components.to_numpy().argmax(1))["ari"] < 1.0
    assert clustering_scores(truth, merged.get_cluster_assignments())["ari"] == 1.0
    assert len(merged.merges_) == 4
    assert sorted(set(merged.cluster_of_component_)) == [0, 1, 2]
    # The clusters that stay apart are further from each other than any merged pair.
    log_likelihood = lucidvi.train.component_log_likelihood_in_chunks(
        merged.module, merged._chunks()
    )
    log_weights = merged.module.log_weights().detach().double().numpy()
    groups = [list(np.flatnonzero(merged.cluster_of_component_ == k)) for k in range(3)]
    remaining = divergences(log_likelihood, log_weights, groups)
    assert remaining.min() > merged.merges_["divergence"].max()


def test_cluster_outputs_sum_their_components(merged):
    components = merged.get_cluster_probabilities(level="component").to_numpy()
    clusters = merged.get_cluster_probabilities().to_numpy()
    for k in range(3):
        mine = merged.cluster_of_component_ == k
        np.testing.assert_allclose(clusters[:, k], components[:, mine].sum(1), atol=1e-6)
    parts = merged.get_cluster_parameters(level="component")
    whole = merged.get_cluster_parameters()
    assert parts["cluster"].tolist() == merged.cluster_of_component_.tolist()
    for k in range(3):
        mine = (parts["cluster"] == k).to_numpy()
        w = parts["weight"].to_numpy()[mine]
        mean = parts["mean"].to_numpy()[mine]
        phi = parts["dispersion"].to_numpy()[mine]
        assert whole["weight"][k] == pytest.approx(w.sum())
        expected_mean = w @ mean / w.sum()
        np.testing.assert_allclose(whole["mean"].to_numpy()[k], expected_mean, rtol=1e-10)
        # Var(lambda) of the Gamma mixture: within-component variance plus that of the means.
        variance = w @ (phi * mean**2) / w.sum() + w @ (mean - expected_mean) ** 2 / w.sum()
        np.testing.assert_allclose(
            whole["dispersion"].to_numpy()[k], variance / expected_mean**2, rtol=1e-8
        )
    markers = merged.get_marker_genes(n_top=3)
    assert sorted(markers["cluster"].unique()) == [0, 1, 2]


def test_merges_survive_save_and_load(merged, tmp_path):
    merged.save(tmp_path / "model")
    loaded = MixtureVI.load(tmp_path / "model", adata=merged.adata)
    assert loaded.cluster_of_component_.tolist() == merged.cluster_of_component_.tolist()
    assert loaded.merges_.equals(merged.merges_)
    np.testing.assert_allclose(
        loaded.get_cluster_probabilities().to_numpy(),
        merged.get_cluster_probabilities().to_numpy(),
    )


def test_bad_numbers_of_components_raise(merged):
    adata = merged.adata
    with pytest.raises(ValueError, match="n_components must be between n_clusters"):
        MixtureVI(adata, n_clusters=3, n_components=2)
    with pytest.raises(ValueError, match="n_components must be between n_clusters"):
        MixtureVI(adata, n_clusters=3, n_components=adata.n_obs + 1)
    with pytest.raises(ValueError, match="level must be"):
        merged.get_cluster_probabilities(level="components")
    with pytest.raises(ValueError, match="level must be"):
        merged.get_cluster_parameters(level="genes")
    untrained = MixtureVI(adata, n_clusters=3, n_components=5)
    with pytest.raises(RuntimeError):
        untrained.get_cluster_parameters()


def test_amortized_fit_is_merged_too():
    adata = lucidvi.data.simulate_nb_mixture(n=300, p=200, k=3, seed=1)
    MixtureVI.setup_anndata(adata, layer="counts")
    model = MixtureVI(adata, n_clusters=3, n_components=6)
    model.train(method="amortized", init="kmeans", max_epochs=5, seed=0, progress_bar=False)
    assert len(model.merges_) == 3
    encoder = model.get_cluster_probabilities(source="encoder")
    assert encoder.shape == (300, 3)
    np.testing.assert_allclose(encoder.sum(1), 1.0, atol=1e-5)
    truth = adata.obs["cluster"]
    assert clustering_scores(truth, model.get_cluster_assignments())["ari"] == 1.0


def test_merging_guards_against_non_finite_log_likelihoods():
    rng = np.random.default_rng(0)
    log_likelihood = rng.normal(size=(50, 4))
    log_weights = np.log(np.array([0.5, 0.5, 0.0, 0.0]))  # two empty components
    cluster_of_component, merges = merge_components(log_likelihood, log_weights, 2)
    assert np.isfinite(merges["divergence"]).all() and len(set(cluster_of_component)) == 2
    log_likelihood[3, 1] = np.nan
    with pytest.raises(FloatingPointError, match="not all finite"):
        merge_components(log_likelihood, log_weights, 2)

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from lucidvi.data import simulate_nb_mixture
from lucidvi.module import NBMixture
from lucidvi.train import CountChunks, fit_em, fit_em_restarts, posterior_in_chunks


@pytest.fixture(scope="module")
def mixture_data():
    return simulate_nb_mixture(n=300, p=80, k=3, seed=2)


def _one_hot_truth(adata):
    codes = adata.obs["cluster"].cat.codes.to_numpy()
    return np.eye(3)[codes]


def test_em_never_decreases_the_likelihood_and_recovers_parameters(mixture_data):
    adata = mixture_data
    log_size = np.log(adata.obs["size_factor"].to_numpy())
    # in float64, so that rounding (float32: ~1e-6 relative) cannot mask a decrease
    chunks = CountChunks(
        adata.layers["counts"], log_size, np.zeros(adata.n_obs), dtype=torch.float64
    )
    module = NBMixture(n_input=80, n_clusters=3).double()
    start = np.full((300, 3), 1 / 3) * 0.4 + 0.6 * _one_hot_truth(adata)
    fit = fit_em(module, chunks, start, tol=1e-10, progress_bar=False)
    history = np.array(fit.history)
    # Generalised EM: every iteration's M step increases the expected complete-data
    # log-likelihood, hence the likelihood (up to float64 rounding of the sum).
    assert np.all(np.diff(history) > -1e-12 * np.abs(history[1:]))
    assert fit.converged
    truth = adata.uns["nb_mixture"]
    mu = torch.exp(module.log_mu).detach().numpy()
    # The MLE of mu_kj from n_k ~ 100 cells has relative sd sqrt(1/(s mu n_k) + 1/(theta n_k)):
    # compare on the log scale within 4 sd for genes with >= 1 expected count.
    n_k = np.bincount(adata.obs["cluster"].cat.codes, minlength=3)[:, None]
    sd = np.sqrt(1 / (1e4 * truth["means"] * n_k) + 1 / (truth["inverse_dispersions"] * n_k))
    expressed = truth["means"] * 1e4 >= 1
    assert np.all(np.abs(np.log(mu) - np.log(truth["means"]))[expressed] < 4 * sd[expressed])


def test_sparse_and_dense_inputs_give_the_same_fit(mixture_data):
    adata = mixture_data
    log_size = np.log(np.asarray(adata.layers["counts"].sum(1)).ravel())
    start = _one_hot_truth(adata)
    results = []
    for counts in (adata.layers["counts"], adata.layers["counts"].toarray()):
        chunks = CountChunks(counts, log_size, np.zeros(adata.n_obs))
        chunks.chunk_size = 64  # several chunks
        module = NBMixture(n_input=80, n_clusters=3)
        fit = fit_em(module, chunks, start, max_iter=20, progress_bar=False)
        results.append((fit.log_likelihood, posterior_in_chunks(module, chunks)[0]))
    assert results[0][0] == pytest.approx(results[1][0], rel=1e-6)
    np.testing.assert_allclose(results[0][1], results[1][1], atol=1e-5)


def test_batch_effects_are_recovered():
    adata = simulate_nb_mixture(n=600, p=40, k=2, seed=3)
    rng = np.random.default_rng(0)
    batch = rng.integers(2, size=600)
    shift = rng.normal(0, 0.5, size=40)
    counts = adata.layers["counts"].toarray()
    truth = adata.uns["nb_mixture"]
    means = truth["means"][adata.obs["cluster"].cat.codes.to_numpy()] * 1e4
    means *= np.exp(shift * batch[:, None])
    thetas = truth["inverse_dispersions"][adata.obs["cluster"].cat.codes.to_numpy()]
    counts = rng.poisson(rng.gamma(thetas, means / thetas)).astype(np.float32)
    counts[counts.sum(1) == 0, 0] = 1
    chunks = CountChunks(sp.csr_matrix(counts), np.full(600, np.log(1e4)), batch)
    module = NBMixture(n_input=40, n_clusters=2, n_batch=2)
    start = np.eye(2)[adata.obs["cluster"].cat.codes.to_numpy()]
    fit_em(module, chunks, start, tol=1e-8, progress_bar=False)
    estimated = module.batch_effect.detach().numpy()[0]
    expressed = means.mean(0) > 2
    # ~300 cells per batch: the log fold change of a gene with mean >= 2 and theta >= 1 has sd
    # below sqrt(2 * (1/2 + 1) / 300) = 0.1; allow 4 sd.
    assert np.all(np.abs(estimated - shift)[expressed] < 0.4)
    assert np.corrcoef(estimated[expressed], shift[expressed])[0, 1] > 0.9


@pytest.mark.parametrize("dispersion", ["cluster-gene", "gene"])
@pytest.mark.parametrize("n_batch", [1, 2])
def test_em_log_likelihood_equals_the_module(dispersion, n_batch):
    from lucidvi.train._expectation_maximization import _cluster_log_likelihood, _count_tables

    torch.manual_seed(0)
    module = NBMixture(n_input=7, n_clusters=3, n_batch=n_batch, dispersion=dispersion).double()
    with torch.no_grad():
        module.log_mu.normal_(-2, 1)
        module.log_theta.normal_(1, 1)
        module.batch_effect.normal_(0, 0.5)
    x = torch.poisson(torch.full((5, 7), 8.0, dtype=torch.float64))
    x[0, 0] = 100  # above the count tables
    log_size = torch.log(x.sum(1, keepdim=True))
    batch = torch.randint(n_batch, (5, 1))
    with torch.no_grad():
        expected = module.cluster_log_likelihood(x, log_size, batch)
        tables = [_count_tables(torch.exp(row[None])) for row in module.log_theta]
        offset = module.log_offset(log_size, batch)
        result, _ = _cluster_log_likelihood(module, x, offset, tables)
    torch.testing.assert_close(result, expected, rtol=1e-10, atol=1e-8)


def test_a_non_finite_log_likelihood_stops_em_at_once(mixture_data, monkeypatch):
    """NaN compares False with everything: EM must stop at that pass, not run max_iter."""
    from lucidvi.train import _expectation_maximization as em

    adata = mixture_data
    chunks = CountChunks(adata.layers["counts"], np.zeros(adata.n_obs), np.zeros(adata.n_obs))
    module = NBMixture(n_input=80, n_clusters=3)
    e_step, passes = em._e_step, []

    def nan_e_step(*args):
        r, marginal, ds = e_step(*args)
        passes.append(1)
        return r, marginal * float("nan"), ds

    monkeypatch.setattr(em, "_e_step", nan_e_step)
    with pytest.raises(FloatingPointError, match="non-finite log-likelihood .* iteration 0"):
        fit_em(module, chunks, _one_hot_truth(adata), max_iter=50, progress_bar=False)
    assert len(passes) == len(list(chunks))  # one pass over the chunks, not 50


def test_restarts_set_a_failed_start_aside_and_fail_only_when_all_do(mixture_data, monkeypatch):
    adata = mixture_data
    chunks = CountChunks(adata.layers["counts"], np.zeros(adata.n_obs), np.zeros(adata.n_obs))
    module = NBMixture(n_input=80, n_clusters=3)
    truth = _one_hot_truth(adata)

    def start(seed):  # the first start is poisoned with NaN memberships
        return np.full_like(truth, np.nan) if seed == 0 else 0.6 * truth + 0.4 / 3

    with pytest.warns(RuntimeWarning, match="EM start 1 of 2 failed"):
        fit = fit_em_restarts(module, chunks, start, 2, 0, progress_bar=False)
    assert np.isfinite(fit.log_likelihood) and torch.isfinite(module.log_mu).all()
    with pytest.warns(RuntimeWarning), pytest.raises(FloatingPointError, match="Every EM start"):
        fit_em_restarts(
            module, chunks, lambda s: np.full_like(truth, np.nan), 2, 0, progress_bar=False
        )

import numpy as np
import pytest
import scipy.sparse as sp

from lucidvi.data import simulate_nb_mixture


def test_truth_and_counts_follow_the_stated_distributions():
    adata = simulate_nb_mixture(n=2000, p=50, k=3, s=1e4, seed=4)
    truth = adata.uns["nb_mixture"]
    assert truth["means"].shape == truth["inverse_dispersions"].shape == (3, 50)
    log_means, log_thetas = np.log(truth["means"]), np.log(truth["inverse_dispersions"])
    assert log_means.min() >= -12 and log_means.max() <= -6
    assert log_thetas.min() >= 0 and log_thetas.max() <= 4
    counts = adata.layers["counts"]
    assert sp.issparse(counts) and np.array_equal(counts.data, np.round(counts.data))
    assert (np.asarray(counts.sum(1)).ravel() > 0).all()
    # Per cluster and gene, the sample mean of x / s estimates mu: its standard error is
    # sqrt(mu / s + mu^2 / theta) / sqrt(n_k); allow 5 standard errors.
    dense = counts.toarray()
    for c in range(3):
        members = (adata.obs["cluster"] == str(c)).to_numpy()
        mu, theta = truth["means"][c], truth["inverse_dispersions"][c]
        error = np.sqrt(mu / 1e4 + mu**2 / theta) / np.sqrt(members.sum())
        observed = dense[members].mean(0) / 1e4
        assert np.all(np.abs(observed - mu) < 5 * error + 1e-12)


def test_seed_reproducibility_and_chunking_agree():
    a = simulate_nb_mixture(n=30, p=20, k=2, seed=1)
    b = simulate_nb_mixture(n=30, p=20, k=2, seed=1)
    assert (a.X != b.X).nnz == 0 and a.obs["cluster"].equals(b.obs["cluster"])
    assert set(a.obs["cluster"].cat.categories) == {"0", "1"}


@pytest.mark.parametrize("kwargs", [{"k": 0}, {"n": 0}, {"s": -1.0}])
def test_bad_parameters_raise(kwargs):
    with pytest.raises(ValueError):
        simulate_nb_mixture(**kwargs)

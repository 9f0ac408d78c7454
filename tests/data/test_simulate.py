import numpy as np
import pytest

from lucidvi.data import simulate_linear


def test_truth_is_stored_and_consistent():
    adata = simulate_linear(n_cells=300, n_genes=100, n_factors=4, n_batches=2, seed=5)
    assert adata.shape == (300, 100)
    assert adata.obsm["true_factors"].shape == (300, 4)
    loadings = adata.varm["true_loadings"]
    assert loadings.shape == (100, 4)
    blocks = adata.uns["simulation"]["gene_blocks"]
    for k in range(4):
        block = blocks[f"Z_{k}"]
        positive = adata.var_names.get_indexer(block["positive"])
        negative = adata.var_names.get_indexer(block["negative"])
        assert (loadings[positive, k] > 0).all() and (loadings[negative, k] < 0).all()
        assert np.count_nonzero(loadings[:, k]) == len(positive) + len(negative)
    assert (np.count_nonzero(loadings, axis=1) <= 1).all()  # disjoint blocks
    scales = adata.obsm["true_factors"].std(0)
    np.testing.assert_allclose(scales, adata.uns["simulation"]["factor_scales"], rtol=0.2)
    counts = adata.layers["counts"]
    assert np.array_equal(counts.data, np.round(counts.data)) and (counts.data >= 0).all()
    assert (np.asarray(counts.sum(1)).ravel() > 0).all()
    assert set(adata.obs["batch"].cat.categories) == {"batch_0", "batch_1"}


def test_seed_reproducibility():
    a = simulate_linear(n_cells=50, n_genes=40, n_factors=2, seed=1)
    b = simulate_linear(n_cells=50, n_genes=40, n_factors=2, seed=1)
    c = simulate_linear(n_cells=50, n_genes=40, n_factors=2, seed=2)
    assert (a.X != b.X).nnz == 0 and (a.X != c.X).nnz > 0


def test_mean_counts_follow_the_model():
    """Counts average to library x softmax(logits) (law of large numbers over cells)."""
    adata = simulate_linear(
        n_cells=4000,
        n_genes=30,
        n_factors=1,
        genes_per_factor=4,
        factor_scales=[1e-6],
        library_size=300,
        library_log_sd=1e-6,
        seed=0,
    )
    baseline = adata.var["true_baseline"].to_numpy()
    expected = 300 * np.exp(baseline) / np.exp(baseline).sum()
    observed = np.asarray(adata.X.mean(0)).ravel()
    # NB variance mu + mu^2/theta; 5 standard errors of the mean
    sem = np.sqrt((expected + expected**2 / 10) / 4000)
    assert (np.abs(observed - expected) < 5 * sem + 1e-9).all()


def test_bad_arguments():
    with pytest.raises(ValueError, match="exceeds n_genes"):
        simulate_linear(n_genes=20, n_factors=5, genes_per_factor=10)
    with pytest.raises(ValueError, match="factor_scales"):
        simulate_linear(n_genes=40, n_factors=2, factor_scales=[1.0])

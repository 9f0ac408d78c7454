"""MixtureVI's informative genes (binomial deviance) and their shared background."""

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from lucidvi.metrics import clustering_scores
from lucidvi.model import MixtureVI
from lucidvi.model._mixture._gene_selection import binomial_deviance

N_CELLS, N_GENES, N_MARKERS, N_CLUSTERS = 600, 400, 30, 3


def _planted(seed: int = 0) -> ad.AnnData:
    """3 clusters told apart by 30 marker genes (10 each, 8x up); 370 genes shared by all.

    Every gene is negative binomial with inverse dispersion 2 and a mean of 0.5-3 counts in
    a cell of average depth; a marker's mean is 8 times higher in its cluster.
    """
    rng = np.random.default_rng(seed)
    cluster = np.repeat(np.arange(N_CLUSTERS), N_CELLS // N_CLUSTERS)
    base = rng.uniform(0.5, 3.0, N_GENES)
    means = np.tile(base, (N_CLUSTERS, 1))
    for k in range(N_CLUSTERS):
        markers = np.arange(k * 10, (k + 1) * 10)
        means[k, markers] *= 8.0
    depth = rng.lognormal(0.0, 0.3, N_CELLS)[:, None]
    rate = rng.gamma(2.0, means[cluster] * depth / 2.0)
    counts = sp.csr_matrix(rng.poisson(rate).astype(np.float32))
    adata = ad.AnnData(counts.copy(), obs=pd.DataFrame(index=[f"c{i}" for i in range(N_CELLS)]))
    adata.var_names = [f"g{j}" for j in range(N_GENES)]
    adata.layers["counts"] = counts
    adata.obs["cluster"] = pd.Categorical(cluster)
    adata.obs["batch"] = pd.Categorical(rng.integers(0, 2, N_CELLS).astype(str))
    return adata


def _direct_deviance(x: np.ndarray, batch: np.ndarray) -> np.ndarray:
    """Townes et al.'s binomial deviance summed over batches, term by term on a dense matrix."""
    total = np.zeros(x.shape[1])
    for b in np.unique(batch):
        xb = x[batch == b]
        n = xb.sum(1, keepdims=True)
        p = xb.sum(0) / n.sum()
        rest = n - xb
        with np.errstate(divide="ignore", invalid="ignore"):
            first = np.where(xb > 0, xb * np.log(xb / (n * p)), 0.0)
            second = np.where(rest > 0, rest * np.log(rest / (n * (1 - p))), 0.0)
        total += 2 * np.nansum(first + second, 0)
    return total


@pytest.fixture(scope="module")
def planted():
    adata = _planted()
    MixtureVI.setup_anndata(adata, layer="counts")
    return adata


@pytest.fixture(scope="module")
def selected(planted):
    model = MixtureVI(planted, n_clusters=N_CLUSTERS, n_top_genes=60)
    model.train(seed=0, progress_bar=False)
    return model


def test_deviance_equals_the_formula_term_by_term():
    x = _planted().layers["counts"].toarray().astype(np.float64)
    x[:, 50] = 0  # a gene without counts: deviance 0
    x[0] = 0
    x[0, 3] = 9  # a cell whose counts all fall on one gene: its (n - x) terms vanish
    batch = np.random.default_rng(1).integers(0, 3, N_CELLS)
    for b in (np.zeros(N_CELLS, int), batch):
        expected = _direct_deviance(x, b)
        assert np.allclose(binomial_deviance(sp.csr_matrix(x), b), expected, rtol=1e-10)
        assert np.allclose(binomial_deviance(x, b), expected, rtol=1e-10)
    assert binomial_deviance(x)[50] == 0.0


def test_planted_markers_rank_first_and_drive_the_clusters(selected, planted):
    # a marker's deviance grows with the 8-fold change over a third of the cells (hundreds of
    # counts' worth), a shared gene's only with its Gamma noise: all 30 markers lead the 60
    assert set(planted.var_names[:N_MARKERS]) <= set(selected.informative_genes_)
    assert len(selected.informative_genes_) == 60
    assert selected.module.n_input == 60
    assert selected.gene_deviance_.index.equals(planted.var_names)
    scores = clustering_scores(planted.obs["cluster"], selected.get_cluster_assignments())
    assert scores["ari"] == 1.0


def test_background_genes_share_one_model_in_every_cluster(selected, planted):
    means = selected.get_cluster_parameters()["mean"]
    assert means.columns.equals(planted.var_names)
    background = planted.var_names.difference(selected.informative_genes_)
    assert selected.background_.index.sort_values().equals(background.sort_values())
    spread = means[background].max(0) - means[background].min(0)
    assert (spread <= 1e-12 * means[background].max(0)).all()
    # the background mean is the ratio estimate, the gene's counts over all library sizes,
    # plus the EM start's floor of 0.001 counts in a cell of median library size
    counts = planted.layers["counts"]
    sizes = np.asarray(counts.sum(1)).ravel()
    ratio = np.asarray(counts.sum(0)).ravel() / sizes.sum() + 1e-3 / np.median(sizes)
    columns = planted.var_names.get_indexer(background)
    assert np.allclose(means[background].iloc[0].to_numpy(), ratio[columns], rtol=1e-5)
    assert (selected.background_["dispersion"] > 0).all()
    markers = selected.get_marker_genes(n_top=5)
    assert set(markers["gene"]) <= set(selected.informative_genes_)


def test_all_genes_when_asked_or_when_there_are_few(planted):
    everything = MixtureVI(planted, n_clusters=N_CLUSTERS, n_top_genes=None)
    assert everything.informative_genes_.equals(planted.var_names)
    assert everything.gene_deviance_ is None
    assert MixtureVI(planted, n_clusters=N_CLUSTERS).module.n_input == N_GENES  # 400 < 2,000
    with pytest.raises(ValueError, match="n_top_genes"):
        MixtureVI(planted, n_clusters=N_CLUSTERS, n_top_genes=0)


def test_batches_are_ranked_within_batch():
    adata = _planted()
    counts = adata.layers["counts"].toarray()
    # a gene that differs between batches only: Poisson, 20 times higher in the second batch
    in_second = (adata.obs["batch"] == "1").to_numpy()
    depth = counts.sum(1) / counts.sum(1).mean()
    rng = np.random.default_rng(2)
    counts[:, 399] = rng.poisson(np.where(in_second, 20.0, 1.0) * depth)
    adata.layers["counts"] = sp.csr_matrix(counts)
    MixtureVI.setup_anndata(adata, layer="counts")
    pooled = MixtureVI(adata, n_clusters=N_CLUSTERS, n_top_genes=60)
    MixtureVI.setup_anndata(adata, layer="counts", batch_key="batch")
    per_batch = MixtureVI(adata, n_clusters=N_CLUSTERS, n_top_genes=60)
    assert "g399" in pooled.informative_genes_
    assert "g399" not in per_batch.informative_genes_


def test_amortized_fit_and_saved_model_keep_the_genes(selected, planted, tmp_path):
    amortized = MixtureVI(planted, n_clusters=N_CLUSTERS, n_top_genes=60)
    amortized.train(method="amortized", max_epochs=5, seed=0, progress_bar=False)
    encoder = amortized.get_cluster_probabilities(source="encoder")
    assert encoder.shape == (N_CELLS, N_CLUSTERS)
    assert clustering_scores(planted.obs["cluster"], encoder.to_numpy().argmax(1))["ari"] > 0.9
    selected.save(tmp_path / "model")
    loaded = MixtureVI.load(tmp_path / "model", adata=planted)
    assert loaded.informative_genes_.equals(selected.informative_genes_)
    assert loaded.background_.equals(selected.background_)
    assert np.array_equal(loaded.get_cluster_assignments(), selected.get_cluster_assignments())


def test_backed_file_selects_the_same_genes_and_clusters(selected, planted, tmp_path):
    path = tmp_path / "planted.h5ad"
    on_disk = ad.AnnData(planted.layers["counts"], obs=planted.obs[["cluster"]], var=planted.var)
    on_disk.write_h5ad(path)
    backed = ad.read_h5ad(path, backed="r")
    MixtureVI.setup_anndata(backed)
    model = MixtureVI(backed, n_clusters=N_CLUSTERS, n_top_genes=60)
    assert model.informative_genes_.equals(selected.informative_genes_)
    model.train(seed=0, progress_bar=False)
    assert np.array_equal(model.get_cluster_assignments(), selected.get_cluster_assignments())
    assert np.allclose(model.background_, selected.background_, rtol=1e-5)
    backed.file.close()

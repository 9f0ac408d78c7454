"""Batch EM out of core: backed (h5ad) and dask counts fit as counts in memory do.

The dask fits run on a ``distributed.LocalCluster`` of two worker processes: every pass over
the cells (the start's sums and projection, each EM iteration) is a set of dask tasks there.
EM's chunks are made small (250 cells), so that in memory too the cells are several chunks.
"""

import hashlib
from collections import Counter

import dask.array as da
import numpy as np
import pytest
import scipy.sparse as sp
import torch
from anndata import AnnData, read_h5ad
from distributed import Client, LocalCluster, get_task_stream

import lucidvi
from lucidvi.metrics import clustering_scores
from lucidvi.model import MixtureVI
from lucidvi.model._mixture import _initial_memberships
from lucidvi.train import _count_chunks

N_CLUSTERS = 4


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """One torch thread here, as in each worker: the tests share two cores with the cluster."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def small_chunks(monkeypatch):
    """EM's chunks of 250 cells (of 100 genes): in memory, backed and on dask alike."""
    monkeypatch.setattr(_count_chunks, "_ELEMENTS_PER_CHUNK", 250 * 100)


@pytest.fixture(scope="module")
def client():
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


@pytest.fixture(scope="module")
def cells():
    """1,500 cells x 100 genes of 4 planted clusters in two batches, counts (CSR) in X."""
    adata = lucidvi.data.simulate_nb_mixture(n=1500, p=100, k=N_CLUSTERS, seed=3)
    del adata.layers["counts"]
    rng = np.random.default_rng(0)
    adata.obs["batch"] = rng.choice(["a", "b"], size=adata.n_obs)
    return adata


def _fit(adata: AnnData) -> MixtureVI:
    MixtureVI.setup_anndata(adata, batch_key="batch")
    model = MixtureVI(adata, n_clusters=N_CLUSTERS)
    model.train(method="em", init="kmeans", max_epochs=40, seed=0, progress_bar=False)
    return model


def _parameters(model: MixtureVI) -> dict[str, np.ndarray]:
    module = model.module
    return {
        "means": torch.exp(module.log_mu).detach().numpy(),
        "dispersions": torch.exp(-module.log_theta).detach().numpy(),
        "weights": torch.exp(module.log_weights()).detach().numpy(),
        "batch_effects": module.batch_effect.detach().numpy(),
        "history": model.history_["log_likelihood"]["log_likelihood"].to_numpy(),
    }


def _assert_same_fit(model: MixtureVI, reference: MixtureVI) -> None:
    expected = _parameters(reference)
    for name, values in _parameters(model).items():
        assert values.shape == expected[name].shape, name
        np.testing.assert_allclose(values, expected[name], rtol=1e-6, atol=1e-12, err_msg=name)


def test_dask_counts_fit_on_a_cluster_as_in_memory(cells, client, small_chunks, monkeypatch):
    # principal axes from 500 cells, so that the start projects every cell as dask tasks
    monkeypatch.setattr(_initial_memberships, "_PCA_CELLS", 500)
    reference = _fit(cells.copy())
    lazy = cells.copy()
    lazy.X = da.from_array(cells.X, chunks=(500, -1))
    with get_task_stream(client) as tasks:
        model = _fit(lazy)
    keys = [task["key"] for task in tasks.data if isinstance(task["key"], tuple)]
    passes = Counter(key[0] for key in keys if "block_pass" in key[0])  # tasks per pass
    assert len(passes) > len(model.history_["log_likelihood"])
    assert set(passes.values()) == {3}  # a task per block of 500 cells
    _assert_same_fit(model, reference)
    assert isinstance(lazy.X, da.Array)  # the user's matrix stays lazy
    truth = cells.obs["cluster"]
    assert clustering_scores(truth, model.get_cluster_assignments())["ari"] > 0.95


def test_backed_counts_fit_as_in_memory_and_leave_the_file_as_it_was(cells, small_chunks, tmp_path):
    path = tmp_path / "cells.h5ad"
    cells.write_h5ad(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    reference = _fit(cells.copy())
    backed = read_h5ad(path, backed="r")
    model = _fit(backed)
    _assert_same_fit(model, reference)
    np.testing.assert_allclose(
        model.get_cluster_probabilities().to_numpy(),
        reference.get_cluster_probabilities().to_numpy(),
        atol=1e-6,
    )
    backed.file.close()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest


def test_lazy_counts_that_are_not_integers_are_refused(cells):
    values = sp.csr_matrix(cells.X, dtype=np.float32, copy=True)
    values.data[-1] += 0.5
    lazy = cells.copy()
    lazy.X = da.from_array(values, chunks=(500, -1))
    with pytest.raises(ValueError, match="non-integer"):
        MixtureVI.setup_anndata(lazy)

import anndata
import anndata.experimental
import dask.array
import numpy as np
import pytest
import scipy.sparse as sp
import scvi
import torch
from scvi import REGISTRY_KEYS
from scvi.dataloaders import DataSplitter

from lucidvi.model import LinearVI
from lucidvi.train import ArrayBatchLoader, ArrayDataSplitter


def test_loader_visits_every_cell_once_per_epoch():
    x = sp.random(50, 8, density=0.3, format="csr", random_state=0, dtype=np.float32)
    labels = np.arange(50).reshape(-1, 1)
    loader = ArrayBatchLoader(
        {"X": x, "labels": labels}, np.arange(50), batch_size=16, shuffle=True, seed=0
    )
    assert len(loader) == 4
    seen = []
    for batch in loader:
        assert batch["X"].dtype == torch.float32 and batch["labels"].dtype == torch.int64
        rows = batch["labels"][:, 0].numpy()
        np.testing.assert_array_equal(batch["X"].numpy(), x[rows].toarray())
        seen.extend(rows)
    assert sorted(seen) == list(range(50))
    assert len(ArrayBatchLoader({"X": x}, np.arange(50), 16, drop_last=True)) == 3


def test_splitter_keeps_scvi_split(small_adata):
    scvi.settings.seed = 0  # both splitters draw their split from it; None draws at random
    adata = small_adata.copy()
    LinearVI.setup_anndata(
        adata, layer="counts", batch_key="batch", continuous_covariate_keys=["percent_mito"]
    )
    manager = LinearVI(adata).adata_manager
    ours, theirs = ArrayDataSplitter(manager), DataSplitter(manager)
    ours.setup()
    theirs.setup()
    np.testing.assert_array_equal(ours.train_idx, theirs.train_idx)
    np.testing.assert_array_equal(ours.val_idx, theirs.val_idx)
    batch = next(iter(ours.val_dataloader()))
    reference = next(iter(theirs.val_dataloader()))
    assert batch.keys() == reference.keys()
    for key in batch:
        torch.testing.assert_close(batch[key], reference[key], check_dtype=True)
    assert batch[REGISTRY_KEYS.CONT_COVS_KEY].shape == (len(batch["X"]), 1)


@pytest.mark.parametrize("shuffle", [True, False])
def test_processes_get_disjoint_parts(shuffle):
    """Training parts are equal (same steps in every process); evaluation parts cover all."""
    x = np.arange(101, dtype=np.float32).reshape(-1, 1)
    parts = [
        np.concatenate(
            [
                batch["X"][:, 0].numpy()
                for batch in ArrayBatchLoader(
                    {"X": x}, np.arange(101), 8, shuffle=shuffle, seed=3, rank=rank, world_size=2
                )
            ]
        )
        for rank in (0, 1)
    ]
    assert not np.intersect1d(*parts).size
    if shuffle:
        assert len(parts[0]) == len(parts[1]) == 50
    else:
        np.testing.assert_array_equal(np.concatenate(parts), np.arange(101))


def test_splitter_gives_each_process_its_part(small_adata):
    adata = small_adata.copy()
    LinearVI.setup_anndata(adata, layer="counts")
    splitter = ArrayDataSplitter(LinearVI(adata).adata_manager, distributed_sampler=True)
    splitter.setup()
    loaders = []
    for rank in (0, 1):
        splitter.trainer = type("Trainer", (), {"world_size": 2, "global_rank": rank})()
        loaders.append(splitter.train_dataloader())
    assert [(loader.rank, loader.world_size) for loader in loaders] == [(0, 2), (1, 2)]
    assert len(loaders[0]) == len(loaders[1])


def test_sparse_and_densified_counts_give_the_same_minibatches(small_adata):
    scvi.settings.seed = 0  # both loaders shuffle with it; None shuffles each at random
    adata = small_adata.copy()
    LinearVI.setup_anndata(adata, layer="counts")
    manager = LinearVI(adata).adata_manager
    dense, sparse = (
        ArrayDataSplitter(manager),
        ArrayDataSplitter(manager, dense_limit_bytes=0),
    )
    assert isinstance(dense.arrays["X"], np.ndarray) and sp.issparse(sparse.arrays["X"])
    dense.setup()
    sparse.setup()
    for a, b in zip(dense.train_dataloader(), sparse.train_dataloader(), strict=True):
        torch.testing.assert_close(a["X"], b["X"])


@pytest.fixture(scope="module")
def counts_on_disk(tmp_path_factory, small_adata):
    """The small data set's counts written as h5ad (for backed reading) and zarr (for lazy)."""
    folder = tmp_path_factory.mktemp("on_disk")
    adata = small_adata.copy()
    adata.X = sp.csr_matrix(adata.layers["counts"])
    del adata.layers["counts"]
    adata.write_h5ad(folder / "counts.h5ad")
    adata.write_zarr(folder / "counts.zarr")
    return adata, folder


def _on_disk(folder, how):
    if how == "backed":
        return anndata.read_h5ad(folder / "counts.h5ad", backed="r")
    adata = anndata.experimental.read_lazy(folder / "counts.zarr")
    adata.obs = adata.obs.to_memory()
    return adata


@pytest.mark.parametrize("how", ["backed", "lazy"])
def test_counts_on_disk_give_the_rows_of_each_minibatch(counts_on_disk, how):
    adata, folder = counts_on_disk
    matrix = _on_disk(folder, how).X
    rows = np.random.default_rng(0).permutation(adata.n_obs)[:150]
    cells = np.arange(adata.n_obs, dtype=np.float32).reshape(-1, 1)
    for shuffle in (True, False):
        loader = ArrayBatchLoader(
            {"X": matrix, "cell": cells}, rows, 32, shuffle=shuffle, seed=0, block_cells=64
        )
        order = []
        for batch in loader:
            at = batch["cell"][:, 0].numpy().astype(int)
            np.testing.assert_array_equal(batch["X"].numpy(), adata.X[at].toarray())
            order.extend(at)
        assert sorted(order) == sorted(rows)
        if not shuffle:  # evaluation passes keep the order asked for
            assert order == list(rows)


@pytest.mark.parametrize("how", ["backed", "lazy"])
def test_linear_vi_trains_from_disk_without_writing(counts_on_disk, how):
    adata, folder = counts_on_disk
    before = (folder / "counts.h5ad").read_bytes()
    on_disk = _on_disk(folder, how)
    LinearVI.setup_anndata(on_disk)
    model = LinearVI(on_disk, n_latent=3)
    model.train(max_epochs=2, batch_size=64, enable_progress_bar=False)
    latent = model.get_latent_representation()
    assert latent.shape == (adata.n_obs, 3) and np.isfinite(latent).all()
    assert (folder / "counts.h5ad").read_bytes() == before


def test_lazy_counts_with_fractions_are_refused(counts_on_disk):
    adata, _ = counts_on_disk
    lazy = adata.copy()
    lazy.X = dask.array.from_array(adata.X.astype(np.float32) * 0.5, chunks=(100, -1))
    with pytest.raises(ValueError, match="non-integer"):
        LinearVI.setup_anndata(lazy)

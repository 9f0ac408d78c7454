import numpy as np
import pytest
import scipy.sparse as sp
import scvi
import torch
from scvi import REGISTRY_KEYS
from scvi.dataloaders import DataSplitter

from lucidvi.model import LinearVI
from lucidvi.train import InMemoryBatchLoader, InMemoryDataSplitter


def test_loader_visits_every_cell_once_per_epoch():
    x = sp.random(50, 8, density=0.3, format="csr", random_state=0, dtype=np.float32)
    labels = np.arange(50).reshape(-1, 1)
    loader = InMemoryBatchLoader(
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
    assert len(InMemoryBatchLoader({"X": x}, np.arange(50), 16, drop_last=True)) == 3


def test_splitter_keeps_scvi_split(small_adata):
    scvi.settings.seed = 0  # both splitters draw their split from it; None draws at random
    adata = small_adata.copy()
    LinearVI.setup_anndata(
        adata, layer="counts", batch_key="batch", continuous_covariate_keys=["percent_mito"]
    )
    manager = LinearVI(adata).adata_manager
    ours, theirs = InMemoryDataSplitter(manager), DataSplitter(manager)
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


def test_distributed_training_is_refused_clearly(small_adata):
    adata = small_adata.copy()
    LinearVI.setup_anndata(adata, layer="counts")
    manager = LinearVI(adata).adata_manager
    with pytest.raises(ValueError, match="distributed"):
        InMemoryDataSplitter(manager, distributed_sampler=True)


@pytest.mark.parametrize("world_size", [1, 2])
def test_several_processes_without_sharding_are_refused(small_adata, world_size):
    """devices=2 without a strategy runs Lightning's DDP: each rank would see every cell."""
    adata = small_adata.copy()
    LinearVI.setup_anndata(adata, layer="counts")
    splitter = InMemoryDataSplitter(LinearVI(adata).adata_manager, train_size=0.9)
    splitter.setup()
    splitter.trainer = type("Trainer", (), {"world_size": world_size})()
    if world_size == 1:
        assert len(splitter.train_dataloader()) > 0
    else:
        with pytest.raises(RuntimeError, match="2 processes"):
            splitter.train_dataloader()


def test_sparse_and_densified_counts_give_the_same_minibatches(small_adata):
    scvi.settings.seed = 0  # both loaders shuffle with it; None shuffles each at random
    adata = small_adata.copy()
    LinearVI.setup_anndata(adata, layer="counts")
    manager = LinearVI(adata).adata_manager
    dense, sparse = (
        InMemoryDataSplitter(manager),
        InMemoryDataSplitter(manager, dense_limit_bytes=0),
    )
    assert isinstance(dense.arrays["X"], np.ndarray) and sp.issparse(sparse.arrays["X"])
    dense.setup()
    sparse.setup()
    for a, b in zip(dense.train_dataloader(), sparse.train_dataloader(), strict=True):
        torch.testing.assert_close(a["X"], b["X"])

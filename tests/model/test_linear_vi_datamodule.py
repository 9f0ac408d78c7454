"""LinearVI trained from a scvi-tools data module (``registry=``, ``train(datamodule=...)``)."""

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import scvi
import torch
from lightning.pytorch import LightningDataModule

import lucidvi
from lucidvi.train import ArrayDataSplitter


def test_registry_of_a_data_module_builds_the_model_it_trains(trained_model):
    # the covariates, batches and genes come from the registry alone
    model = lucidvi.model.LinearVI(registry=trained_model.registry_, n_latent=3)
    assert model.adata is None
    assert model.module.state_dict().keys() == trained_model.module.state_dict().keys()
    datamodule = ArrayDataSplitter(trained_model.adata_manager, batch_size=64)
    model.train(max_epochs=2, datamodule=datamodule, enable_progress_bar=False)
    assert np.isfinite(model.history_["elbo_train"].to_numpy(dtype=float)).all()
    pd.testing.assert_index_equal(
        model.get_loadings().index, pd.Index(trained_model.adata.var_names.to_list())
    )


def test_neither_data_nor_registry_is_refused():
    with pytest.raises(ValueError, match="registry"):
        lucidvi.model.LinearVI()


class _OneLoader(LightningDataModule):
    """A data module whose training loader is a plain list of minibatches (cannot be split)."""

    def __init__(self, batches):
        super().__init__()
        self.batches = batches

    def train_dataloader(self):
        return self.batches


def test_several_processes_on_a_loader_that_cannot_split_are_refused(trained_model):
    model = lucidvi.model.LinearVI(registry=trained_model.registry_, n_latent=3)
    loader = _OneLoader([{"X": torch.ones(4, trained_model.adata.n_vars)}])
    with pytest.raises(ValueError, match="same cells"):
        model.train(
            max_epochs=1, datamodule=loader, accelerator="cpu", devices=2, strategy="ddp_spawn"
        )


@pytest.mark.skipif(
    not hasattr(scvi.dataloaders, "AnnbatchDataModule"),
    reason="AnnbatchDataModule is new in scvi-tools 1.5 (the Python 3.12 stack); annbatch "
    "needs Python >= 3.12",
)
def test_trains_from_sharded_zarr_through_annbatch(tmp_path):
    import zarr
    from annbatch import Loader

    rng = np.random.default_rng(0)
    n_cells, n_genes = 1000, 40
    counts = sp.csr_matrix(rng.poisson(1.0, size=(n_cells, n_genes)).astype(np.float32))
    obs = pd.DataFrame(
        {"sample": rng.choice(["s1", "s2"], n_cells)}, index=[f"c{i}" for i in range(n_cells)]
    )
    genes = [f"g{j}" for j in range(n_genes)]
    ad.AnnData(counts, obs=obs, var=pd.DataFrame(index=genes)).write_zarr(tmp_path / "x.zarr")
    loader = Loader(
        batch_size=128, chunk_size=64, preload_nchunks=8, preload_to_gpu=False, to="torch"
    )
    loader.add_dataset(ad.io.sparse_dataset(zarr.open(tmp_path / "x.zarr")["X"]), obs=obs)
    datamodule = scvi.dataloaders.AnnbatchDataModule(
        loader, batch_key="sample", var_names=genes, preload_to_gpu=False, chunk_size=64,
        preload_nchunks=8,
    )  # fmt: skip
    model = lucidvi.model.LinearVI(registry=datamodule.registry, n_latent=4)
    assert model.summary_stats.n_batch == 2
    model.train(max_epochs=3, datamodule=datamodule, enable_progress_bar=False)
    elbo = model.history_["elbo_train"]["elbo_train"].to_numpy()
    assert elbo[-1] < elbo[0]  # it learns from the minibatches annbatch reads
    assert model.get_latent_representation(dataloader=datamodule).shape == (n_cells, 4)
    assert model.get_loadings().index.to_list() == genes
    with pytest.raises(ValueError, match="same cells"):
        model.train(
            max_epochs=1, datamodule=datamodule, accelerator="cpu", devices=2, strategy="ddp"
        )

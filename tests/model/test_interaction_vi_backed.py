"""InteractionVI from counts on disk (AnnData opened backed="r") starts as from memory."""

import anndata as ad
import numpy as np
import pytest
import scvi
import torch

import lucidvi
from lucidvi.model import InteractionVI
from lucidvi.train._niche_calibration import _scaled_log_likelihoods


@pytest.fixture(scope="module")
def counts_file(tmp_path_factory):
    spatial = lucidvi.data.simulate_spatial_niches(
        lucidvi.data.cbmc(), "cell_type", [("B", "CD14+ Mono", 15.0)], n_cells=800, seed=2
    )
    genes = slice(0, 150)  # fewer genes: a faster test
    adata = ad.AnnData(
        spatial.layers["counts"][:, genes],
        obs=spatial.obs[["cell_type"]],
        var=spatial.var.iloc[genes, :0],
        obsm={"spatial": spatial.obsm["spatial"]},
    )
    adata = adata[adata.X.sum(1).A1 > 0].copy()  # every cell with counts
    path = tmp_path_factory.mktemp("backed") / "spatial.h5ad"
    adata.write_h5ad(path)
    return path


def _model(adata: ad.AnnData) -> InteractionVI:
    scvi.settings.seed = 0
    InteractionVI.setup_anndata(adata, labels_key="cell_type", n_neighbors=10)
    return InteractionVI(adata, n_heads=2, n_latent=8)


def test_backed_counts_start_train_and_calibrate(counts_file):
    in_memory = _model(ad.read_h5ad(counts_file))
    backed = _model(ad.read_h5ad(counts_file, backed="r"))
    assert not isinstance(backed.adata.X, np.ndarray)  # the counts stay on disk
    for name in ("label_profile.weight", "log_scale", "sender_center", "sender_axes"):
        torch.testing.assert_close(
            backed.module.state_dict()[name], in_memory.module.state_dict()[name], msg=name
        )
    backed.train(max_epochs=1, batch_size=128, enable_progress_bar=False)
    table = backed.get_niche_calibration()
    assert table["cell_type"].tolist() == backed.labels
    assert (table["status"] == "ok").all() and backed.refit_failures_ == []
    assert table["n_validation_cells"].sum() == len(backed.validation_indices)
    assert np.isfinite(backed.module.label_profile.weight.detach().numpy()).all()


def test_held_out_likelihoods_from_disk_follow_the_cells_asked_for(counts_file):
    backed = _model(ad.read_h5ad(counts_file, backed="r"))
    in_memory = _model(ad.read_h5ad(counts_file))
    in_memory.module.load_state_dict(backed.module.state_dict())
    cells = np.random.default_rng(0).permutation(backed.adata.n_obs)[:300]
    # from disk the cells are read in the neighbour graph's order, then put back in place
    from_disk = _scaled_log_likelihoods(backed.module, backed.adata_manager, cells, 64)
    from_memory = _scaled_log_likelihoods(in_memory.module, in_memory.adata_manager, cells, 64)
    np.testing.assert_array_equal(from_disk[1], from_memory[1])
    np.testing.assert_allclose(from_disk[0], from_memory[0], rtol=1e-5, atol=1e-4)

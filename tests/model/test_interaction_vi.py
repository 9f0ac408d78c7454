"""InteractionVI: registration, predictions, attention, ablation, saving, bad input."""

import numpy as np
import pytest
import scvi
import torch

import lucidvi
from lucidvi._registration import unregistered_copy
from lucidvi.model import InteractionVI


@pytest.fixture(scope="module")
def spatial():
    return lucidvi.data.simulate_spatial_niches(
        lucidvi.data.cbmc(), "cell_type", [("B", "CD14+ Mono", 15.0)], n_cells=1500, seed=2
    )


@pytest.fixture(scope="module")
def model(spatial):
    """A model whose every type keeps its niche (no calibration), for the mechanics."""
    scvi.settings.seed = 0
    adata = spatial.copy()
    InteractionVI.setup_anndata(adata, labels_key="cell_type", layer="counts", n_neighbors=10)
    model = InteractionVI(adata, n_heads=4, n_latent=16)
    model.train(max_epochs=3, batch_size=128, enable_progress_bar=False, calibrate=False)
    return model


@pytest.fixture(scope="module")
def calibrated(spatial):
    scvi.settings.seed = 0
    adata = _fresh(spatial)
    InteractionVI.setup_anndata(adata, labels_key="cell_type", layer="counts", n_neighbors=10)
    model = InteractionVI(adata, n_heads=4, n_latent=16)
    model.train(max_epochs=3, batch_size=128, enable_progress_bar=False)
    return model


def _fresh(spatial):
    return unregistered_copy(spatial)


def test_setup_adds_only_namespaced_keys(spatial):
    adata = _fresh(spatial)
    before_obsm, before_uns = set(adata.obsm), set(adata.uns)
    InteractionVI.setup_anndata(adata, labels_key="cell_type", layer="counts", n_neighbors=10)
    assert set(adata.obsm) - before_obsm == {"lucidvi_neighbor_index", "lucidvi_neighbor_distance"}
    assert set(adata.uns) - before_uns == {"lucidvi_neighbors", "_scvi_uuid", "_scvi_manager_uuid"}
    assert adata.uns["lucidvi_neighbors"]["n_neighbors"] == 10
    assert adata.obsm["lucidvi_neighbor_index"].shape == (adata.n_obs, 10)


def test_predictions_split_into_intrinsic_and_niche(model):
    cells = np.arange(50)
    total = model.get_predictions(indices=cells)
    intrinsic = model.get_predictions(indices=cells, component="intrinsic")
    niche = model.get_predictions(indices=cells, component="niche")
    assert list(total.index) == list(model.adata.obs_names[cells])
    assert list(total.columns) == list(model.adata.var_names)
    np.testing.assert_allclose(total.to_numpy(), (intrinsic + niche).to_numpy(), rtol=1e-5)
    # expected counts add up to each cell's observed library size
    library = np.asarray(model.adata.layers["counts"][cells].sum(1)).ravel()
    np.testing.assert_allclose(total.sum(1).to_numpy(), library, rtol=1e-4)


def test_attention_is_a_distribution_over_registered_neighbours(model):
    table = model.get_attention(indices=np.arange(20))
    sums = table.groupby(["cell", "head"])["weight"].sum()
    np.testing.assert_allclose(sums.to_numpy(), 1.0, rtol=1e-5)
    neighbours = model.adata.obsm["lucidvi_neighbor_index"]
    distances = model.adata.obsm["lucidvi_neighbor_distance"]
    real = table[table["neighbor_index"] >= 0]
    for row in real.sample(30, random_state=0).itertuples():
        slot = list(neighbours[row.cell_index]).index(row.neighbor_index)
        assert row.distance == pytest.approx(distances[row.cell_index, slot])
        assert row.neighbor_type == model.adata.obs["cell_type"].iloc[row.neighbor_index]
    assert table[table["neighbor_index"] < 0]["neighbor"].isna().all()


def test_masking_every_sender_leaves_the_intrinsic_part(model):
    cells = np.arange(40)
    intrinsic = model.get_predictions(indices=cells, component="intrinsic").to_numpy()
    by_type = model.get_predictions(indices=cells, mask_sender_types=model.labels).to_numpy()
    by_index = model.get_predictions(
        indices=cells, mask_senders=np.arange(model.adata.n_obs)
    ).to_numpy()
    np.testing.assert_allclose(by_type, intrinsic, rtol=1e-5)  # all weight on the null slot
    np.testing.assert_allclose(by_index, intrinsic, rtol=1e-5)
    no_heads = model.get_predictions(indices=cells, heads=[]).to_numpy()
    np.testing.assert_allclose(no_heads, intrinsic, rtol=1e-5)
    every_head = model.get_predictions(indices=cells, heads=range(4)).to_numpy()
    np.testing.assert_allclose(every_head, model.get_predictions(indices=cells).to_numpy())


def test_niche_never_sees_the_receivers_own_expression(model, spatial):
    changed = _fresh(spatial)
    InteractionVI.setup_anndata(changed, labels_key="cell_type", layer="counts", n_neighbors=10)
    cell = 7
    row = changed.layers["counts"][cell].toarray()
    changed.layers["counts"][cell] = row[:, ::-1]  # another profile (not just a rescaling)
    original = model.get_niche_embedding(indices=[cell])
    perturbed = model.get_niche_embedding(changed, indices=[cell])
    np.testing.assert_allclose(perturbed, original, rtol=1e-5, atol=1e-6)
    neighbour = int(model.adata.obsm["lucidvi_neighbor_index"][cell, 0])
    senders_of = model.adata.obsm["lucidvi_neighbor_index"]
    receiver = int(np.flatnonzero((senders_of == cell).any(axis=1))[0])
    assert neighbour >= 0
    assert not np.allclose(
        model.get_niche_embedding(changed, indices=[receiver]),
        model.get_niche_embedding(indices=[receiver]),
    )


def test_save_and_load_give_the_same_predictions(model, tmp_path):
    model.save(tmp_path / "model", save_anndata=True)
    loaded = InteractionVI.load(tmp_path / "model")
    cells = np.arange(20)
    np.testing.assert_allclose(
        loaded.get_predictions(indices=cells).to_numpy(),
        model.get_predictions(indices=cells).to_numpy(),
        rtol=1e-5,
    )


def test_calibration_table_and_types_without_niche(calibrated):
    table = calibrated.get_niche_calibration()
    columns = "cell_type n_validation_cells niche_scale gain_per_cell p_value kept status"
    assert list(table.columns) == columns.split()
    assert (table["status"] == "ok").all() and calibrated.refit_failures_ == []
    assert table["cell_type"].tolist() == calibrated.labels
    assert table["n_validation_cells"].sum() == len(calibrated.validation_indices)
    assert table["niche_scale"].between(0, 1).all()
    assert (table["kept"] == (table["niche_scale"] > 0)).all()
    assert not table.loc[table["kept"], "p_value"].ge(0.05).any()
    assert table.loc[table["n_validation_cells"] < 3, "p_value"].isna().all()
    off = set(table.loc[~table["kept"], "cell_type"])
    assert off  # three epochs on 1,500 cells: most types show no held-out gain
    attention = calibrated.get_attention(indices=np.arange(200))
    null = attention[attention["neighbor_index"] < 0]
    turned_off = null["cell_type"].isin(off)
    np.testing.assert_allclose(null.loc[turned_off, "weight"], 1.0)
    cells = np.flatnonzero(calibrated.adata.obs["cell_type"].isin(off))[:30]
    niche = calibrated.get_predictions(indices=cells, component="niche").to_numpy()
    np.testing.assert_allclose(niche, 0.0, atol=1e-4)


def test_calibration_is_undone_by_training_again(calibrated):
    module = calibrated.module
    profile = module.label_profile.weight.detach().clone() - module.niche_center
    calibrated.train(max_epochs=0, enable_progress_bar=False, calibrate=False)
    assert (module.niche_scale == 1).all() and (module.niche_center == 0).all()
    torch.testing.assert_close(module.label_profile.weight.detach(), profile)
    with pytest.raises(ValueError, match="calibrate=True"):
        calibrated.get_niche_calibration()


def test_calibration_needs_validation_cells(spatial, caplog):
    adata = _fresh(spatial)
    InteractionVI.setup_anndata(adata, labels_key="cell_type", layer="counts", n_neighbors=5)
    model = InteractionVI(adata, n_heads=2, n_latent=4)
    with pytest.raises(ValueError, match="niche_alpha"):
        model.train(max_epochs=1, niche_alpha=1.5)
    model.train(max_epochs=1, train_size=1.0, enable_progress_bar=False)
    assert "not calibrated" in caplog.text
    assert (model.module.niche_scale == 1).all()
    with pytest.raises(ValueError, match="train_size must lie in"):
        model.train(max_epochs=1, train_size=0.0)


def test_train_size_none_means_the_default(spatial):
    """scvi-tools reads train_size=None as its default; it raised a TypeError here."""
    adata = _fresh(spatial)
    InteractionVI.setup_anndata(adata, labels_key="cell_type", layer="counts", n_neighbors=5)
    model = InteractionVI(adata, n_heads=2, n_latent=4)
    model.train(max_epochs=1, train_size=None, calibrate=False, enable_progress_bar=False)
    n_validation = len(model.validation_indices)
    assert n_validation == pytest.approx(0.2 * adata.n_obs, abs=1)


def test_baseline_is_refitted_to_the_maximum_likelihood():
    """Gaussian: each type's mean and standard deviation over its training cells, exactly."""
    adata = lucidvi.data.cycif()[:2000].copy()
    InteractionVI.setup_anndata(adata, labels_key="cell_type", n_neighbors=5)
    baseline = InteractionVI(adata, n_heads=0, likelihood="gaussian")
    baseline.train(max_epochs=1, enable_progress_bar=False)
    module = baseline.module.cpu()
    train = np.asarray(baseline.train_indices)
    codes = adata.obs["cell_type"].cat.codes.to_numpy()[train]
    values = np.asarray(adata.X)[train]
    offset = module.batch_offset.weight[0].detach().numpy()
    for code in np.unique(codes):
        rows = values[codes == code]
        profile = module.label_profile.weight[code].detach().numpy() + offset
        np.testing.assert_allclose(profile, rows.mean(0), rtol=1e-3, atol=1e-3)
        sigma = np.exp(module.log_scale[code].detach().numpy())
        np.testing.assert_allclose(sigma, rows.std(0), rtol=1e-3, atol=1e-3)


def test_baseline_without_heads(spatial):
    adata = _fresh(spatial)
    InteractionVI.setup_anndata(adata, labels_key="cell_type", layer="counts", n_neighbors=5)
    baseline = InteractionVI(adata, n_heads=0)
    baseline.train(max_epochs=1, enable_progress_bar=False)
    assert np.allclose(baseline.get_predictions(indices=[0, 1], component="niche"), 0.0)
    with pytest.raises(ValueError, match="no attention heads"):
        baseline.get_attention()


def test_gaussian_likelihood_on_real_cycif():
    adata = lucidvi.data.cycif()[:2000].copy()
    InteractionVI.setup_anndata(adata, labels_key="cell_type", n_neighbors=10)
    model = InteractionVI(adata, n_heads=2, n_latent=8, likelihood="gaussian")
    model.train(max_epochs=2, enable_progress_bar=False)
    predictions = model.get_predictions(indices=np.arange(100))
    assert predictions.shape == (100, 9) and np.isfinite(predictions.to_numpy()).all()
    assert np.isfinite(model.get_log_likelihood(indices=np.arange(100))).all()


def test_bad_input_says_what_to_fix(spatial, model):
    adata = _fresh(spatial)
    with pytest.raises(ValueError, match="sample_key"):
        InteractionVI.setup_anndata(adata, labels_key="cell_type", sample_key="section")
    adata.obsm["spatial"][0, 1] = np.nan
    with pytest.raises(ValueError, match="missing"):
        InteractionVI.setup_anndata(adata, labels_key="cell_type")
    small = _fresh(spatial)[:20].copy()
    small.obs["cell_type"] = np.tile(["a", "b"], 10)
    with pytest.raises(ValueError, match="n_neighbors"):
        InteractionVI.setup_anndata(small, labels_key="cell_type", n_neighbors=30)
    cycif = lucidvi.data.cycif()[:2000].copy()
    InteractionVI.setup_anndata(cycif, labels_key="cell_type", n_neighbors=5)
    with pytest.raises(ValueError, match="non-integer"):
        InteractionVI(cycif, likelihood="nb")
    with pytest.raises(ValueError, match="heads"):
        model.get_predictions(indices=[0], heads=[9])
    with pytest.raises(ValueError, match="Unknown cell types"):
        model.get_predictions(indices=[0], mask_sender_types=["Neuron"])

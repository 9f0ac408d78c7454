import numpy as np
import pandas as pd
import pytest
import scvi
import torch
from scvi import REGISTRY_KEYS

import lucidvi
from lucidvi.model import LinearVI


def test_loadings_are_labelled_genes_by_factors(trained_model):
    loadings = trained_model.get_loadings()
    assert loadings.shape == (60, 3)
    assert list(loadings.columns) == ["Z_0", "Z_1", "Z_2"]
    assert loadings.index.equals(trained_model.adata.var_names)


def test_decoder_logits_equal_latent_times_loadings_plus_offset(trained_model):
    module = trained_model.module.eval()
    batch = next(iter(trained_model._make_data_loader(trained_model.adata, batch_size=50)))
    tensors = {key: value.to(trained_model.device) for key, value in batch.items()}
    with torch.no_grad():
        inference = module.inference(tensors[REGISTRY_KEYS.X_KEY])
        generative = module.generative(
            inference["z"],
            torch.zeros_like(inference["library"]),
            tensors[REGISTRY_KEYS.BATCH_KEY],
            tensors[REGISTRY_KEYS.CAT_COVS_KEY],
            tensors[REGISTRY_KEYS.CONT_COVS_KEY],
        )
        categories = module._decoder_categories(
            tensors[REGISTRY_KEYS.BATCH_KEY], tensors[REGISTRY_KEYS.CAT_COVS_KEY]
        )
        covariates = module.decoder.covariate_term(categories, tensors[REGISTRY_KEYS.CONT_COVS_KEY])
    _, scale, shift = module.decoder.affine()
    loadings = torch.tensor(trained_model.get_loadings().to_numpy(), device=trained_model.device)
    logits = inference["z"] @ loadings.T + scale * covariates + shift
    # log_mu at zero log-library is log_softmax(logits)
    torch.testing.assert_close(
        generative["log_mu"], torch.log_softmax(logits, -1), rtol=1e-4, atol=1e-4
    )


def test_get_methods_return_labelled_outputs(trained_model):
    adata = trained_model.adata
    latent = trained_model.get_latent_representation()
    assert latent.shape == (adata.n_obs, 3) and np.isfinite(latent).all()
    expression = trained_model.get_normalized_expression(n_samples=2)
    assert isinstance(expression, pd.DataFrame) and expression.shape == adata.shape
    np.testing.assert_allclose(expression.sum(1), 1.0, rtol=1e-4)
    assert np.isfinite(float(trained_model.get_elbo()))
    assert np.isfinite(float(trained_model.get_reconstruction_error()["reconstruction_loss"]))
    marginal = trained_model.get_marginal_ll(n_mc_samples=3)
    assert np.isfinite(float(marginal))
    history = trained_model.history
    for key in ("train_loss", "elbo_train", "reconstruction_loss_train", "kl_local_train"):
        assert key in history and len(history[key]) == 5


def test_differential_expression_between_labels(trained_model):
    de = trained_model.differential_expression(
        groupby="cell_type", group1="A", mode="change", batch_size=128
    )
    assert {"proba_de", "lfc_mean"} <= set(de.columns)
    assert set(de.index) == set(trained_model.adata.var_names)


def test_save_load_round_trip_and_gene_mismatch(trained_model, tmp_path):
    trained_model.save(tmp_path / "model", save_anndata=True)
    adata = trained_model.adata.copy()
    loaded = LinearVI.load(tmp_path / "model", adata=adata)
    np.testing.assert_allclose(loaded.get_loadings(), trained_model.get_loadings())
    other_genes = adata.copy()
    other_genes.var_names = [f"other_{g}" for g in other_genes.var_names]
    with pytest.raises(ValueError, match="genes"):
        LinearVI.load(tmp_path / "model", adata=other_genes)
    with pytest.raises(ValueError, match="genes"):
        LinearVI.load(tmp_path / "model", adata=adata[:, :-1].copy())


@pytest.mark.parametrize(
    ("options", "history_key"),
    [
        ({"gene_likelihood": "zinb"}, "train_loss"),
        ({"gene_likelihood": "poisson", "latent_distribution": "ln"}, "train_loss"),
        ({"use_batch_norm": False, "bias": True, "n_layers": 2}, "train_loss"),
    ],
)
def test_model_options_train(small_adata, options, history_key):
    adata = small_adata.copy()
    LinearVI.setup_anndata(adata, layer="counts", batch_key="batch")
    model = LinearVI(adata, n_latent=2, **options)
    model.train(max_epochs=2, batch_size=100, enable_progress_bar=False)
    assert np.isfinite(model.history[history_key].to_numpy(dtype=float)).all()
    assert np.isfinite(model.get_latent_representation()).all()
    assert np.isfinite(model.get_loadings().to_numpy()).all()


def test_validation_metrics_and_early_stopping(small_adata):
    adata = small_adata.copy()
    LinearVI.setup_anndata(adata, layer="counts")
    model = LinearVI(adata, n_latent=2)
    model.train(
        max_epochs=3,
        batch_size=100,
        check_val_every_n_epoch=1,
        early_stopping=True,
        enable_progress_bar=False,
    )
    assert "elbo_validation" in model.history
    assert len(model.history["elbo_validation"]) == 3


def test_user_anndata_only_gains_registry_keys(small_adata):
    adata = small_adata.copy()
    before = adata.copy()
    LinearVI.setup_anndata(
        adata, layer="counts", batch_key="batch", categorical_covariate_keys=["donor"]
    )
    model = LinearVI(adata, n_latent=2)
    model.train(max_epochs=1, enable_progress_bar=False)
    model.get_latent_representation()
    model.get_normalized_expression()
    assert set(adata.obs.columns) - set(before.obs.columns) == {"_scvi_batch", "_scvi_labels"}
    assert set(adata.uns) - set(before.uns) == {"_scvi_uuid", "_scvi_manager_uuid"}
    assert set(adata.obsm) - set(before.obsm) == {"_scvi_extra_categorical_covs"}
    assert set(adata.layers) == set(before.layers) and set(adata.varm) == set(before.varm)
    assert (adata.layers["counts"] != before.layers["counts"]).nnz == 0
    assert (adata.X != before.X).nnz == 0


def test_linear_vi_trains_on_real_pbmc():
    scvi.settings.seed = 0
    adata = lucidvi.data.pbmc68k()
    LinearVI.setup_anndata(adata, layer="counts")
    model = LinearVI(adata, n_latent=5)
    model.train(max_epochs=3, enable_progress_bar=False)
    loadings = model.get_loadings()
    assert loadings.index.equals(adata.var_names) and np.isfinite(loadings.to_numpy()).all()


def test_posterior_predictive_sample_draws_counts(trained_model):
    samples = trained_model.posterior_predictive_sample(n_samples=2, indices=list(range(10)))
    assert samples.shape == (10, trained_model.adata.n_vars, 2)
    values = samples.todense()
    assert (values >= 0).all() and (values == values.round()).all()

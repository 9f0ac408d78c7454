import numpy as np
import pytest

from lucidvi.interpretation import GeneLoadings


def test_regression_and_decoder_paths_agree_on_linearvi(planted_model):
    adata = planted_model.adata
    decoder = GeneLoadings.compute(planted_model)
    regression = GeneLoadings.compute(adata=adata, z_key="X_lv", layer="counts")
    assert decoder.source == "decoder" and regression.source == "regression"
    assert decoder.loadings.shape == (adata.n_vars, 4)
    correlation = np.corrcoef(
        decoder.loadings.to_numpy().ravel(), regression.loadings.to_numpy().ravel()
    )[0, 1]
    assert correlation >= 0.95


def test_regression_on_planted_factors_recovers_the_signs_of_the_blocks(planted):
    result = GeneLoadings.compute(adata=planted, z_key="true_factors", layer="counts")
    truth = planted.varm["true_loadings"]
    in_block = truth != 0
    assert np.all(np.sign(result.loadings.to_numpy()[in_block]) == np.sign(truth[in_block]))
    # Off-block genes: an estimation error of order 1/sqrt(n_cells) ~ 0.026 gene SDs per latent SD.
    assert np.abs(result.loadings.to_numpy()[~in_block]).max() < 6 / np.sqrt(planted.n_obs)


def test_loadings_can_be_stored_in_varm(planted):
    adata = planted.copy()
    result = GeneLoadings.compute(adata=adata, z_key="true_factors", varm_key="loadings")
    np.testing.assert_array_equal(adata.varm["loadings"], result.loadings.to_numpy())


def test_bad_input_gives_clear_errors(planted):
    with pytest.raises(ValueError, match="z_key"):
        GeneLoadings.compute()
    with pytest.raises(ValueError, match="not in adata.obsm"):
        GeneLoadings.compute(adata=planted, z_key="X_missing")
    adata = planted.copy()
    adata.obsm["X_nan"] = adata.obsm["true_factors"].copy()
    adata.obsm["X_nan"][3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        GeneLoadings.compute(adata=adata, z_key="X_nan")

    class NonLinear:
        module = object()

    with pytest.raises(TypeError, match="no linear decoder"):
        GeneLoadings.compute(NonLinear(), adata=planted)

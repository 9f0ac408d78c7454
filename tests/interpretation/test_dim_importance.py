import numpy as np
import pytest
from scipy.stats import spearmanr

from lucidvi.interpretation import DimImportance, GeneLoadings


@pytest.fixture(scope="module")
def planted_loadings(planted):
    return GeneLoadings.compute(adata=planted, z_key="true_factors", layer="counts")


def true_importance(adata):
    """Variance each planted factor puts into the logits: ||W_k||^2 s_k^2."""
    scales = np.asarray(adata.uns["simulation"]["factor_scales"])
    return (adata.varm["true_loadings"] ** 2).sum(0) * scales**2


@pytest.mark.parametrize("mode", ["full", "diag"])
def test_planted_dimensions_are_ranked_by_their_true_importance(planted, planted_loadings, mode):
    result = DimImportance.compute(planted_loadings, planted.obsm["true_factors"], mode=mode)
    rho = spearmanr(result.ratio.to_numpy(), true_importance(planted))[0]
    assert rho >= 0.9
    assert result.ratio.sum() == pytest.approx(1.0)


def test_cutoff_order_and_table(planted, planted_loadings):
    result = DimImportance.compute(
        planted_loadings, planted.obsm["true_factors"], cumulative_cutoff=1.0
    )
    table = result.to_dataframe()
    assert result.n_dims_at_cutoff == 4 and table["selected"].all()
    assert list(table["dim"]) == list(result.order)
    assert np.all(np.diff(table["ratio"]) <= 0)
    assert table["cumulative_ratio"].iloc[-1] == pytest.approx(1.0)
    small = DimImportance.compute(
        planted_loadings, planted.obsm["true_factors"], cumulative_cutoff=0.01
    )
    assert small.n_dims_at_cutoff == 1 and small.selected == result.order[:1]


def test_raw_importance_is_the_variance_of_the_linear_part():
    rng = np.random.default_rng(0)
    effects = rng.normal(size=(20, 2))
    z = rng.normal(size=(400, 2))
    result = DimImportance.compute(effects, z, use_ratio=False, mode="diag")
    expected = (effects**2).sum(0) * z.var(0, ddof=1)
    np.testing.assert_allclose(result.importance.to_numpy(), expected)


def test_mismatched_or_bad_inputs_raise():
    z = np.random.default_rng(1).normal(size=(30, 3))
    with pytest.raises(ValueError, match="dimensions"):
        DimImportance.compute(np.ones((10, 2)), z)
    with pytest.raises(ValueError, match="NaN"):
        DimImportance.compute(np.full((10, 3), np.nan), z)
    with pytest.raises(ValueError, match="cumulative_cutoff"):
        DimImportance.compute(np.ones((10, 3)), z, cumulative_cutoff=1.5)

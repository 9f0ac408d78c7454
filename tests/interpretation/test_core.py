import numpy as np
import pytest
import scipy.sparse as sp

from lucidvi.interpretation._core import (
    dimension_importance,
    n_dims_to_cutoff,
    numerical_rank,
    r2_per_gene,
    regression_effects,
    residualize_columns,
    specificity,
    standardize_effects,
)


def test_regression_effects_recover_exact_linear_effects_from_sparse_input():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(300, 3))
    beta = rng.normal(size=(5, 3))
    expression = z @ beta.T + rng.normal(size=5)  # intercepts, no noise
    np.testing.assert_allclose(regression_effects(expression, z), beta, atol=1e-10)
    shifted = expression - expression.min() + 1.0
    np.testing.assert_allclose(regression_effects(sp.csr_matrix(shifted), z), beta, atol=1e-10)


def test_regression_effects_refuse_dependent_dimensions():
    z = np.random.default_rng(1).normal(size=(50, 2))
    with pytest.raises(ValueError, match="linearly dependent"):
        regression_effects(np.ones((50, 4)), np.column_stack([z, z.sum(1)]))
    assert numerical_rank(np.column_stack([z, z.sum(1)])) == 2


def test_standardized_effects_are_zero_for_constant_genes():
    scaled = standardize_effects(np.ones((2, 2)), np.array([2.0, 1.0]), np.array([4.0, 0.0]))
    np.testing.assert_allclose(scaled, [[0.5, 0.25], [0.0, 0.0]])


def test_full_importance_splits_the_reconstruction_variance_exactly():
    rng = np.random.default_rng(2)
    effects = rng.normal(size=(40, 3))
    z = rng.normal(size=(500, 3)) @ rng.normal(size=(3, 3))  # correlated dimensions
    covariance = np.cov(z, rowvar=False)
    total = np.trace(effects @ covariance @ effects.T)
    assert dimension_importance(effects, covariance, "full").sum() == pytest.approx(total)
    diagonal = np.diag(np.diag(covariance))
    np.testing.assert_allclose(
        dimension_importance(effects, diagonal, "full"),
        dimension_importance(effects, covariance, "diag"),
    )
    with pytest.raises(ValueError, match="mode"):
        dimension_importance(effects, covariance, "both")


def test_n_dims_to_cutoff():
    assert n_dims_to_cutoff(np.array([0.5, 0.3, 0.2]), 0.6) == 2
    assert n_dims_to_cutoff(np.array([0.5, 0.3, 0.2]), 0.5) == 1
    assert n_dims_to_cutoff(np.array([0.5, 0.3, 0.2]), 1.0) == 3


def test_residualized_columns_are_orthogonal_to_the_other_columns():
    loadings = np.random.default_rng(3).normal(size=(30, 3))
    residual = residualize_columns(loadings)
    for k in range(3):
        others = np.delete(loadings, k, axis=1)
        np.testing.assert_allclose(others.T @ residual[:, k], 0.0, atol=1e-10)


def test_specificity_ratio_and_margin():
    loadings = np.array([[2.0, -1.0, 0.5], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    ratio = specificity(loadings, "ratio")
    np.testing.assert_allclose(ratio[0], [2.0, 0.5, 0.25])
    np.testing.assert_allclose(ratio[1], [0.0, 0.0, 0.0])
    assert ratio[2, 0] == np.inf and ratio[2, 1] == 0.0
    np.testing.assert_allclose(specificity(loadings, "margin")[0], [1.0, -1.0, -1.5])


def test_r2_per_gene_on_sparse_input_in_chunks():
    rng = np.random.default_rng(4)
    expression = rng.poisson(1.0, size=(101, 4)).astype(float)
    expression[:, 3] = 2.0  # no variance
    prediction = np.tile(expression.mean(0), (101, 1))
    prediction[:, 0] = expression[:, 0]
    r2 = r2_per_gene(sp.csr_matrix(expression), prediction, chunk_size=16)
    np.testing.assert_allclose(r2, [1.0, 0.0, 0.0, 0.0], atol=1e-12)
    with pytest.raises(ValueError, match="shape"):
        r2_per_gene(expression, prediction[:, :2])

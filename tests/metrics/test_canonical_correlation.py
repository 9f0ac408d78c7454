import numpy as np
import pytest

from lucidvi.metrics import canonical_correlations


def test_invariant_to_invertible_maps_and_detects_unrelated_spaces():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(500, 4))
    mixed = a @ rng.normal(size=(4, 4)) + 3.0
    np.testing.assert_allclose(canonical_correlations(a, mixed), 1.0, atol=1e-10)
    unrelated = rng.normal(size=(500, 4))
    # independent Gaussian columns: canonical correlations of order sqrt(p * q / n)
    assert canonical_correlations(a, unrelated).max() < 0.3


def test_known_correlation():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(20000, 1))
    y = 0.6 * x + 0.8 * rng.normal(size=(20000, 1))
    np.testing.assert_allclose(canonical_correlations(x, y), [0.6], atol=0.02)


def test_errors():
    with pytest.raises(ValueError, match="same number of rows"):
        canonical_correlations(np.ones((5, 2)), np.ones((4, 2)))
    with pytest.raises(ValueError, match="linearly dependent"):
        canonical_correlations(np.ones((5, 2)), np.random.default_rng(0).normal(size=(5, 2)))
    with pytest.raises(ValueError, match="finite"):
        canonical_correlations(np.full((5, 1), np.nan), np.ones((5, 1)))

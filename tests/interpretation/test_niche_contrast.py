"""The affected/unaffected split of receivers and the observed-expression contrast."""

import numpy as np
import pytest
from scipy.stats import ttest_ind

from lucidvi.interpretation._spatial._niche_contrast import (
    affected_receivers,
    observed_contrast,
    otsu_threshold,
)


def test_otsu_separates_two_clusters():
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.normal(0.0, 0.1, 200), rng.normal(1.0, 0.1, 100)])
    cut = otsu_threshold(values)
    assert ((values > cut) == (np.arange(300) >= 200)).all()
    assert otsu_threshold(np.array([0.0, 0.0, 0.0, 1.0])) == 0.5  # cuts between distinct values


def test_receivers_are_split_by_their_projected_change():
    rng = np.random.default_rng(1)
    full = rng.gamma(2.0, 5.0, size=(20, 30))
    direction = rng.normal(size=30)
    exposed = np.arange(20) < 10
    strength = np.r_[np.ones(5), np.full(5, 0.05)]  # five strong, five weak among the exposed
    masked = full[exposed] * np.exp(-strength[:, None] * direction)
    affected = affected_receivers(full, masked, exposed, log_scale=True, pseudo=0.0)
    assert (affected == (np.arange(20) < 5)).all()
    assert affected_receivers(full, full[exposed], exposed, True, 0.0) is None  # no change
    few = np.arange(20) < 2  # two affected receivers are too few for a test
    assert affected_receivers(full, masked[:2], few, True, 0.0) is None


def test_contrast_is_welch_on_log1p_and_the_fold_change_of_means():
    rng = np.random.default_rng(2)
    observed = rng.poisson(5.0, size=(40, 6)).astype(float)
    observed[:, 5] = 3.0  # constant: no evidence either way
    affected = np.arange(40) < 15
    table = observed_contrast(observed, affected, log_scale=True, pseudo=1e-3)
    t, p = ttest_ind(np.log1p(observed[:15, :5]), np.log1p(observed[15:, :5]), equal_var=False)
    np.testing.assert_allclose(table["de_statistic"][:5], t)
    np.testing.assert_allclose(table["de_p_value"][:5], p)
    assert table.loc[5, "de_statistic"] == 0.0 and table.loc[5, "de_p_value"] == 1.0
    inside, outside = observed[:15].mean(0), observed[15:].mean(0)
    np.testing.assert_allclose(table["observed_change"], inside - outside)
    np.testing.assert_allclose(
        table["observed_log2_fold_change"], np.log2((inside + 1e-3) / (outside + 1e-3))
    )
    assert (table["n_affected"] == 15).all()
    values = observed_contrast(observed - 5.0, affected, log_scale=False, pseudo=1e-3)
    t_values = ttest_ind(observed[:15, 0] - 5, observed[15:, 0] - 5, equal_var=False).statistic
    assert values.loc[0, "de_statistic"] == pytest.approx(t_values)
    assert values["observed_log2_fold_change"].isna().all()
    empty = observed_contrast(observed, None, log_scale=True, pseudo=1e-3)
    assert (empty["n_affected"] == 0).all() and empty.drop(columns="n_affected").isna().all().all()

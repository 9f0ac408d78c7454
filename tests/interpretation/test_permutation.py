"""The explained variance and the vectorized permutation test, on arrays."""

import numpy as np
import pytest
from scipy.stats import binom

from lucidvi.interpretation._spatial._permutation import (
    explained_variance,
    permutation_p_value,
    random_permutations,
)


def _plain_p_value(residual, effect, permutations):
    observed = np.mean((residual - effect) ** 2)
    permuted = [np.mean((residual - effect[p]) ** 2) for p in permutations]
    return (1 + np.sum(np.asarray(permuted) <= observed)) / (1 + len(permutations))


def test_explained_variance_per_gene_and_overall():
    rng = np.random.default_rng(0)
    residual = rng.normal(size=(50, 3))
    residual[:, 2] = 4.0  # no variance
    effect = np.column_stack([residual[:, 0], np.zeros(50), rng.normal(size=50)])
    per_gene, overall = explained_variance(residual, effect)
    assert per_gene[0] == pytest.approx(1.0)
    assert per_gene[1] == pytest.approx(0.0)
    assert per_gene[2] == 0.0  # defined as 0 without variance, whatever the effect
    assert overall == pytest.approx(0.5)  # mean over the two genes with variance


def test_vectorized_p_values_equal_the_plain_loop():
    rng = np.random.default_rng(1)
    permutations = random_permutations(40, 199, seed=3)
    for strength in (0.0, 0.1, 0.3, 1.0):
        effect = rng.normal(size=(40, 1)) * rng.normal(size=(1, 6))
        residual = strength * effect + rng.normal(size=(40, 6))
        assert permutation_p_value(residual, effect, permutations) == _plain_p_value(
            residual, effect, permutations
        )


def test_constant_effect_gets_p_one_and_strong_effect_the_minimum():
    rng = np.random.default_rng(2)
    permutations = random_permutations(60, 99, seed=0)
    constant = np.tile(rng.normal(size=(1, 5)), (60, 1))
    assert permutation_p_value(rng.normal(size=(60, 5)), constant, permutations) == 1.0
    effect = rng.normal(size=(60, 5))
    assert permutation_p_value(effect + 0.1 * rng.normal(size=(60, 5)), effect, permutations) == (
        1 / 100
    )


def test_p_values_are_valid_under_the_null():
    # exchangeable effects: P(p <= 0.05) <= 0.05 exactly (B + 1 = 100), so the count of 400
    # null p-values at or below 0.05 is at most Binomial(400, 0.05); fail beyond its 0.999 quantile
    rng = np.random.default_rng(4)
    p_values = []
    for _ in range(400):
        residual, effect = rng.normal(size=(30, 4)), rng.normal(size=(30, 4))
        p_values.append(permutation_p_value(residual, effect, random_permutations(30, 99, None)))
    p_values = np.asarray(p_values)
    assert np.sum(p_values <= 0.05) <= binom.ppf(0.999, 400, 0.05)
    assert np.all((p_values >= 0.01) & (p_values <= 1.0))


def test_permutations_are_permutations_and_shapes_are_checked():
    permutations = random_permutations(7, 5, seed=0)
    assert permutations.shape == (5, 7)
    assert all(sorted(p) == list(range(7)) for p in permutations)
    np.testing.assert_array_equal(permutations, random_permutations(7, 5, seed=0))
    with pytest.raises(ValueError, match="permutations must have shape"):
        permutation_p_value(np.zeros((6, 2)), np.zeros((6, 2)), permutations)


def test_more_cells_than_permutations_gives_the_same_p_value():
    # the direct cross terms (cells > permutations) against the plain loop
    rng = np.random.default_rng(5)
    effect = rng.normal(size=(80, 1)) * rng.normal(size=(1, 4))
    residual = 0.2 * effect + rng.normal(size=(80, 4))
    permutations = random_permutations(80, 39, seed=1)
    assert permutation_p_value(residual, effect, permutations) == _plain_p_value(
        residual, effect, permutations
    )


def test_permutations_within_groups_never_mix_them():
    groups = np.array(["a", "b", "a", "c", "b", "a", "c"])
    permutations = random_permutations(7, 50, seed=2, groups=groups)
    assert all(sorted(p) == list(range(7)) for p in permutations)
    np.testing.assert_array_equal(groups[permutations], np.tile(groups, (50, 1)))
    assert len({tuple(p) for p in permutations}) > 1

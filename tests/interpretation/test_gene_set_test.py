"""Gene-set scores against expression-matched random sets (array in, no model)."""

import numpy as np
import pytest
from scipy.stats import kstest, norm

from lucidvi.interpretation._spatial._gene_set_test import (
    expression_bins,
    matched_set_test,
    normal_scores,
)


def test_normal_scores_follow_the_ranks():
    values = np.array([3.0, -1.0, np.nan, 10.0, -1.0])
    scores = normal_scores(values)
    assert scores[2] == 0.0  # no evidence
    assert scores[3] > scores[0] > scores[1] == scores[4]  # ties share a rank
    # four values: ranks 1.5, 1.5, 3, 4 -> Phi^-1((r - 1/2) / 4)
    np.testing.assert_allclose(scores[[1, 0, 3]], norm.ppf((np.array([1.5, 3, 4]) - 0.5) / 4))
    two_sided = normal_scores(np.array([-5.0, 1.0, 2.0]), "two-sided")
    assert two_sided.argmax() == 0
    with pytest.raises(ValueError, match="alternative"):
        normal_scores(values, "less")


def test_expression_bins_have_equal_sizes_and_keep_ties_together():
    bins = expression_bins(np.arange(100.0)[::-1], 10)
    assert np.array_equal(np.bincount(bins), np.full(10, 10))
    assert bins[0] == 9 and bins[-1] == 0  # the most expressed gene in the top bin
    tied = expression_bins(np.array([0.0, 0.0, 0.0, 1.0, 2.0, 3.0]), 3)
    assert len(set(tied[:3])) == 1
    with pytest.raises(ValueError, match="n_bins"):
        expression_bins(np.arange(5.0), 6)


def test_a_set_of_the_top_genes_gets_the_smallest_p_value():
    evidence = np.linspace(-2, 2, 200)
    bins = expression_bins(np.random.default_rng(0).random(200), 10)
    top = np.arange(190, 200)
    scores, p_values = matched_set_test(evidence, [top], bins, 999, seed=0)
    assert scores[0] == pytest.approx(evidence[top].mean())
    assert p_values[0] == pytest.approx(1 / 1000)  # no random set of 10 reaches the top 10


def test_p_values_are_uniform_under_the_null():
    rng = np.random.default_rng(1)
    n_genes, n_sets = 300, 400
    evidence = rng.normal(size=n_genes)
    bins = expression_bins(rng.random(n_genes), 10)
    sets = [rng.choice(n_genes, size=rng.integers(1, 30), replace=False) for _ in range(n_sets)]
    _, p_values = matched_set_test(evidence, sets, bins, 200, seed=2)
    # 400 p-values on a grid of 1/201: the KS test would reject a wrong null at any size
    assert kstest(p_values, "uniform").pvalue > 0.001
    assert 0.02 < np.mean(p_values <= 0.05) < 0.09  # about alpha of them


def test_matching_on_expression_removes_a_bias_that_follows_expression():
    """Evidence that grows with expression: the top expressed genes are no better than their bin."""
    rng = np.random.default_rng(3)
    n_genes = 500
    expression = rng.lognormal(size=n_genes)
    evidence = normal_scores(np.log(expression) + rng.normal(scale=0.3, size=n_genes))
    bins = expression_bins(expression, 10)
    top_bin = np.flatnonzero(bins == 9)  # the 50 most expressed genes
    matched = matched_set_test(evidence, [top_bin], bins, 999, 0)[1][0]
    unmatched = matched_set_test(evidence, [top_bin], np.zeros(n_genes, int), 999, 0)[1][0]
    assert unmatched == pytest.approx(1 / 1000)  # against all genes: the set stands out
    # against random draws from its own bin, whose mean is the set's score: about one half
    assert 0.2 < matched < 0.8


def test_sets_with_the_same_bins_share_their_null_and_bad_input_is_refused():
    evidence = np.arange(20.0)
    bins = np.repeat([0, 1], 10)
    _, p = matched_set_test(evidence, [np.array([0, 10]), np.array([1, 11])], bins, 50, seed=0)
    assert p[0] >= p[1]  # same null draws: the larger score can only have the smaller p-value
    with pytest.raises(ValueError, match="empty"):
        matched_set_test(evidence, [np.array([], dtype=int)], bins, 10, seed=0)
    with pytest.raises(ValueError, match="one entry per gene"):
        matched_set_test(evidence, [np.array([0])], bins[:5], 10, seed=0)
    with pytest.raises(ValueError, match="n_permutations"):
        matched_set_test(evidence, [np.array([0])], bins, 0, seed=0)

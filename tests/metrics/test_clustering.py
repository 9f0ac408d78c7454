import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from lucidvi.metrics import (
    clustering_log_loss,
    clustering_scores,
    match_clusters,
    matched_cluster_probability,
)

NEVER = -np.log(1e-15)  # the log-loss of a cell given probability 0


def test_perfect_clustering_with_permuted_ids_scores_one_and_zero_log_loss():
    labels = np.repeat(["a", "b", "c"], [5, 3, 4])
    mapping = {"a": 2, "b": 0, "c": 1}
    clusters = np.array([mapping[x] for x in labels])
    one_hot = np.eye(3)[clusters]
    scores = clustering_scores(labels, clusters, one_hot)
    assert scores == {"accuracy": 1.0, "nmi": 1.0, "ari": 1.0, "log_loss": 0.0}
    named = pd.DataFrame(one_hot, columns=[0, 1, 2])[[2, 0, 1]]  # column order is irrelevant
    assert clustering_scores(labels, clusters, named)["log_loss"] == 0.0
    assert match_clusters(labels, clusters) == {0: "b", 1: "c", 2: "a"}


def test_hand_computed_accuracy_and_log_loss():
    labels = ["a"] * 4 + ["b"] * 3 + ["c"] * 3
    clusters = [0, 0, 0, 1, 1, 1, 1, 2, 2, 0]
    # contingency: a -> {0: 3, 1: 1}, b -> {1: 3}, c -> {2: 2, 0: 1}; best matching a-0, b-1, c-2
    probabilities = np.array(
        [
            [0.8, 0.2, 0.0],
            [0.8, 0.2, 0.0],
            [0.8, 0.2, 0.0],
            [0.5, 0.5, 0.0],  # an "a" cell placed in cluster 1: p(cluster 0) = 0.5
            [0.0, 1.0, 0.0],
            [0.0, 1.0, 0.0],
            [0.0, 1.0, 0.0],
            [0.0, 0.0, 1.0],
            [0.0, 0.0, 1.0],
            [0.75, 0.0, 0.25],  # a "c" cell placed in cluster 0: p(cluster 2) = 0.25
        ]
    )
    scores = clustering_scores(labels, clusters, probabilities)
    assert scores["accuracy"] == pytest.approx(0.8)
    expected = -(3 * np.log(0.8) + np.log(0.5) + np.log(0.25)) / 10
    assert scores["log_loss"] == pytest.approx(expected)
    assert scores["log_loss"] == pytest.approx(0.2748872, abs=1e-6)
    assert match_clusters(labels, clusters) == {0: "a", 1: "b", 2: "c"}
    matched = matched_cluster_probability(labels, clusters, probabilities)
    np.testing.assert_allclose(matched, [0.8, 0.8, 0.8, 0.5, 1, 1, 1, 1, 1, 0.25])
    assert clustering_log_loss(matched) == scores["log_loss"]


def test_more_clusters_than_labels():
    labels = ["a"] * 4 + ["b"] * 4
    clusters = [0, 0, 0, 1, 2, 2, 2, 2]  # cluster 1 is surplus: its cell counts as wrong
    scores = clustering_scores(labels, clusters, np.eye(3)[clusters])
    assert scores["accuracy"] == pytest.approx(7 / 8)
    assert scores["log_loss"] == pytest.approx(NEVER / 8)  # that cell gives cluster 0 no mass
    assert match_clusters(labels, clusters) == {0: "a", 1: "a", 2: "b"}
    assert match_clusters(labels, clusters, one_to_one=True) == {0: "a", 2: "b"}


def test_fewer_clusters_than_labels():
    labels = ["a"] * 3 + ["b"] * 2 + ["c"] * 2
    clusters = [0, 0, 0, 0, 0, 1, 1]  # "b" is left without a cluster
    scores = clustering_scores(labels, clusters, np.eye(2)[clusters])
    assert scores["accuracy"] == pytest.approx(5 / 7)
    assert scores["log_loss"] == pytest.approx(2 * NEVER / 7)
    assert match_clusters(labels, clusters) == {0: "a", 1: "c"}
    matched = matched_cluster_probability(labels, clusters, np.eye(2)[clusters])
    np.testing.assert_array_equal(matched, [1, 1, 1, 0, 0, 1, 1])  # "b" has no cluster: 0
    assert clustering_log_loss([1.0, 0.0]) == pytest.approx(NEVER / 2)  # 0 is clipped, not inf


def test_probability_frame_may_hold_empty_clusters_and_string_ids():
    labels = ["x", "x", "y", "y"]
    clusters = pd.Series(["k1", "k1", "k2", "k2"])
    probabilities = pd.DataFrame(
        {"k2": [0.0, 0.5, 0.5, 1.0], "empty": [0.0, 0.0, 0.0, 0.0], "k1": [1.0, 0.5, 0.5, 0.0]}
    )
    scores = clustering_scores(labels, clusters, probabilities)
    assert scores["log_loss"] == pytest.approx(-2 * np.log(0.5) / 4)


def test_log_loss_is_absent_without_probabilities():
    assert set(clustering_scores([0, 1, 1], [1, 0, 0])) == {"accuracy", "nmi", "ari"}


def test_containers_do_not_change_the_scores():
    rng = np.random.default_rng(1)
    labels = rng.choice(["T", "B", "NK"], 200)
    clusters = rng.integers(0, 4, 200)
    reference = clustering_scores(labels, clusters)
    assert clustering_scores(pd.Categorical(labels), pd.Series(clusters)) == reference
    assert clustering_scores(list(labels), clusters.astype(str).tolist()) == reference


def test_nmi_and_ari_agree_with_sklearn_and_vanish_for_independent_labelings():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 5, 5000)
    clusters = np.where(rng.random(5000) < 0.6, labels, rng.integers(0, 7, 5000))
    scores = clustering_scores(labels, clusters)
    assert scores["nmi"] == pytest.approx(normalized_mutual_info_score(labels, clusters))
    assert scores["ari"] == pytest.approx(adjusted_rand_score(labels, clusters))
    independent = clustering_scores(labels, rng.integers(0, 5, 5000))
    assert abs(independent["ari"]) < 0.01
    assert independent["nmi"] < 0.01
    assert independent["accuracy"] < 0.3  # chance: about 1/5 plus the matching's gain


@pytest.mark.parametrize(
    ("labels", "clusters", "match"),
    [
        ([0, 1, 1], [0, 1], "same length"),
        ([], [], "empty"),
        ([0, np.nan, 1], [0, 1, 1], "labels has 1 missing"),
        (["a", "b", "b"], [0, None, 1], "clusters has 1 missing"),
        (pd.Categorical(["a", None]), [0, 1], "missing"),
        (np.zeros((3, 2)), [0, 1, 1], "1-d"),
        (pd.DataFrame({"a": [0, 1]}), [0, 1], "1-d"),
    ],
)
def test_invalid_labels_or_clusters(labels, clusters, match):
    with pytest.raises(ValueError, match=match):
        clustering_scores(labels, clusters)


@pytest.mark.parametrize(
    ("clusters", "probabilities", "match"),
    [
        ([0, 1, 1], [[0.5, 0.4], [0, 1], [0, 1]], "sum to 1"),
        ([0, 1, 1], [[1.5, -0.5], [0, 1], [0, 1]], "non-negative"),
        ([0, 1, 1], [[1, 0], [0, 1]], "rows for 3 cells"),
        ([0, 1, 1], [[np.nan, 1], [0, 1], [0, 1]], "NaN"),
        ([0, 1, 1], [1, 0, 0], "cells x clusters"),
        ([0, 2, 2], [[1, 0], [0, 1], [0, 1]], "integers in 0..1"),
        (["0", "1", "1"], [[1, 0], [0, 1], [0, 1]], "DataFrame"),
        ([0, 1, 1], pd.DataFrame([[1, 0], [0, 1], [0, 1]], columns=["0", "1"]), "not columns"),
    ],
)
def test_invalid_probabilities(clusters, probabilities, match):
    with pytest.raises(ValueError, match=match):
        clustering_scores(["a", "b", "b"], clusters, probabilities)


def test_row_sums_within_tolerance_pass():
    probabilities = np.array([[0.99995, 0.0], [0.0, 1.0]])
    assert clustering_scores([0, 1], [0, 1], probabilities)["log_loss"] >= 0

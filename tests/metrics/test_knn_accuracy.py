import numpy as np
import pytest

from lucidvi.metrics import knn_accuracy


def test_separated_types_are_classified_perfectly():
    rng = np.random.default_rng(0)
    labels = np.repeat(["a", "b", "c"], 100)
    centres = {"a": 0.0, "b": 20.0, "c": 40.0}
    embedding = rng.normal(size=(300, 2)) + np.array([[centres[x], 0.0] for x in labels])
    assert knn_accuracy(embedding, labels) == 1.0


def test_an_uninformative_embedding_scores_at_chance():
    rng = np.random.default_rng(1)
    n, k = 3000, 4
    labels = rng.integers(0, k, n)
    accuracy = knn_accuracy(rng.normal(size=(n, 3)), labels)
    # under the null each prediction is right with probability 1/k: 5 binomial SE around it
    assert abs(accuracy - 1 / k) < 5 * np.sqrt((1 / k) * (1 - 1 / k) / n)


def test_bad_input_raises():
    with pytest.raises(ValueError, match="cells x dims"):
        knn_accuracy(np.zeros((10, 2)), np.zeros(9))
    with pytest.raises(ValueError, match="NaN"):
        knn_accuracy(np.full((100, 2), np.nan), np.zeros(100))
    with pytest.raises(ValueError, match="missing"):
        knn_accuracy(np.zeros((100, 2)), np.array([None] * 100))
    with pytest.raises(ValueError, match="at least"):
        knn_accuracy(np.zeros((20, 2)), np.zeros(20))

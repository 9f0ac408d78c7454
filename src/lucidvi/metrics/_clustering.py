"""Agreement between a clustering and known labels: accuracy, NMI, ARI and log-loss."""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from lucidvi._docstrings import lucidvi_dsp

if TYPE_CHECKING:
    from collections.abc import Hashable

_EPS = 1e-15  # probabilities are clipped here before the log: a wrong certainty costs 34.5 nats
# float32 rows miss 1 by rounding (up to ~6e-8 per cluster): 1e-4 allows some 1,000 clusters
_ROW_SUM_TOLERANCE = 1e-4


@dataclass(frozen=True)
class _Matching:
    """Optimal one-to-one matching of clusters to labels, with everything derived from it."""

    labels: np.ndarray  # unique labels (sorted when sortable)
    clusters: np.ndarray  # unique clusters (sorted when sortable)
    label_codes: np.ndarray  # per cell, index into ``labels``
    cluster_codes: np.ndarray  # per cell, index into ``clusters``
    contingency: np.ndarray  # labels x clusters counts
    label_to_cluster: np.ndarray  # per label, index of its matched cluster or -1
    cluster_to_label: np.ndarray  # per cluster, index of its matched label or -1

    @property
    def n_correct(self) -> int:
        matched = self.label_to_cluster >= 0
        rows = np.flatnonzero(matched)
        return int(self.contingency[rows, self.label_to_cluster[matched]].sum())


def _values(values: Any, name: str) -> np.ndarray:
    """Return a 1-d array of ``values``, checked for shape, emptiness and missing values."""
    if isinstance(values, pd.DataFrame):
        raise ValueError(f"{name} must be 1-d, got a DataFrame of shape {values.shape}.")
    array = np.asarray(values)  # a Categorical becomes its categories' values, NaN if missing
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-d, got shape {array.shape}.")
    if array.size == 0:
        raise ValueError(f"{name} is empty.")
    missing = pd.isna(array)
    if missing.any():
        raise ValueError(
            f"{name} has {int(missing.sum())} missing values (NaN/None), e.g. at positions "
            f"{np.flatnonzero(missing)[:5].tolist()}; drop or label those cells first."
        )
    return array


def _factorize(array: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    try:
        codes, uniques = pd.factorize(array, sort=True)
    except TypeError:  # unorderable mix of types: keep the order of appearance
        codes, uniques = pd.factorize(array, sort=False)
    return codes, np.asarray(uniques)


def _match(labels: Any, clusters: Any) -> _Matching:
    """Match clusters to labels one-to-one, maximising the number of cells they share."""
    from scipy.optimize import linear_sum_assignment

    label_values = _values(labels, "labels")
    cluster_values = _values(clusters, "clusters")
    if len(label_values) != len(cluster_values):
        raise ValueError(
            f"labels and clusters must have the same length, got {len(label_values)} and "
            f"{len(cluster_values)}."
        )
    label_codes, label_uniques = _factorize(label_values)
    cluster_codes, cluster_uniques = _factorize(cluster_values)
    n_labels, n_clusters = len(label_uniques), len(cluster_uniques)
    contingency = np.bincount(
        label_codes * n_clusters + cluster_codes, minlength=n_labels * n_clusters
    ).reshape(n_labels, n_clusters)
    rows, cols = linear_sum_assignment(contingency, maximize=True)
    label_to_cluster = np.full(n_labels, -1)
    cluster_to_label = np.full(n_clusters, -1)
    label_to_cluster[rows] = cols
    cluster_to_label[cols] = rows
    return _Matching(
        labels=label_uniques,
        clusters=cluster_uniques,
        label_codes=label_codes,
        cluster_codes=cluster_codes,
        contingency=contingency,
        label_to_cluster=label_to_cluster,
        cluster_to_label=cluster_to_label,
    )


def _scalar(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _probability_matrix(
    probabilities: np.ndarray | pd.DataFrame, cluster_ids: np.ndarray, n_cells: int
) -> tuple[np.ndarray, np.ndarray]:
    """Validate membership probabilities; return them and the column of each cluster id."""
    if isinstance(probabilities, pd.DataFrame):
        columns = pd.Index(probabilities.columns)
        if not columns.is_unique:
            raise ValueError("The columns of probabilities (the cluster ids) must be unique.")
        positions = columns.get_indexer(pd.Index(cluster_ids, dtype=object))
        if (positions < 0).any():
            absent = [_scalar(c) for c in cluster_ids[positions < 0]]
            raise ValueError(
                f"The clusters {absent[:10]} are not columns of probabilities (columns: "
                f"{columns.tolist()[:10]}); its columns must be the cluster ids."
            )
        values = probabilities.to_numpy(dtype=np.float64)
    else:
        values = np.asarray(probabilities, dtype=np.float64)
        if values.ndim != 2:
            raise ValueError(f"probabilities must be cells x clusters, got shape {values.shape}.")
        integers = all(
            isinstance(c, numbers.Integral) and not isinstance(c, bool | np.bool_)
            for c in cluster_ids
        )
        if not integers or not all(0 <= c < values.shape[1] for c in cluster_ids):
            raise ValueError(
                f"With an array of probabilities, column j holds cluster j, so the cluster ids "
                f"must be integers in 0..{values.shape[1] - 1}; got "
                f"{[_scalar(c) for c in cluster_ids[:10]]}. Pass a DataFrame whose columns are "
                f"the cluster ids instead."
            )
        positions = np.asarray(cluster_ids, dtype=np.int64)
    if values.shape[0] != n_cells:
        raise ValueError(f"probabilities has {values.shape[0]} rows for {n_cells} cells.")
    if not np.isfinite(values).all():
        raise ValueError("probabilities contain NaN or infinite values.")
    if (values < 0).any():
        raise ValueError("probabilities must be non-negative.")
    sums = values.sum(axis=1)
    bad = np.flatnonzero(np.abs(sums - 1.0) > _ROW_SUM_TOLERANCE)
    if bad.size:
        raise ValueError(
            f"Each row of probabilities must sum to 1 (within {_ROW_SUM_TOLERANCE}); "
            f"{bad.size} rows do not, e.g. row {bad[0]} sums to {sums[bad[0]]:.6g}."
        )
    return values, positions


def _true_cluster_probability(
    matching: _Matching, probabilities: np.ndarray | pd.DataFrame
) -> np.ndarray:
    """Per cell: the probability of its label's matched cluster (0 if none)."""
    values, positions = _probability_matrix(
        probabilities, matching.clusters, len(matching.label_codes)
    )
    matched = matching.label_to_cluster[matching.label_codes]
    has_match = matched >= 0
    true = np.zeros(len(values))
    rows = np.flatnonzero(has_match)
    true[rows] = values[rows, positions[matched[has_match]]]
    return true


def clustering_log_loss(matched_probability: Any) -> float:
    """Mean negative log of each cell's probability of the cluster matched to its label.

    Parameters
    ----------
    matched_probability
        Per cell, its probability of the cluster matched to its label (0 when the label has no
        cluster), e.g. from :func:`matched_cluster_probability`.

    Returns
    -------
    ``-(1/n) sum_i log max(p_i, 1e-15)``, the ``log_loss`` of :func:`clustering_scores`.

    Examples
    --------
    >>> clustering_log_loss([1.0, 0.5])
    0.34657359027997264
    """
    values = np.asarray(matched_probability, dtype=np.float64)
    return 0.0 - float(np.mean(np.log(np.clip(values, _EPS, None))))  # never -0.0


@lucidvi_dsp.dedent
def matched_cluster_probability(
    labels: Any, clusters: Any, probabilities: np.ndarray | pd.DataFrame
) -> np.ndarray:
    """Per cell, its probability of the cluster that the optimal matching gives its label.

    Parameters
    ----------
    %(labels_clusters)s
    probabilities
        Cells x clusters membership probabilities, each row summing to 1 (as in
        :func:`clustering_scores`).

    Returns
    -------
    One probability per cell; 0 for the cells of a label left without a cluster (more labels
    than clusters). :func:`clustering_log_loss` of it is the ``log_loss`` of
    :func:`clustering_scores`.

    Examples
    --------
    >>> matched_cluster_probability(["a", "b"], [1, 0], [[0.2, 0.8], [0.6, 0.4]])
    array([0.8, 0.6])
    """
    return _true_cluster_probability(_match(labels, clusters), probabilities)


@lucidvi_dsp.dedent
def clustering_scores(
    labels: Any, clusters: Any, probabilities: np.ndarray | pd.DataFrame | None = None
) -> dict[str, float]:
    """Score a clustering against known labels.

    Parameters
    ----------
    %(labels_clusters)s
    probabilities
        Cells x clusters membership probabilities, each row summing to 1. A DataFrame's columns
        are the cluster ids (it may hold extra, empty clusters); with an array, column ``j`` is
        cluster ``j``, so the ids in ``clusters`` must be the integers ``0..K-1``.

    Returns
    -------
    ``accuracy``, ``nmi``, ``ari`` and, only when ``probabilities`` is given, ``log_loss``
    (the key is absent otherwise).

    Notes
    -----
    With ``n`` cells, contingency table ``N_lc`` (cells of label ``l`` in cluster ``c``) and
    the one-to-one matching ``m`` of clusters to labels that maximises ``sum_l N_l,m(l)``
    (Hungarian algorithm, :func:`scipy.optimize.linear_sum_assignment`; ``min(L, K)`` pairs
    when the numbers of labels ``L`` and clusters ``K`` differ):

    - ``accuracy = sum_l N_l,m(l) / n``: cells in clusters unmatched to their label, including
      all cells of surplus clusters, count as wrong.
    - ``nmi = I(labels; clusters) / ((H(labels) + H(clusters)) / 2)``
      (:func:`sklearn.metrics.normalized_mutual_info_score`, arithmetic mean).
    - ``ari``: the Rand index adjusted for chance (:func:`sklearn.metrics.adjusted_rand_score`;
      0 in expectation for independent labelings, 1 for identical partitions).
    - ``log_loss = -(1/n) sum_i log max(p_i,m(l_i), 1e-15)``, where ``p_i,c`` is cell ``i``'s
      probability of cluster ``c`` and ``p_i,m(l) = 0`` for a label left without a cluster.

    The matching is computed once and shared by ``accuracy`` and ``log_loss``; ties are broken
    by the sorted order of the label and cluster ids.

    Examples
    --------
    >>> clustering_scores(["a", "a", "b", "b"], [1, 1, 0, 0])
    {'accuracy': 1.0, 'nmi': 1.0, 'ari': 1.0}
    >>> clustering_scores(["a", "a", "b", "b"], [1, 1, 0, 0], [[0, 1], [0, 1], [1, 0], [1, 0]])
    {'accuracy': 1.0, 'nmi': 1.0, 'ari': 1.0, 'log_loss': 0.0}
    """
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    matching = _match(labels, clusters)
    scores = {
        "accuracy": matching.n_correct / len(matching.label_codes),
        "nmi": float(normalized_mutual_info_score(matching.label_codes, matching.cluster_codes)),
        "ari": float(adjusted_rand_score(matching.label_codes, matching.cluster_codes)),
    }
    if probabilities is not None:
        true = _true_cluster_probability(matching, probabilities)
        scores["log_loss"] = clustering_log_loss(true)
    return scores


@lucidvi_dsp.dedent
def match_clusters(labels: Any, clusters: Any, *, one_to_one: bool = False) -> dict[Hashable, Any]:
    """Map each cluster to the label it stands for.

    Parameters
    ----------
    %(labels_clusters)s
    one_to_one
        Return only the clusters of the optimal one-to-one matching, leaving out the surplus
        clusters when there are more clusters than labels.

    Returns
    -------
    ``{cluster id: label}``, clusters in sorted order. A cluster of the optimal one-to-one
    matching (the one behind ``accuracy`` in :func:`clustering_scores`) maps to its matched
    label; any other cluster maps to the label it shares the most cells with, so several
    clusters may then map to the same label.

    Examples
    --------
    >>> match_clusters(["a", "a", "a", "b", "b"], [2, 2, 0, 1, 1])
    {0: 'a', 1: 'b', 2: 'a'}
    >>> match_clusters(["a", "a", "a", "b", "b"], [2, 2, 0, 1, 1], one_to_one=True)
    {1: 'b', 2: 'a'}
    """
    matching = _match(labels, clusters)
    majority = matching.contingency.argmax(axis=0)
    result = {}
    for index, cluster in enumerate(matching.clusters):
        label = matching.cluster_to_label[index]
        if label < 0:
            if one_to_one:
                continue
            label = majority[index]
        result[_scalar(cluster)] = _scalar(matching.labels[label])
    return result

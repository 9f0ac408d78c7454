"""Merging the negative binomial components of :class:`lucidvi.model.MixtureVI` into clusters."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import logsumexp

_LOG_TINY = float(np.log(np.finfo(np.float64).tiny))


def divergences(
    log_likelihood: np.ndarray, log_weights: np.ndarray, groups: list[list[int]]
) -> np.ndarray:
    r"""Estimated symmetric Kullback-Leibler divergences between groups of components.

    A group ``A`` of components is the mixture ``p_A(x) = sum_{c in A} pi_c p_c(x) / pi_A``.
    The cells assigned to ``A`` (those whose most probable group it is) sample ``p_A``, so

    .. math::

        \widehat{\mathrm{KL}}(A \,\|\, B) = \frac{1}{n_A} \sum_{i \in A}
            \left[\log p_A(x_i) - \log p_B(x_i)\right],

    and the result is ``(KL(A || B) + KL(B || A)) / 2`` in nats per cell. A group with no
    cells has ``KL(A || B) = 0``.

    Parameters
    ----------
    log_likelihood
        ``log p_c(x_i)`` of every cell and component, shape ``(n_cells, C)``.
    log_weights
        ``log pi_c`` of every component, shape ``(C,)``.
    groups
        Components of each group.

    Returns
    -------
    Symmetric matrix ``(n_groups, n_groups)`` with ``inf`` on the diagonal.
    """
    log_joint = log_likelihood + log_weights[None, :]
    joint = np.stack([logsumexp(log_joint[:, group], axis=1) for group in groups], axis=1)
    group_weights = np.array([logsumexp(log_weights[group]) for group in groups])
    density = joint - group_weights[None, :]
    assigned = joint.argmax(1)
    n_groups = len(groups)
    counts = np.bincount(assigned, minlength=n_groups)
    sums = np.zeros((n_groups, n_groups))
    np.add.at(sums, assigned, density)
    directed = (np.diag(sums)[:, None] - sums) / np.maximum(counts, 1)[:, None]
    symmetric = (directed + directed.T) / 2.0
    np.fill_diagonal(symmetric, np.inf)
    return symmetric


def merge_components(
    log_likelihood: np.ndarray, log_weights: np.ndarray, n_clusters: int
) -> tuple[np.ndarray, pd.DataFrame]:
    """Merge mixture components greedily into ``n_clusters`` clusters.

    At each step the two groups with the smallest estimated symmetric Kullback-Leibler
    divergence (:func:`divergences`) are merged, as in agglomerative clustering with the
    divergence between the groups' mixtures as distance. Merging leaves the fitted density
    unchanged: a cluster's distribution is the mixture of its components.

    Parameters
    ----------
    log_likelihood, log_weights
        Each cell's log-likelihood under each of the ``C`` components, and the components'
        log weights (as in :func:`divergences`).
    n_clusters
        Number of clusters, at most ``C``.

    Returns
    -------
    ``(cluster_of_component, merges)``: the cluster (``0 .. n_clusters - 1``, numbered in the
    order of each cluster's first component) of each component, and one row per merge with
    ``step``, ``components_a``, ``components_b`` (the components of the two merged groups, as
    strings such as ``"3+7"``) and ``divergence`` (nats per cell).
    """
    log_likelihood = np.asarray(log_likelihood, dtype=np.float64)
    # an empty component has weight 0: floor its log weight so the sums below stay finite;
    # with finite inputs every divergence is finite, so this one check guards the whole loop
    log_weights = np.maximum(np.asarray(log_weights, dtype=np.float64), _LOG_TINY)
    if not (np.isfinite(log_likelihood).all() and np.isfinite(log_weights).all()):
        raise FloatingPointError(
            "Cannot merge components: their log-likelihoods are not all finite (an overflow in "
            "the fit); refit the mixture (another seed or init) before merging."
        )
    n_components = log_likelihood.shape[1]
    if not 1 <= n_clusters <= n_components:
        raise ValueError(
            f"n_clusters must be between 1 and the number of components ({n_components}), "
            f"got {n_clusters}."
        )
    groups = [[c] for c in range(n_components)]
    rows = []
    while len(groups) > n_clusters:
        distance = divergences(log_likelihood, log_weights, groups)
        a, b = sorted(np.unravel_index(np.argmin(distance), distance.shape))
        rows.append(
            {
                "step": len(rows) + 1,
                "components_a": "+".join(map(str, groups[a])),
                "components_b": "+".join(map(str, groups[b])),
                "divergence": float(distance[a, b]),
            }
        )
        groups[a] = sorted(groups[a] + groups[b])
        del groups[b]
    cluster_of_component = np.empty(n_components, dtype=np.int64)
    for cluster, group in enumerate(sorted(groups)):
        cluster_of_component[group] = cluster
    columns = ["step", "components_a", "components_b", "divergence"]
    return cluster_of_component, pd.DataFrame(rows, columns=columns)

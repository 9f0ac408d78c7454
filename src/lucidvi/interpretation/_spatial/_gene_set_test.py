"""Scores of gene sets against random sets of the same size and expression, array in."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from scipy.stats import norm, rankdata

Alternative = Literal["greater", "two-sided"]
_TIE_TOLERANCE = 1e-12  # null scores this close below the observed one count as ties


def normal_scores(values: np.ndarray, alternative: Alternative = "greater") -> np.ndarray:
    """Turn per-gene statistics into standard normal scores of their ranks.

    Gene ``g`` of ``n`` gets ``Phi^-1((r_g - 1/2) / n)``, with ``r_g`` its rank (ties share the
    mean rank): evidence of different kinds and scales (t statistics, fold changes) becomes
    comparable, and one extreme gene cannot outweigh a set.

    Parameters
    ----------
    values
        One statistic per gene; NaN counts as no evidence (the middle rank, score 0).
    alternative
        ``"greater"``: rank the values (large positive values score high); ``"two-sided"``:
        rank their absolute values.

    Returns
    -------
    Array of the values' shape, mean 0 over the genes.
    """
    values = np.asarray(values, dtype=np.float64)
    if alternative == "two-sided":
        values = np.abs(values)
    elif alternative != "greater":
        raise ValueError(f"alternative must be 'greater' or 'two-sided', got {alternative!r}.")
    missing = np.isnan(values)
    scores = np.zeros(len(values))
    if (~missing).any():
        ranks = rankdata(values[~missing])
        scores[~missing] = norm.ppf((ranks - 0.5) / len(ranks))
    return scores


def expression_bins(mean_expression: np.ndarray, n_bins: int) -> np.ndarray:
    """Split genes into ``n_bins`` bins of about equal size by their mean expression.

    Parameters
    ----------
    mean_expression
        One mean per gene.
    n_bins
        Number of bins (at most the number of genes).

    Returns
    -------
    Bin of each gene, 0 (least expressed) to ``n_bins - 1``; tied means share a bin.
    """
    mean_expression = np.asarray(mean_expression, dtype=np.float64)
    n_genes = len(mean_expression)
    if not 1 <= n_bins <= n_genes:
        raise ValueError(f"n_bins must lie in 1..{n_genes} (the genes), got {n_bins}.")
    ranks = rankdata(mean_expression, method="min") - 1  # 0-based; ties take the lowest rank
    return (ranks * n_bins // n_genes).astype(np.int64)


def matched_set_test(
    evidence: np.ndarray,
    gene_sets: Sequence[np.ndarray],
    bins: np.ndarray,
    n_permutations: int,
    seed: int | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Mean evidence of each gene set, and its p-value against expression-matched random sets.

    The null set of a gene set draws, for each of its genes, a gene at random (with
    replacement) from the gene's expression bin. The p-value is ``(1 + #{null score >=
    score}) / (1 + n_permutations)``. Gene sets with the same number of genes in each bin
    share their null draws.

    Parameters
    ----------
    evidence
        One value per gene (e.g. :func:`normal_scores`).
    gene_sets
        Each a non-empty array of gene indices.
    bins
        Expression bin of each gene (:func:`expression_bins`).
    n_permutations
        Random sets per gene set.
    seed
        Seed of numpy's generator.

    Returns
    -------
    ``(scores, p_values)``, one per gene set.
    """
    evidence = np.asarray(evidence, dtype=np.float64)
    bins = np.asarray(bins)
    if evidence.shape != bins.shape:
        raise ValueError("evidence and bins must have one entry per gene.")
    if n_permutations < 1:
        raise ValueError(f"n_permutations must be >= 1, got {n_permutations}.")
    n_bins = int(bins.max()) + 1
    members = [np.flatnonzero(bins == b) for b in range(n_bins)]
    rng = np.random.default_rng(seed)
    nulls: dict[tuple[int, ...], np.ndarray] = {}
    scores, p_values = np.empty(len(gene_sets)), np.empty(len(gene_sets))
    for i, genes in enumerate(gene_sets):
        genes = np.asarray(genes, dtype=np.int64)
        if genes.size == 0:
            raise ValueError(f"gene set {i} is empty.")
        counts = tuple(np.bincount(bins[genes], minlength=n_bins).tolist())
        if counts not in nulls:
            total = np.zeros(n_permutations)
            for pool, k in zip(members, counts, strict=True):
                if k:
                    draws = pool[rng.integers(len(pool), size=(n_permutations, k))]
                    total += evidence[draws].sum(axis=1)
            nulls[counts] = total / genes.size
        scores[i] = evidence[genes].mean()
        above = nulls[counts] >= scores[i] - _TIE_TOLERANCE * max(1.0, abs(scores[i]))
        p_values[i] = (1 + np.count_nonzero(above)) / (1 + n_permutations)
    return scores, p_values

"""Explained variance of a prediction and its permutation test, vectorized over permutations."""

from __future__ import annotations

import numpy as np

# entries of a cross-product block or of a gathered block (32 MiB of float64)
_MAX_BLOCK_ENTRIES = 1 << 22
_TIE_TOLERANCE = 1e-9  # relative; cross terms closer than this to the observed one are ties


def explained_variance(residual: np.ndarray, effect: np.ndarray) -> tuple[np.ndarray, float]:
    """Share of each gene's variance that an effect explains, and the same over all genes.

    With ``r`` the expression minus the baseline prediction and ``e`` the effect added to the
    baseline, the explained variance of gene ``g`` is ``1 - Var(r_g - e_g) / Var(r_g)`` (0 for
    genes without variance); over genes it is the mean of the per-gene values of the genes
    with variance (each gene counts once, whatever its scale).

    Parameters
    ----------
    residual
        Cells x genes, the expression minus the baseline prediction.
    effect
        Cells x genes, the prediction minus the baseline.

    Returns
    -------
    ``(per_gene, overall)``.
    """
    residual = np.asarray(residual, dtype=np.float64)
    total = residual.var(axis=0)
    left = (residual - effect).var(axis=0)
    varies = total > 1e-12 * (np.mean(residual**2, axis=0) + 1e-300)
    with np.errstate(divide="ignore", invalid="ignore"):
        per_gene = np.where(varies, 1.0 - left / total, 0.0)
    overall = float(per_gene[varies].mean()) if varies.any() else 0.0
    return per_gene, overall


def random_permutations(
    n_cells: int, n_permutations: int, seed: int | None, groups: np.ndarray | None = None
) -> np.ndarray:
    """Draw independent uniform permutations of ``range(n_cells)``, within groups if given.

    Parameters
    ----------
    n_cells
        Length of each permutation.
    n_permutations
        How many.
    seed
        Seed of numpy's generator.
    groups
        Group of each cell (e.g. its batch); cells are only exchanged within their group.

    Returns
    -------
    Array of shape ``(n_permutations, n_cells)``.
    """
    rng = np.random.default_rng(seed)
    dtype = np.int32 if n_cells < 2**31 else np.int64
    identity = np.tile(np.arange(n_cells, dtype=dtype), (n_permutations, 1))
    if groups is None:
        return rng.permuted(identity, axis=1)
    groups = np.asarray(groups)
    if groups.shape != (n_cells,):
        raise ValueError(f"groups must have one entry per cell ({n_cells}).")
    for group in np.unique(groups):
        members = np.flatnonzero(groups == group)
        local = np.tile(np.arange(len(members), dtype=dtype), (n_permutations, 1))
        identity[:, members] = members[rng.permuted(local, axis=1)]
    return identity


def permutation_p_value(
    residual: np.ndarray, effect: np.ndarray, permutations: np.ndarray
) -> float:
    r"""P-value of an effect's fit against the same effect shuffled across cells.

    The statistic is the mean squared error of ``residual - effect``; under the null the
    effect is exchangeable across cells, so ``p = (1 + #{MSE(permuted) <= MSE(observed)}) /
    (1 + B)`` for ``B`` permutations. The MSE of permutation :math:`\pi` is

    .. math:: \sum_i \lVert r_i \rVert^2 + \sum_i \lVert e_i \rVert^2
              - 2 \sum_i r_i^\top e_{\pi(i)},

    and only the last, cross term depends on :math:`\pi`. With ``C = R E'`` (cells x cells,
    computed once, in row blocks), it is :math:`\sum_i C_{i \pi(i)}`: one gather per
    permutation instead of a pass over cells x genes. ``C`` costs as much as ``n_cells``
    direct passes, so with more cells than permutations the cross terms are computed
    directly instead. Cross terms within a relative
    ``1e-9`` of the observed one count as ties (``<=``), so an effect that is the same in every
    cell gets ``p = 1``.

    Parameters
    ----------
    residual
        Cells x genes, the expression minus the baseline prediction (scaled as the MSE should
        weight the genes).
    effect
        Cells x genes, the prediction minus the baseline, scaled the same way.
    permutations
        ``(B, n_cells)`` permutations, e.g. from :func:`random_permutations`.

    Returns
    -------
    The p-value.
    """
    residual = np.asarray(residual, dtype=np.float64)
    effect = np.asarray(effect, dtype=np.float64)
    n_cells = len(residual)
    if permutations.ndim != 2 or permutations.shape[1] != n_cells:
        raise ValueError(f"permutations must have shape (B, {n_cells}), got {permutations.shape}.")
    n_permutations = len(permutations)
    observed = float(np.einsum("ig,ig->", residual, effect))
    if n_cells > n_permutations:
        cross = _direct_cross_terms(residual, effect, permutations)
    else:
        cross = np.zeros(n_permutations)
        block = max(1, _MAX_BLOCK_ENTRIES // max(n_cells, n_permutations))
        for start in range(0, n_cells, block):
            stop = min(start + block, n_cells)
            products = residual[start:stop] @ effect.T  # (block, cells)
            rows = np.arange(stop - start)[None, :]
            cross += products[rows, permutations[:, start:stop]].sum(axis=1)
    scale = np.sqrt(np.sum(residual**2) * np.sum(effect**2))
    at_least_as_good = cross >= observed - _TIE_TOLERANCE * scale
    return float((1 + np.count_nonzero(at_least_as_good)) / (1 + n_permutations))


def _direct_cross_terms(
    residual: np.ndarray, effect: np.ndarray, permutations: np.ndarray
) -> np.ndarray:
    """``sum_i r_i . e_pi(i)`` for each permutation, a chunk of permutations at a time."""
    chunk = max(1, _MAX_BLOCK_ENTRIES // max(effect.size, 1))
    cross = np.empty(len(permutations))
    for start in range(0, len(permutations), chunk):
        shuffled = effect[permutations[start : start + chunk]]  # (chunk, cells, genes)
        cross[start : start + chunk] = np.einsum("ig,big->b", residual, shuffled)
    return cross

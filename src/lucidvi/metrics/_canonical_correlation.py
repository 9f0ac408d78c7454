"""Canonical correlations between two sets of variables measured on the same observations."""

from __future__ import annotations

import numpy as np


def canonical_correlations(a: np.ndarray, b: np.ndarray, center: bool = True) -> np.ndarray:
    """Canonical correlations between the columns of ``a`` and the columns of ``b``.

    The cosines of the principal angles between the column spaces of ``a`` and ``b`` (after
    centring each column): invariant to any invertible linear map of either side's columns,
    which makes it the natural score for comparing learned and true loading matrices of a
    factor model, whose factors are identifiable only up to such a map.

    Parameters
    ----------
    a
        Array of shape ``(n_obs, p)``, e.g. true loadings (genes x factors).
    b
        Array of shape ``(n_obs, q)``, e.g. learned loadings.
    center
        Subtract each column's mean first (classical CCA).

    Returns
    -------
    The ``min(p, q)`` canonical correlations, in decreasing order, each in ``[0, 1]``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> a = rng.normal(size=(100, 3))
    >>> canonical_correlations(a, a @ rng.normal(size=(3, 3))).round(6)
    array([1., 1., 1.])
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.ndim != 2 or b.ndim != 2 or a.shape[0] != b.shape[0]:
        raise ValueError(
            f"a and b must be 2-D with the same number of rows; got {a.shape} and {b.shape}."
        )
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("a and b must be finite (no NaN or infinite values).")
    if center:
        a, b = a - a.mean(0), b - b.mean(0)
    basis_a = _orthonormal_basis(a)
    basis_b = _orthonormal_basis(b)
    correlations = np.linalg.svd(basis_a.T @ basis_b, compute_uv=False)
    return np.clip(correlations[: min(a.shape[1], b.shape[1])], 0.0, 1.0)


def _orthonormal_basis(matrix: np.ndarray) -> np.ndarray:
    u, s, _ = np.linalg.svd(matrix, full_matrices=False)
    rank = int((s > s.max(initial=0.0) * max(matrix.shape) * np.finfo(float).eps).sum())
    if rank < matrix.shape[1]:
        raise ValueError(
            f"The columns are linearly dependent (rank {rank} < {matrix.shape[1]}); canonical "
            f"correlations are undefined. Drop redundant columns first."
        )
    return u[:, :rank]

"""InteractionVI's starting profiles and spreads, from per-type moments read block by block."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import scipy.sparse as sp

from lucidvi._matrix_rows import row_blocks

# Pseudo-cells at the pooled spread in each type's starting spread.
_PRIOR_CELLS = 20


def intrinsic_start(
    matrix: Any,
    codes: np.ndarray,
    n_types: int,
    likelihood: Literal["nb", "gaussian"],
    per_type_spread: bool,
    block_rows: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Moment estimates of each type's profile and spread; see ``initialize_intrinsic``.

    Parameters
    ----------
    matrix
        Expression, cells x genes (numpy, scipy sparse, backed or dask).
    codes
        Type code of each cell.
    n_types
        Number of cell types.
    likelihood
        ``"nb"`` or ``"gaussian"``.
    per_type_spread
        One spread per type (else one row shared by all types).
    block_rows
        Rows per read.

    Returns
    -------
    ``(profiles, log_scale)``: ``(n_types, n_genes)`` and ``(n_types or 1, n_genes)``.
    """
    counts, means, squares, totals = type_moments(
        matrix, codes, n_types, per_library=likelihood == "nb", block_rows=block_rows
    )
    safe = np.maximum(counts, 1)[:, None]
    if likelihood == "gaussian":
        pooled = squares.sum(0) / len(codes)
        per_type = (squares + _PRIOR_CELLS * pooled) / (counts + _PRIOR_CELLS)[:, None]
        return means, np.log(np.sqrt(per_type if per_type_spread else pooled[None]) + 1e-3)
    library = np.mean(totals)  # counts scaled to the mean library
    mean, variance = library * means, library**2 * squares / safe
    with np.errstate(invalid="ignore", divide="ignore"):
        profiles = np.log(mean / mean.sum(1, keepdims=True) + 1e-8)
    profiles[counts == 0] = 0.0
    first = counts[:, None] * mean**2
    second = counts[:, None] * np.maximum(variance - mean, 1e-8)
    pooled = first.sum(0) / second.sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_type = first * (1 + _PRIOR_CELLS / safe)
        per_type /= second + _PRIOR_CELLS * (first / safe) / pooled
    per_type = np.where(np.isfinite(per_type), per_type, pooled)
    return profiles, np.log(np.clip(per_type if per_type_spread else pooled[None], 1e-2, 1e4))


def type_moments(
    matrix: Any,
    codes: np.ndarray,
    n_types: int,
    per_library: bool = False,
    block_rows: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Count the cells of each type, and the mean and squared deviations of each gene in it.

    The matrix is read one block of rows at a time (:func:`lucidvi._matrix_rows.row_blocks`:
    in memory, backed or dask); a sparse block stays sparse. Each block's moments are merged
    into the running ones with the pairwise update of Chan et al. (1983), so the result
    equals the two-pass computation on the whole matrix to floating-point precision.

    Parameters
    ----------
    matrix
        Expression, cells x genes.
    codes
        Type code (``0 .. n_types - 1``) of each cell.
    n_types
        Number of cell types.
    per_library
        Divide each cell's values by its total (its library size) first.
    block_rows
        Rows per read (about 32 MiB of float32 when ``None``).

    Returns
    -------
    ``(counts, means, squares, totals)``: cells per type ``(n_types,)``; means and sums of
    squared deviations from them per type and gene ``(n_types, n_genes)``, float64; and the
    total of each cell ``(n_cells,)``.
    """
    codes = np.asarray(codes, dtype=np.int64)
    n_genes = matrix.shape[1]
    counts = np.zeros(n_types)
    means, squares = np.zeros((n_types, n_genes)), np.zeros((n_types, n_genes))
    totals = np.empty(matrix.shape[0])
    for rows, block in row_blocks(matrix, block_rows):
        block_codes = codes[rows]
        totals[rows] = np.asarray(block.sum(axis=1), dtype=np.float64).ravel()
        if sp.issparse(block):
            block = sp.csr_matrix(block, dtype=np.float64, copy=True)
            block.sum_duplicates()
            if per_library:
                block.data /= np.repeat(totals[rows], np.diff(block.indptr))
            block_counts, block_means, block_squares = _sparse_moments(block, block_codes, n_types)
        else:
            block = np.asarray(block, dtype=np.float64)
            if per_library:
                block = block / totals[rows][:, None]
            block_counts, block_means, block_squares = _dense_moments(block, block_codes, n_types)
        merged = counts + block_counts
        present = block_counts > 0
        share = np.divide(block_counts, merged, out=np.zeros(n_types), where=present)[:, None]
        delta = block_means - means
        squares += block_squares + delta**2 * (counts[:, None] * share)
        means += delta * share
        counts = merged
    return counts, means, squares, totals


def _sparse_moments(
    block: sp.csr_matrix, codes: np.ndarray, n_types: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Moments of a CSR block from its stored entries alone (nothing densified but the sums).

    The squared deviations from the block's means are summed over the stored entries and
    added, for the entries not stored, as their number times the squared mean: no difference
    of large sums, so large values with a small spread keep their digits.
    """
    n_genes = block.shape[1]
    counts = np.bincount(codes, minlength=n_types).astype(np.float64)
    entry_rows = np.repeat(np.arange(block.shape[0]), np.diff(block.indptr))
    cell = codes[entry_rows] * n_genes + block.indices  # (type, gene) of each stored entry
    size = n_types * n_genes
    sums = np.bincount(cell, weights=block.data, minlength=size).reshape(n_types, n_genes)
    means = sums / np.maximum(counts, 1)[:, None]
    deviations = (block.data - means.ravel()[cell]) ** 2
    squares = np.bincount(cell, weights=deviations, minlength=size).reshape(n_types, n_genes)
    stored = np.bincount(cell, minlength=size).reshape(n_types, n_genes)
    return counts, means, squares + (counts[:, None] - stored) * means**2


def _dense_moments(
    block: np.ndarray, codes: np.ndarray, n_types: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Moments of a dense block, each type's deviations from its block mean."""
    counts = np.zeros(n_types)
    means, squares = np.zeros((n_types, block.shape[1])), np.zeros((n_types, block.shape[1]))
    for code in np.unique(codes):
        rows = block[codes == code]
        counts[code] = len(rows)
        means[code] = rows.mean(axis=0)
        squares[code] = ((rows - means[code]) ** 2).sum(axis=0)
    return counts, means, squares

"""Log-normalisation of counts (scanpy's ``normalize_total`` then ``log1p``), as arrays."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

TARGET_SUM = 1e4
"""Counts per cell after normalisation, before ``log1p`` (as ``scanpy.pp.normalize_total``)."""


def log_normalize_counts(counts: np.ndarray | sp.spmatrix) -> np.ndarray | sp.csr_matrix:
    """Return ``log1p`` of counts scaled to :data:`TARGET_SUM` per cell (sparse stays sparse).

    Parameters
    ----------
    counts
        Cells x genes counts, dense or sparse.

    Returns
    -------
    The log-normalised matrix (float64), CSR when the input is sparse.
    """
    totals = np.asarray(counts.sum(axis=1), dtype=np.float64).ravel()
    if np.any(totals <= 0):
        raise ValueError(
            f"{int(np.sum(totals <= 0))} cells have no counts; drop them before interpreting "
            f"(e.g. scanpy.pp.filter_cells(adata, min_counts=1))."
        )
    scale = TARGET_SUM / totals
    if sp.issparse(counts):
        normalized = sp.csr_matrix(counts, dtype=np.float64)
        normalized = sp.csr_matrix(sp.diags(scale) @ normalized)
        normalized.data = np.log1p(normalized.data)
        return normalized
    return np.log1p(np.asarray(counts, dtype=np.float64) * scale[:, None])

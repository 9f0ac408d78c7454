"""Sparse count matrices prepared once for the row slicing of minibatches and EM chunks."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def csr_with_one_index_dtype(matrix: sp.csr_matrix) -> sp.csr_matrix:
    """Give ``indptr`` and ``indices`` one integer type, once, for fast row slicing.

    scipy converts both index arrays to a common type on every row slice when they differ (an
    ``int64`` ``indptr`` with ``int32`` ``indices``, as some writers store them), which costs a
    pass over all stored values per minibatch. The arrays are replaced on this matrix object
    only; the user's matrix keeps its own.

    Parameters
    ----------
    matrix
        A CSR matrix.

    Returns
    -------
    ``matrix`` itself when its index arrays share a type; otherwise a CSR matrix on the same
    ``data`` whose index arrays are both ``int32`` (``int64`` when an index needs it).
    """
    if matrix.indptr.dtype == matrix.indices.dtype:
        return matrix
    # int32 when every index fits (then only indptr, one entry per row, is converted)
    fits = max(matrix.nnz, *matrix.shape) <= np.iinfo(np.int32).max
    common = np.int32 if fits else np.int64
    converted = sp.csr_matrix(matrix.shape, dtype=matrix.dtype)
    converted.data = matrix.data
    converted.indices = matrix.indices.astype(common, copy=False)
    converted.indptr = matrix.indptr.astype(common, copy=False)
    return converted

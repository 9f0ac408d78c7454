"""Rows of a cells x genes matrix read in pieces, wherever the matrix lives.

One reader for every place that touches the counts: in-memory arrays (numpy, scipy sparse),
AnnData opened ``backed="r"`` (anndata's sparse datasets, h5py/zarr arrays) and lazy,
dask-backed matrices (:func:`anndata.experimental.read_lazy`, or any :class:`dask.array.Array`).
Nothing here ever holds an out-of-core matrix whole, and nothing ever writes to it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import scipy.sparse as sp
from anndata.abc import CSCDataset, CSRDataset

# Rows per read when a caller does not choose: 2**23 cells x genes entries, i.e. 4,096 cells of
# 2,000 genes (32 MiB as float32 when dense).
_ENTRIES_PER_BLOCK = 2**23
# Rows this far apart are read in one range with those between them (a range of n rows reads
# in about the time of n / 30 single-row reads from an HDF5 file).
_MAX_GAP = 16

CSC_ON_DISK = (
    "The counts are a CSC matrix on disk, whose rows can only be read column by column (the "
    "whole file for every minibatch). Store them as CSR: read the file into memory, set "
    "`adata.X = adata.X.tocsr()` and write it again."
)


def is_dask_array(matrix: Any) -> bool:
    """Whether ``matrix`` is a :class:`dask.array.Array` (without importing dask)."""
    return type(matrix).__module__.startswith("dask.array")


def is_in_memory(matrix: Any) -> bool:
    """Whether ``matrix`` is a numpy array or a scipy sparse matrix held in memory.

    Parameters
    ----------
    matrix
        A cells x genes matrix.

    Returns
    -------
    ``False`` for backed (``CSRDataset``, h5py/zarr array) and dask-backed matrices.
    """
    return isinstance(matrix, np.ndarray) or sp.issparse(matrix)


def default_block_rows(n_columns: int) -> int:
    """Rows per read that keep one dense block near 32 MiB of float32."""
    return max(1, _ENTRIES_PER_BLOCK // max(1, n_columns))


def _in_memory(part: Any) -> np.ndarray | sp.csr_matrix:
    if is_dask_array(part):
        part = part.compute()
    return sp.csr_matrix(part) if sp.issparse(part) else np.asarray(part)


def _sorted_read(matrix: Any, rows: np.ndarray) -> np.ndarray | sp.csr_matrix:
    """Read ``rows`` (any order, repeats allowed) from a store that reads ranges fastest.

    Rows are read as few contiguous ranges (runs of rows less than ``_MAX_GAP`` apart, gaps
    included), which costs far less than one read per row; rows scattered more thinly than
    that are read with one fancy index.
    """
    if not len(rows):
        return _in_memory(matrix[0:0])
    unique, inverse = np.unique(rows, return_inverse=True)
    runs = np.split(unique, np.flatnonzero(np.diff(unique) > _MAX_GAP) + 1)
    if len(runs) > len(unique) // 8 + 1:
        part = _in_memory(matrix[unique])
    else:
        parts = [_in_memory(matrix[int(run[0]) : int(run[-1]) + 1])[run - run[0]] for run in runs]
        part = sp.vstack(parts, format="csr") if sp.issparse(parts[0]) else np.concatenate(parts)
    return part[inverse]


def read_rows(matrix: Any, rows: slice | np.ndarray) -> np.ndarray | sp.csr_matrix:
    """Read some rows of ``matrix`` into memory, in the order asked for.

    Parameters
    ----------
    matrix
        numpy array, scipy sparse matrix, anndata backed sparse dataset, h5py/zarr array or
        dask array.
    rows
        A slice or integer row indices (any order; repeats allowed).

    Returns
    -------
    A numpy array (dense inputs) or a scipy CSR matrix (sparse inputs).
    """
    if isinstance(matrix, CSCDataset):
        raise TypeError(CSC_ON_DISK)
    if isinstance(rows, slice):
        return _in_memory(matrix[rows])
    if is_in_memory(matrix):
        return _in_memory(matrix[np.asarray(rows)])
    return _sorted_read(matrix, np.asarray(rows, dtype=np.int64))  # already in memory


class _ColumnSubset:
    """Some columns of a matrix on disk, read row by row with the rows asked for.

    Reading rows ``rows`` returns ``matrix[rows][:, columns]`` in memory, so that
    :func:`read_rows` and :func:`row_blocks` read a backed matrix's columns without holding it.
    """

    def __init__(self, matrix: Any, columns: np.ndarray):
        self.matrix, self.columns = matrix, columns
        self.shape = (matrix.shape[0], len(columns))

    def __getitem__(self, rows: slice | np.ndarray) -> np.ndarray | sp.csr_matrix:
        return _in_memory(self.matrix[rows])[:, self.columns]


def select_columns(matrix: Any, columns: np.ndarray) -> Any:
    """Return the columns ``columns`` of ``matrix``, as a matrix every reader here reads.

    Parameters
    ----------
    matrix
        Any matrix :func:`read_rows` reads.
    columns
        Integer column indices.

    Returns
    -------
    A copy of the columns for a matrix in memory, a lazy dask array for a dask one, and a view
    that reads the columns one block of rows at a time for a backed one (never held whole).
    """
    columns = np.asarray(columns, dtype=np.int64)
    if isinstance(matrix, CSCDataset):
        raise TypeError(CSC_ON_DISK)
    if is_in_memory(matrix) or is_dask_array(matrix):
        return matrix[:, columns]
    return _ColumnSubset(matrix, columns)


def row_blocks(
    matrix: Any, block_rows: int | None = None
) -> Iterator[tuple[slice, np.ndarray | sp.csr_matrix]]:
    """Yield ``(rows, block)`` over consecutive row blocks of ``matrix``, read one at a time.

    Parameters
    ----------
    matrix
        Any matrix :func:`read_rows` reads.
    block_rows
        Rows per block (:func:`default_block_rows` when ``None``). A dask array is read along
        its own row chunks, merged up to about this many rows.

    Yields
    ------
    The block's row slice and its rows in memory (numpy or CSR).
    """
    n_rows, n_columns = matrix.shape
    block_rows = block_rows or default_block_rows(n_columns)
    if is_dask_array(matrix):
        edges = np.concatenate([[0], np.cumsum(matrix.chunks[0])])
        starts = [0]
        for edge in edges[1:-1]:
            if edge - starts[-1] >= block_rows:
                starts.append(int(edge))
        bounds = [*starts, n_rows]
    else:
        bounds = [*range(0, n_rows, block_rows), n_rows]
    for start, stop in zip(bounds[:-1], bounds[1:], strict=True):
        rows = slice(start, stop)
        yield rows, read_rows(matrix, rows)


def stored_values(matrix: Any, block_rows: int | None = None) -> Iterator[np.ndarray]:
    """Yield the stored values of ``matrix`` in pieces (all values of a dense matrix).

    A sparse matrix's values are read straight from its ``data`` array where it has one, so
    no block is built as a matrix.

    Parameters
    ----------
    matrix
        Any matrix :func:`read_rows` reads.
    block_rows
        Rows per piece for dense and dask inputs.

    Yields
    ------
    1-D or 2-D arrays of stored values.
    """
    if sp.issparse(matrix) or isinstance(matrix, CSRDataset | CSCDataset):
        data = matrix.data if sp.issparse(matrix) else matrix.group["data"]
        step = default_block_rows(1)
        for start in range(0, data.shape[0], step):
            yield np.asarray(data[start : start + step])
        return
    for _, block in row_blocks(matrix, block_rows):
        yield block.data if sp.issparse(block) else block


def row_sums(matrix: Any, block_rows: int | None = None) -> np.ndarray:
    """Sum of each row of ``matrix`` (float64), read block by block.

    Parameters
    ----------
    matrix
        Any matrix :func:`read_rows` reads.
    block_rows
        Rows per block.

    Returns
    -------
    Array of shape ``(n_rows,)``.
    """
    if is_in_memory(matrix):
        return np.asarray(matrix.sum(axis=1), dtype=np.float64).ravel()
    totals = np.empty(matrix.shape[0], dtype=np.float64)
    for rows, block in row_blocks(matrix, block_rows):
        totals[rows] = np.asarray(block.sum(axis=1), dtype=np.float64).ravel()
    return totals

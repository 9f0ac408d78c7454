"""Passes over the row blocks of a count matrix: here, or as dask tasks for a dask array.

A pass applies a function to consecutive pieces of rows (the counts of the piece and the
matching rows of per-cell arrays) and either sums the results (the sufficient statistics of
EM) or stacks them (per-cell outputs). Matrices held in memory are sliced; backed matrices
(``backed="r"``) are read one block at a time with :func:`lucidvi._matrix_rows.row_blocks`;
for a :class:`dask.array.Array` every row block becomes one task (``dask.array.blockwise``)
and the partial sums are added by ``dask.array``'s tree reduction, so the pass runs wherever
dask runs: its threads, or the :class:`distributed.Client` the user has opened.

Whatever the matrix, the pieces are the same: rows ``[k * piece_rows, (k + 1) * piece_rows)``
(a dask array's row blocks are first moved to the nearest piece boundaries). A function of a
piece then sees the same values everywhere, and a float32 pass gives the same sums (up to the
float64 order of adding the pieces) in memory, backed or on dask, however the dask array was
chunked.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from lucidvi._matrix_rows import default_block_rows, is_dask_array, is_in_memory, row_blocks

#: ``function(counts, *per_cell) -> array``: counts of some rows (numpy or CSR) and the same rows
#: of each per-cell array.
BlockFunction = Callable[..., np.ndarray | torch.Tensor]


def row_pieces(matrix: Any, piece_rows: int) -> Iterator[tuple[slice, np.ndarray | sp.csr_matrix]]:
    """Yield ``(rows, counts)`` over consecutive pieces of at most ``piece_rows`` rows.

    A matrix in memory is sliced piece by piece. Any other is read in blocks of whole pieces
    (about 32 MiB dense, see :func:`~lucidvi._matrix_rows.default_block_rows`; a dask array
    along its chunks, moved to piece boundaries), so that a file is not read in many small
    reads, and each block is split into pieces.

    Parameters
    ----------
    matrix
        Any matrix :func:`~lucidvi._matrix_rows.read_rows` reads.
    piece_rows
        Rows per piece.

    Yields
    ------
    The piece's row slice and its counts in memory (numpy or CSR).
    """
    n_rows, n_columns = matrix.shape
    if is_in_memory(matrix):
        for start in range(0, n_rows, piece_rows):
            rows = slice(start, min(start + piece_rows, n_rows))
            yield rows, matrix[rows]
        return
    if is_dask_array(matrix):
        matrix = _on_piece_boundaries(matrix, piece_rows)
    block_rows = piece_rows * max(1, default_block_rows(n_columns) // piece_rows)
    for rows, block in row_blocks(matrix, block_rows):
        for start, piece in _split(block, piece_rows):
            yield slice(rows.start + start, rows.start + start + piece.shape[0]), piece


def _on_piece_boundaries(matrix, piece_rows: int):
    """Rechunk a dask array to row blocks of whole pieces and one block of columns.

    Each boundary between row blocks moves to the nearest multiple of ``piece_rows``; blocks
    left without a piece merge into their neighbours.
    """
    n_rows = matrix.shape[0]
    edges = np.cumsum(matrix.chunks[0])[:-1]
    edges = np.unique(np.round(edges / piece_rows).astype(np.int64) * piece_rows)
    bounds = [0, *edges[(edges > 0) & (edges < n_rows)].tolist(), n_rows]
    return matrix.rechunk({0: tuple(np.diff(bounds).tolist()), 1: -1})


def _split(block, piece_rows: int) -> Iterator[tuple[int, Any]]:
    """Yield ``(offset, rows)`` over the pieces of ``block`` (no copy of a numpy block)."""
    for start in range(0, block.shape[0], piece_rows):
        yield start, block[start : start + piece_rows]


def _as_numpy(values: np.ndarray | torch.Tensor) -> np.ndarray:
    """Return a function's result as a float64 numpy array."""
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    return np.asarray(values, dtype=np.float64)


def sum_over_row_blocks(
    function: BlockFunction,
    matrix: Any,
    *per_cell: np.ndarray,
    size: int,
    piece_rows: int,
) -> np.ndarray:
    """Sum ``function`` over pieces of rows of ``matrix``.

    Parameters
    ----------
    function
        Called as ``function(counts, *rows_of_per_cell)``; returns ``size`` values (numpy or
        torch). Its sum over the pieces is returned. For a dask matrix it is shipped once to
        the workers, so it must pickle (a module-level function, or an object whose pickled
        state is small).
    matrix
        Cells x genes, any kind :func:`~lucidvi._matrix_rows.read_rows` reads.
    *per_cell
        1-D or 2-D arrays with one row per cell, cut like the matrix.
    size
        Number of values ``function`` returns.
    piece_rows
        Rows per call of ``function``.

    Returns
    -------
    The sum, a float64 array of shape ``(size,)``.
    """
    if is_dask_array(matrix):
        return _dask_pass(function, matrix, per_cell, piece_rows, size=size)
    total = None
    for rows, counts in row_pieces(matrix, piece_rows):
        values = function(counts, *(array[rows] for array in per_cell))
        total = values if total is None else total + values
    return np.zeros(size) if total is None else _as_numpy(total).reshape(size)


def map_over_row_blocks(
    function: BlockFunction,
    matrix: Any,
    *per_cell: np.ndarray,
    width: int,
    piece_rows: int,
) -> np.ndarray:
    """Stack ``function``'s per-cell results over pieces of rows of ``matrix``.

    Parameters
    ----------
    function
        Called as in :func:`sum_over_row_blocks`; returns ``(rows in the piece, width)`` values.
    matrix
        Cells x genes, any kind :func:`~lucidvi._matrix_rows.read_rows` reads.
    *per_cell
        1-D or 2-D arrays with one row per cell, cut like the matrix.
    width
        Number of values per cell.
    piece_rows
        Rows per call of ``function``.

    Returns
    -------
    A float64 array of shape ``(n_cells, width)``.
    """
    if is_dask_array(matrix):
        return _dask_pass(function, matrix, per_cell, piece_rows, width=width)
    result = np.empty((matrix.shape[0], width), dtype=np.float64)
    for rows, counts in row_pieces(matrix, piece_rows):
        result[rows] = _as_numpy(function(counts, *(array[rows] for array in per_cell)))
    return result


def _block_pass(
    function: BlockFunction,
    piece_rows: int,
    size: int | None,
    width: int | None,
    counts,
    *per_cell: np.ndarray,
) -> np.ndarray:
    """One dask task: ``function`` over the pieces of one row block, summed or stacked.

    Returns the sum as a ``(1, size)`` array when ``size`` is given, else the stacked
    ``(rows, width)`` results.
    """
    if sp.issparse(counts):
        counts = sp.csr_matrix(counts)
    total, parts = np.zeros((1, size or 0)), [np.zeros((0, width or 0))]
    for start, piece in _split(counts, piece_rows):
        rows = slice(start, start + piece.shape[0])
        values = _as_numpy(function(piece, *(array[rows] for array in per_cell)))
        if size is not None:
            total += values.reshape(1, size)
        else:
            parts.append(values.reshape(-1, width))
    return total if size is not None else np.concatenate(parts)


def _dask_pass(
    function: BlockFunction,
    matrix,
    per_cell: tuple[np.ndarray, ...],
    piece_rows: int,
    size: int | None = None,
    width: int | None = None,
) -> np.ndarray:
    """Run a pass as ``dask.array`` tasks, one per row block; ``size`` for sums, else ``width``."""
    import dask
    import dask.array as da

    matrix = _on_piece_boundaries(matrix, piece_rows)  # a task cuts the pieces of memory's
    row_chunks = matrix.chunks[0]
    arguments = []
    for position, array in enumerate(per_cell):
        array = np.asarray(array)
        index = "i" + ("abcdefgh"[position] if array.ndim == 2 else "")  # columns: own index
        chunks = (row_chunks, *array.shape[1:])
        arguments += [da.from_array(array, chunks=chunks, name=False), index]
    shared = dask.delayed(function, traverse=False)  # one copy in the graph, not one per task
    reduce = size is not None
    blocks = da.blockwise(
        _block_pass,
        "ik",
        shared,
        None,
        piece_rows,
        None,
        size,
        None,
        width,
        None,
        matrix,
        "ij",
        *arguments,
        new_axes={"k": size if reduce else width},
        adjust_chunks={"i": 1} if reduce else None,
        concatenate=True,
        dtype=np.float64,
        meta=np.empty((0, 0), dtype=np.float64),
    )
    if reduce:
        return blocks.sum(axis=0).compute()
    return blocks.compute()

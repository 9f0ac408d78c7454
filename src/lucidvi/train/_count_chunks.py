"""The cells of batch EM in row chunks: counts, log size factors and batches as tensors."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from lucidvi._matrix_rows import is_in_memory

from ._dask_blocks import BlockFunction, map_over_row_blocks, row_pieces, sum_over_row_blocks
from ._sparse import csr_with_one_index_dtype

# Entries (cells x genes) per chunk: 2**21 float32 values are 8 MiB, so the per-cluster
# temporaries of a chunk stay small, while 100,000 cells of 2,000 genes take about 100 chunks,
# whose Python overhead is negligible.
_ELEMENTS_PER_CHUNK = 2**21


class CountChunks:
    """Row chunks of a count matrix with each cell's log size factor and batch, as tensors.

    The counts are never copied whole: a matrix in memory is sliced chunk by chunk, a backed
    one (``backed="r"``) is read a block at a time, and a dask array is left to dask (its passes
    in :meth:`sum` and :meth:`map` are dask tasks, one per row block).

    Parameters
    ----------
    counts
        Counts, ``n_cells x n_genes``: numpy, scipy sparse, an anndata backed dataset or a dask
        array.
    log_size
        Log size factor of each cell, shape ``(n_cells,)``.
    batch_index
        Batch of each cell (integers from 0), shape ``(n_cells,)``.
    device
        Device the chunks are moved to.
    dtype
        Floating-point type of the chunks (the module's).
    """

    def __init__(
        self,
        counts: Any,
        log_size: np.ndarray,
        batch_index: np.ndarray,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
    ):
        if sp.issparse(counts):
            counts = csr_with_one_index_dtype(sp.csr_matrix(counts))
        elif is_in_memory(counts):
            counts = np.asarray(counts)
        self.counts = counts
        self.log_size = np.asarray(log_size, dtype=np.float64).reshape(-1)
        self.batch_index = np.asarray(batch_index, dtype=np.int64).reshape(-1)
        self.device = torch.device(device)
        self.dtype = dtype
        self.n_cells, self.n_genes = self.counts.shape
        self.chunk_size = max(1, _ELEMENTS_PER_CHUNK // self.n_genes)

    def __iter__(self) -> Iterator[tuple[slice, torch.Tensor, torch.Tensor, torch.Tensor]]:
        """Yield ``(rows, x, log_size, batch_index)``; ``x`` dense, on the device."""
        for rows, part in row_pieces(self.counts, self.chunk_size):
            x, log_size, batch = chunk_tensors(
                part, self.log_size[rows], self.batch_index[rows], self.device, self.dtype
            )
            yield rows, x, log_size, batch

    def sum(self, function: BlockFunction, *per_cell: np.ndarray, size: int) -> np.ndarray:
        """Sum ``function(counts, log_size, batch_index, *per_cell)`` over the chunks.

        Parameters
        ----------
        function
            Takes a chunk's counts (numpy or CSR), its cells' log size factors, batches and
            rows of ``per_cell``; returns ``size`` values. It must pickle for dask counts (see
            :func:`~lucidvi.train._dask_blocks.sum_over_row_blocks`).
        *per_cell
            More arrays with one row per cell.
        size
            Number of values ``function`` returns.

        Returns
        -------
        The float64 sum, shape ``(size,)``.
        """
        return sum_over_row_blocks(
            function,
            self.counts,
            self.log_size,
            self.batch_index,
            *per_cell,
            size=size,
            piece_rows=self.chunk_size,
        )

    def map(self, function: BlockFunction, *per_cell: np.ndarray, width: int) -> np.ndarray:
        """Stack ``function(counts, log_size, batch_index, *per_cell)`` over the chunks.

        Parameters
        ----------
        function
            As in :meth:`sum`, returning ``(cells in the chunk, width)`` values.
        *per_cell
            More arrays with one row per cell.
        width
            Number of values per cell.

        Returns
        -------
        A float64 array of shape ``(n_cells, width)``.
        """
        return map_over_row_blocks(
            function,
            self.counts,
            self.log_size,
            self.batch_index,
            *per_cell,
            width=width,
            piece_rows=self.chunk_size,
        )


def chunk_tensors(
    counts: np.ndarray | sp.spmatrix,
    log_size: np.ndarray,
    batch_index: np.ndarray,
    device: torch.device,
    dtype: torch.dtype,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Return a chunk as tensors: dense counts ``(n, G)``, log size factors, batches ``(n, 1)``."""
    part = counts.toarray() if sp.issparse(counts) else np.asarray(counts)
    x = torch.as_tensor(part, dtype=dtype, device=device)
    log_size = torch.as_tensor(log_size, dtype=dtype, device=device)[:, None]
    batch = torch.as_tensor(batch_index, device=device)[:, None]
    return x, log_size, batch

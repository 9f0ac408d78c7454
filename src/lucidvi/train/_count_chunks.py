"""The cells of batch EM in row chunks: counts, log size factors and batches as tensors."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import scipy.sparse as sp
import torch

from ._sparse import csr_with_one_index_dtype

# Entries (cells x genes) per chunk: 2**21 float32 values are 8 MiB, so the per-cluster
# temporaries of a chunk stay small, while 100,000 cells of 2,000 genes take about 100 chunks,
# whose Python overhead is negligible.
_ELEMENTS_PER_CHUNK = 2**21


class CountChunks:
    """Row chunks of a count matrix with each cell's log size factor and batch, as tensors.

    Parameters
    ----------
    counts
        Counts, dense or scipy sparse, ``n_cells x n_genes``.
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
        counts: np.ndarray | sp.spmatrix,
        log_size: np.ndarray,
        batch_index: np.ndarray,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
    ):
        self.counts = (
            csr_with_one_index_dtype(sp.csr_matrix(counts))
            if sp.issparse(counts)
            else np.asarray(counts)
        )
        self.log_size = np.asarray(log_size, dtype=np.float64).reshape(-1)
        self.batch_index = np.asarray(batch_index, dtype=np.int64).reshape(-1)
        self.device = torch.device(device)
        self.dtype = dtype
        self.n_cells, self.n_genes = self.counts.shape
        self.chunk_size = max(1, _ELEMENTS_PER_CHUNK // self.n_genes)

    def __iter__(self) -> Iterator[tuple[slice, torch.Tensor, torch.Tensor, torch.Tensor]]:
        """Yield ``(rows, x, log_size, batch_index)``; ``x`` dense, on the device."""
        for start in range(0, self.n_cells, self.chunk_size):
            rows = slice(start, min(start + self.chunk_size, self.n_cells))
            part = self.counts[rows]
            part = part.toarray() if sp.issparse(part) else part
            x = torch.as_tensor(np.asarray(part), dtype=self.dtype, device=self.device)
            log_size = torch.as_tensor(self.log_size[rows], dtype=self.dtype, device=self.device)
            log_size = log_size[:, None]
            batch = torch.as_tensor(self.batch_index[rows], device=self.device)[:, None]
            yield rows, x, log_size, batch

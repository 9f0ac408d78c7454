"""The genes that drive :class:`lucidvi.model.MixtureVI`'s clustering: binomial deviance.

Most of a transcriptome's genes do not separate cell types, yet each adds its noise to every
cell's log-likelihood under every component; a few thousand informative genes carry the
clusters. They are ranked by the binomial deviance of Townes et al. (2019, "Feature selection
and dimension reduction for single-cell RNA-Seq based on a multinomial model", Genome Biology
20:295): how far a gene's counts are from a constant share of each cell's total, computed on
the counts themselves (no normalisation, no pseudo-count).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scvi import REGISTRY_KEYS

from lucidvi._matrix_rows import row_blocks

logger = logging.getLogger(__name__)

# Largest share of a batch's counts a gene may hold in the deviance (a gene with all of them
# has p = 1 and log(1 - p) = -inf); no real gene comes near it.
_MAX_SHARE = 1.0 - 1e-12


def binomial_deviance(counts: Any, batch_index: np.ndarray | None = None) -> np.ndarray:
    r"""Binomial deviance of every gene against a constant share of each cell's counts.

    With ``n_i`` cell ``i``'s total count and ``p_bj`` gene ``j``'s share of all counts of
    batch ``b`` (the null model: every cell of a batch draws the same share of its counts from
    the gene),

    .. math::

        D_j = 2 \sum_i \left[x_{ij} \log \frac{x_{ij}}{n_i p_{bj}}
            + (n_i - x_{ij}) \log \frac{n_i - x_{ij}}{n_i (1 - p_{bj})}\right].

    Per-batch shares, with the deviance summed over the batches, keep genes that differ between
    batches only from ranking high. Two passes over the rows, one block
    at a time: a matrix on disk is never held whole. A cell's zeros contribute
    ``-n_i log(1 - p_bj)`` together, so only the stored values are visited one by one.

    Parameters
    ----------
    counts
        Counts ``n_cells x n_genes``: numpy, scipy sparse, backed or dask.
    batch_index
        Batch of each cell (integers from 0); one batch when ``None``.

    Returns
    -------
    ``D_j`` per gene (float64, ``>= 0``; 0 for a gene without counts).
    """
    n_cells, n_genes = counts.shape
    batch = np.zeros(n_cells, np.int64) if batch_index is None else np.asarray(batch_index)
    batch = batch.reshape(-1).astype(np.int64)
    n_batch = int(batch.max()) + 1 if n_cells else 1
    totals = np.zeros(n_cells)
    gene_sums = np.zeros((n_batch, n_genes))
    for rows, block in row_blocks(counts):
        block = _float_rows(block)
        totals[rows] = np.asarray(block.sum(axis=1)).ravel()
        for b in np.unique(batch[rows]):
            gene_sums[b] += np.asarray(block[batch[rows] == b].sum(axis=0)).ravel()
    batch_totals = np.bincount(batch, weights=totals, minlength=n_batch)
    share = np.clip(gene_sums / np.maximum(batch_totals, 1.0)[:, None], 0.0, _MAX_SHARE)
    log_rest = np.log1p(-share)  # log(1 - p_bj)
    deviance = -(batch_totals[:, None] * log_rest).sum(0)  # every entry as if it were a zero
    for rows, block in row_blocks(counts):
        block = sp.coo_matrix(_float_rows(block))
        cell = block.row + rows.start
        x, n = block.data, totals[cell]
        b, gene = batch[cell], block.col
        rest = n - x
        # the stored entry's own terms, less the zero's -n log(1 - p) counted above
        terms = x * np.log(x / (n * share[b, gene])) + x * log_rest[b, gene]
        terms += np.where(rest > 0, rest * np.log(np.maximum(rest, 1.0) / n), 0.0)
        deviance += np.bincount(gene, weights=terms, minlength=n_genes)
    return np.maximum(2.0 * deviance, 0.0)


def _float_rows(block: np.ndarray | sp.spmatrix) -> sp.csr_matrix:
    """Return a block of rows as a float64 CSR matrix without stored zeros."""
    matrix = sp.csr_matrix(block, dtype=np.float64)
    matrix.eliminate_zeros()
    return matrix


def informative_genes(
    counts: Any, n_top_genes: int, batch_index: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Find the ``n_top_genes`` genes of highest binomial deviance, in column order.

    Parameters
    ----------
    counts
        Counts ``n_cells x n_genes`` (see :func:`binomial_deviance`).
    n_top_genes
        Number of genes to keep (all when it is at least the number of genes).
    batch_index
        Batch of each cell, or ``None``.

    Returns
    -------
    ``(columns, deviance)``: the sorted column indices kept and every gene's deviance.
    """
    deviance = binomial_deviance(counts, batch_index)
    ranked = np.argsort(-deviance, kind="stable")
    return np.sort(ranked[: min(n_top_genes, len(ranked))]), deviance


class GeneSelectionMixin:
    """The genes a :class:`~lucidvi.model.MixtureVI` models per component."""

    def _choose_genes(self, n_top_genes: int | None) -> np.ndarray | None:
        """Rank the genes by binomial deviance; the columns kept, or ``None`` for all genes."""
        genes = self.adata.var_names
        if n_top_genes is not None and int(n_top_genes) < 1:
            raise ValueError(f"n_top_genes must be at least 1 or None, got {n_top_genes}.")
        if n_top_genes is None or int(n_top_genes) >= len(genes):
            self.informative_genes_, self.gene_deviance_ = genes.copy(), None
            return None
        manager = self.get_anndata_manager(self.adata, required=True)
        counts = manager.get_from_registry(REGISTRY_KEYS.X_KEY)
        batch = np.asarray(manager.get_from_registry(REGISTRY_KEYS.BATCH_KEY)).reshape(-1)
        logger.info("Ranking %d genes by binomial deviance.", len(genes))
        columns, deviance = informative_genes(counts, int(n_top_genes), batch)
        self.informative_genes_ = genes[columns]
        self.gene_deviance_ = pd.Series(deviance, index=genes, name="deviance")
        return columns

    def _modelled_columns(self) -> np.ndarray | None:
        """Columns of the registered counts modelled per component (``None``: all)."""
        genes = self.module.genes
        return None if genes.numel() == 0 else genes.cpu().numpy()

    def _background_columns(self) -> np.ndarray:
        """Columns of the registered counts in the shared background (empty: none)."""
        modelled = self._modelled_columns()
        if modelled is None:
            return np.empty(0, dtype=np.int64)
        return np.setdiff1d(np.arange(self.summary_stats.n_vars), modelled)

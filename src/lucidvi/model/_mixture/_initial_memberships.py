"""Starting memberships for the mixture's EM: k-means, Leiden, random cells or given labels."""

from __future__ import annotations

import logging
from functools import cached_property
from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData

from lucidvi._matrix_rows import default_block_rows, is_in_memory, read_rows
from lucidvi.train import map_over_row_blocks

logger = logging.getLogger(__name__)

# Principal components behind the "kmeans", "leiden" and "random" starts.
_N_PCS = 30
# Cells the principal axes are fitted to: all cells up to this many; beyond, a random subsample
# of this many, and every cell is then projected onto its axes one block of rows at a time. The
# subsample is the only copy of counts the start makes (50,000 cells of 2,000 genes at 10%
# non-zero: 80 MB), and a population of 0.2% of the cells still has about 100 cells in it.
_PCA_CELLS = 50_000
# k-means starts per "kmeans" start of EM (the lowest within-cluster sum of squares is kept).
# Against one k-means start, the median ARI of MixtureVI's default over five seeds rose on four
# labelled sets (baron_mouse 0.51 -> 0.71, baron_human 0.75 -> 0.84, spectra_immune 0.44 ->
# 0.47, PBMC 0.48 -> 0.50), and EM, starting nearer its optimum, converged sooner.
_KMEANS_STARTS = 10
#: The starts computed from the data; any other ``init`` is an ``obs`` column or an array.
START_METHODS = ("kmeans", "leiden", "random")
#: What ``MixtureVI.train(init=...)`` takes.
Init = Literal["kmeans", "leiden", "random"] | str | np.ndarray
# scanpy's recipe: counts scaled to this total per cell, then log1p.
_TARGET_SUM = 1e4


def log_normalized_pcs(counts, n_pcs: int = _N_PCS, seed: int = 0) -> np.ndarray:
    """Principal components of ``log1p`` counts scaled to 10,000 per cell (scanpy's recipe).

    Up to 50,000 cells, scanpy's PCA of all of them. Beyond, the axes of scanpy's PCA of 50,000
    cells drawn at random, onto which every cell is projected block by block (as dask tasks
    for a dask array), so that the counts are never copied whole.

    Parameters
    ----------
    counts
        Counts ``n_cells x n_genes``: numpy, scipy sparse, backed (``backed="r"``) or dask.
    n_pcs
        Number of components (capped by the data's shape).
    seed
        Seed of the subsample and of the randomised solver.

    Returns
    -------
    Array of shape ``(n_cells, n_pcs)``.
    """
    import scanpy as sc

    n_cells, n_genes = counts.shape
    subsample = n_cells > _PCA_CELLS
    if subsample:
        rng = np.random.default_rng(seed)
        sample = read_rows(counts, np.sort(rng.choice(n_cells, _PCA_CELLS, replace=False)))
    else:
        sample = counts if is_in_memory(counts) else read_rows(counts, slice(None))
    # scanpy normalises in place: copy, so that the caller's counts (often adata.X) stay as given
    if sp.issparse(sample):
        adata = AnnData(sp.csr_matrix(sample, dtype=np.float32, copy=True))
    else:
        adata = AnnData(np.array(sample, dtype=np.float32, copy=True))
    sc.pp.normalize_total(adata, target_sum=_TARGET_SUM)
    sc.pp.log1p(adata)
    if min(adata.shape) < 2:  # too small for a PCA: the log-normalised values themselves
        if not subsample:
            return adata.X.toarray() if sp.issparse(adata.X) else np.asarray(adata.X)
        axes, mean = np.eye(n_genes, dtype=np.float32), np.zeros(n_genes, dtype=np.float32)
    else:
        n_pcs = max(1, min(n_pcs, min(adata.shape) - 1))
        sc.pp.pca(adata, n_comps=n_pcs, random_state=seed)
        if not subsample:
            return adata.obsm["X_pca"]
        axes, mean = adata.varm["PCs"], np.asarray(adata.X.mean(axis=0)).reshape(-1)
    projection = _Projection(np.asarray(axes, dtype=np.float32), mean.astype(np.float32))
    pcs = map_over_row_blocks(
        projection, counts, width=axes.shape[1], piece_rows=default_block_rows(n_genes)
    )
    return pcs.astype(np.float32)


class _Projection:
    """Log-normalised counts of some cells, centred and projected onto principal axes.

    Parameters
    ----------
    axes
        Principal axes, ``(n_genes, n_pcs)``.
    mean
        Mean log-normalised expression the axes were fitted around, ``(n_genes,)``.
    """

    def __init__(self, axes: np.ndarray, mean: np.ndarray):
        self.axes, self.shift = axes, mean @ axes

    def __call__(self, counts) -> np.ndarray:
        """Return the cells' coordinates, ``(n_cells, n_pcs)``."""
        totals = np.asarray(counts.sum(axis=1), dtype=np.float32).reshape(-1)
        scale = _TARGET_SUM / np.where(totals > 0, totals, 1.0)
        if sp.issparse(counts):
            values = sp.csr_matrix(counts, dtype=np.float32, copy=True)
            values.data *= np.repeat(scale, np.diff(values.indptr))
            np.log1p(values.data, out=values.data)
        else:
            values = np.log1p(np.asarray(counts, dtype=np.float32) * scale[:, None])
        return np.asarray(values @ self.axes) - self.shift


def one_hot(labels: np.ndarray, n_clusters: int) -> np.ndarray:
    """Responsibilities of hard assignments ``labels`` in ``0 .. n_clusters - 1``."""
    result = np.zeros((len(labels), n_clusters), dtype=np.float64)
    result[np.arange(len(labels)), labels] = 1.0
    return result


def kmeans_labels(pcs: np.ndarray, n_clusters: int, seed: int) -> np.ndarray:
    """k-means (scikit-learn, k-means++ seeding, the best of 10 starts) on principal components."""
    from sklearn.cluster import KMeans

    return KMeans(n_clusters=n_clusters, n_init=_KMEANS_STARTS, random_state=seed).fit_predict(pcs)


def random_cell_labels(pcs: np.ndarray, n_clusters: int, seed: int) -> np.ndarray:
    """Assign every cell to the nearest of ``n_clusters`` cells drawn at random (cosine)."""
    rng = np.random.default_rng(seed)
    centres = pcs[rng.choice(len(pcs), size=n_clusters, replace=False)]
    unit = pcs / np.maximum(np.linalg.norm(pcs, axis=1, keepdims=True), 1e-12)
    centres = centres / np.maximum(np.linalg.norm(centres, axis=1, keepdims=True), 1e-12)
    return np.argmax(unit @ centres.T, axis=1)


def leiden_labels(pcs: np.ndarray, n_clusters: int, seed: int) -> np.ndarray:
    """Leiden clusters (scanpy, igraph) with the resolution searched to give ``n_clusters``.

    The resolution is bisected on a log scale; if no resolution gives exactly ``n_clusters``
    clusters, the partition with the nearest larger number is used with its smallest
    clusters merged into the cluster with the nearest centroid.
    """
    import scanpy as sc

    adata = AnnData(np.zeros((len(pcs), 1), dtype=np.float32))
    adata.obsm["X_pca"] = pcs
    sc.pp.neighbors(adata, use_rep="X_pca", random_state=seed)

    def partition(resolution: float) -> np.ndarray:
        sc.tl.leiden(
            adata,
            resolution=resolution,
            random_state=seed,
            flavor="igraph",
            n_iterations=2,
            directed=False,
            key_added="_leiden",
        )
        return adata.obs["_leiden"].cat.codes.to_numpy()

    low, high, best = 0.01, 10.0, None
    for _ in range(20):
        resolution = float(np.sqrt(low * high))
        labels = partition(resolution)
        found = len(np.unique(labels))
        if found == n_clusters:
            return labels
        if found < n_clusters:
            low = resolution
        else:
            high = resolution
            if best is None or found < len(np.unique(best)):
                best = labels
    if best is None:
        raise ValueError(
            f"Leiden found fewer than n_clusters={n_clusters} clusters at every resolution up "
            f"to {high:.3g}; use init='kmeans' or fewer clusters."
        )
    return _merge_smallest(best, pcs, n_clusters)


def _merge_smallest(labels: np.ndarray, pcs: np.ndarray, n_clusters: int) -> np.ndarray:
    labels = pd.factorize(labels)[0]
    while labels.max() + 1 > n_clusters:
        sizes = np.bincount(labels)
        smallest = int(np.argmin(sizes))
        centroids = np.stack([pcs[labels == c].mean(0) for c in range(len(sizes))])
        distances = np.linalg.norm(centroids - centroids[smallest], axis=1)
        distances[smallest] = np.inf
        labels[labels == smallest] = int(np.argmin(distances))
        labels = pd.factorize(labels)[0]
    return labels


def labels_from_obs(adata: AnnData, key: str, n_clusters: int) -> np.ndarray:
    """Integer codes of the labels in ``adata.obs[key]``, checked for use as a start."""
    values = adata.obs[key]
    if values.isna().any():
        raise ValueError(
            f"init={key!r}: adata.obs[{key!r}] has {int(values.isna().sum())} missing values. "
            f"Fill them (e.g. with an 'unknown' category) or use init='kmeans'."
        )
    codes, categories = pd.factorize(values, sort=True)
    if len(categories) != n_clusters:
        raise ValueError(
            f"init={key!r} has {len(categories)} distinct labels but the mixture has "
            f"{n_clusters} components: make the model with n_components equal to the number of "
            f"labels."
        )
    return codes


def responsibilities_from_array(values, n_cells: int, n_clusters: int) -> np.ndarray:
    """Check labels (``n_cells``) or memberships (``n_cells x K``); return memberships."""
    array = np.asarray(values)
    if array.ndim == 2:
        if array.shape != (n_cells, n_clusters):
            raise ValueError(
                f"An init array of memberships must have shape ({n_cells}, {n_clusters}), "
                f"got {array.shape}."
            )
        array = array.astype(np.float64)
        if np.any(array < 0) or not np.allclose(array.sum(1), 1.0, atol=1e-4):
            raise ValueError("Init memberships must be non-negative with rows summing to one.")
        return array
    if array.ndim != 1 or len(array) != n_cells:
        raise ValueError(
            f"An init array must hold one label per cell ({n_cells}) or memberships of shape "
            f"({n_cells}, {n_clusters}); got shape {array.shape}."
        )
    if pd.isna(array).any():
        raise ValueError("The init labels have missing values; fill or drop those cells.")
    codes, categories = pd.factorize(array, sort=True)
    if len(categories) != n_clusters:
        raise ValueError(
            f"The init labels have {len(categories)} distinct values but the mixture has "
            f"{n_clusters} components: make the model with n_components equal to the number of "
            f"labels."
        )
    return one_hot(codes, n_clusters)


class InitialMemberships:
    """Starting memberships ``(n_cells, n_clusters)`` for EM, for any K and seed.

    The principal components behind ``"kmeans"``, ``"leiden"`` and ``"random"`` starts are
    computed once, on first use, and shared by all restarts and numbers of clusters.

    Parameters
    ----------
    init
        ``"kmeans"``, ``"leiden"``, ``"random"``, an ``obs`` column of labels, or an array of
        labels or memberships (see :meth:`lucidvi.model.MixtureVI.train`).
    adata
        The cells (for an ``obs`` column).
    counts
        Their counts: numpy, scipy sparse, backed (``backed="r"``) or a dask array.
    seed
        Seed of the principal components' subsample and solver.
    """

    _METHODS = {"kmeans": kmeans_labels, "leiden": leiden_labels, "random": random_cell_labels}

    def __init__(self, init, adata: AnnData, counts, seed: int = 0):
        self.init, self.adata, self.counts, self.seed = init, adata, counts, seed

    @cached_property
    def pcs(self) -> np.ndarray:
        """Principal components of the log-normalised counts (see :func:`log_normalized_pcs`)."""
        return log_normalized_pcs(self.counts, seed=self.seed)

    def __call__(self, n_clusters: int, seed: int = 0) -> np.ndarray:
        """Return memberships for ``n_clusters`` clusters; ``seed`` seeds the randomised starts.

        Returns
        -------
        Array of memberships, rows summing to one.
        """
        init, adata = self.init, self.adata
        if isinstance(init, str) and init in self._METHODS:
            return one_hot(self._METHODS[init](self.pcs, n_clusters, seed), n_clusters)
        if isinstance(init, str):
            if init not in adata.obs.columns:
                raise ValueError(
                    f"init={init!r} is neither 'kmeans', 'leiden', 'random' nor a column of "
                    f"adata.obs (columns: {list(adata.obs.columns)})."
                )
            return one_hot(labels_from_obs(adata, init, n_clusters), n_clusters)
        return responsibilities_from_array(init, adata.n_obs, n_clusters)

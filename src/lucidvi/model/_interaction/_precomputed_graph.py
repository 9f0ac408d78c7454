"""Neighbour slots from a spatial graph stored in ``obsp`` (squidpy's or scanpy's layout)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from anndata import AnnData

from ._spatial_neighbors import NO_NEIGHBOR


@dataclass(frozen=True)
class GraphNeighbors:
    """Each cell's neighbours read from a precomputed graph.

    Attributes
    ----------
    indices
        Row index of each neighbour, nearest first, :data:`NO_NEIGHBOR` in empty slots; shape
        ``(n_cells, n_slots)``.
    distances
        Their distances (``inf`` in empty slots), same shape.
    n_truncated
        Cells with more neighbours in the graph than slots (their nearest ones were kept).
    """

    indices: np.ndarray
    distances: np.ndarray
    n_truncated: int


def graph_keys(adata: AnnData, neighbors_key: str) -> tuple[str, str]:
    """Find the ``obsp`` keys of a graph's connectivities and distances in ``uns[neighbors_key]``.

    Parameters
    ----------
    adata
        The AnnData.
    neighbors_key
        ``uns`` key of the graph's settings, e.g. ``"spatial_neighbors"`` as written by
        :func:`squidpy.gr.spatial_neighbors` with its default ``key_added="spatial"``.

    Returns
    -------
    ``(connectivities_key, distances_key)``.
    """
    settings = adata.uns.get(neighbors_key)
    if not isinstance(settings, dict) or not {"connectivities_key", "distances_key"} <= set(
        settings
    ):
        found = [key for key, value in adata.uns.items() if isinstance(value, dict)]
        found = [key for key in found if "connectivities_key" in adata.uns[key]]
        raise ValueError(
            f"adata.uns[{neighbors_key!r}] does not describe a neighbour graph (a dict with "
            f"'connectivities_key' and 'distances_key'); graphs found: {found}. Build one with "
            f"squidpy.gr.spatial_neighbors(adata, key_added='spatial') and pass "
            f"neighbors_key='spatial_neighbors'."
        )
    keys = settings["connectivities_key"], settings["distances_key"]
    missing = [key for key in keys if key not in adata.obsp]
    if missing:
        raise ValueError(
            f"adata.uns[{neighbors_key!r}] names {missing}, which adata.obsp lacks "
            f"(keys: {list(adata.obsp)})."
        )
    return keys


def graph_neighbors(
    adata: AnnData,
    neighbors_key: str,
    labels: np.ndarray,
    samples: np.ndarray,
    n_neighbors: int,
    radius: float | None = None,
    exclude_same_type: bool = False,
) -> GraphNeighbors:
    """Turn a precomputed spatial graph into nearest-first neighbour slots.

    An edge is a stored non-zero connectivity; its length is read from the distance matrix.
    Self-loops are dropped. Each cell keeps at most ``n_neighbors`` neighbours, nearest first;
    the number of slots is the largest number any cell keeps.

    Parameters
    ----------
    adata
        The AnnData holding the graph.
    neighbors_key
        ``uns`` key of the graph (see :func:`graph_keys`).
    labels
        Cell type of each cell (used with ``exclude_same_type``).
    samples
        Sample of each cell: an edge between samples is an error.
    n_neighbors
        Most neighbours kept per cell.
    radius
        Only edges not longer than this are kept.
    exclude_same_type
        Only neighbours of another type are kept.

    Returns
    -------
    The neighbour slots and how many cells lost neighbours beyond ``n_neighbors``.
    """
    connectivities_key, distances_key = graph_keys(adata, neighbors_key)
    graph = sp.coo_matrix(adata.obsp[connectivities_key])
    shape = (adata.n_obs, adata.n_obs)
    if graph.shape != shape:
        raise ValueError(
            f"adata.obsp[{connectivities_key!r}] has shape {graph.shape}, expected {shape}."
        )
    edge = (graph.data != 0) & (graph.row != graph.col)
    rows, cols = graph.row[edge].astype(np.int64), graph.col[edge].astype(np.int64)
    lengths = np.asarray(sp.csr_matrix(adata.obsp[distances_key])[rows, cols]).ravel()
    if not np.isfinite(lengths).all() or (lengths < 0).any():
        raise ValueError(f"adata.obsp[{distances_key!r}] has negative or non-finite distances.")
    across = samples[rows] != samples[cols]
    if across.any():
        raise ValueError(
            f"The graph in adata.obsp[{connectivities_key!r}] links {int(across.sum())} pairs of "
            f"cells from different samples; build it per sample, e.g. "
            f"squidpy.gr.spatial_neighbors(adata, library_key=<your sample column>)."
        )
    keep = np.ones(len(rows), dtype=bool)
    if exclude_same_type:
        keep &= labels[rows] != labels[cols]
    if radius is not None:
        keep &= lengths <= radius
    rows, cols, lengths = rows[keep], cols[keep], lengths[keep]
    order = np.lexsort((cols, lengths, rows))  # by cell, then nearest first (ties by index)
    rows, cols, lengths = rows[order], cols[order], lengths[order]
    degree = np.bincount(rows, minlength=adata.n_obs)
    starts = np.concatenate([[0], np.cumsum(degree)[:-1]])
    slot = np.arange(len(rows)) - starts[rows]
    kept = slot < n_neighbors
    n_slots = max(int(min(degree.max(initial=0), n_neighbors)), 1)
    indices = np.full((adata.n_obs, n_slots), NO_NEIGHBOR, dtype=np.int64)
    distances = np.full((adata.n_obs, n_slots), np.inf, dtype=np.float32)
    indices[rows[kept], slot[kept]] = cols[kept]
    distances[rows[kept], slot[kept]] = lengths[kept]
    return GraphNeighbors(indices, distances, int((degree > n_neighbors).sum()))

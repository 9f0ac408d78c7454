"""Spatial neighbours of each cell: k nearest or within a radius, never across samples."""

from __future__ import annotations

import numpy as np
from sklearn.neighbors import NearestNeighbors

NO_NEIGHBOR = -1
"""Index that pads a cell's neighbour list when it has fewer neighbours than slots."""


def spatial_neighbors(
    coordinates: np.ndarray,
    labels: np.ndarray,
    samples: np.ndarray,
    n_neighbors: int = 30,
    radius: float | None = None,
    exclude_same_type: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Find each cell's spatial neighbours within its own sample.

    Parameters
    ----------
    coordinates
        Array of shape ``(n_cells, n_dims)``.
    labels
        Cell type of each cell (used with ``exclude_same_type``).
    samples
        Sample (tissue section) of each cell; neighbours never cross samples.
    n_neighbors
        Number of neighbour slots: the ``n_neighbors`` nearest other cells (within ``radius``
        when given).
    radius
        Only cells closer than this count as neighbours; slots beyond them are padded.
    exclude_same_type
        Only cells of other types count as neighbours.

    Returns
    -------
    ``(indices, distances)``, both of shape ``(n_cells, n_neighbors)``, nearest first: row
    indices of the neighbours (:data:`NO_NEIGHBOR` in padded slots) and their Euclidean
    distances (``inf`` in padded slots).
    """
    n_cells = coordinates.shape[0]
    indices = np.full((n_cells, n_neighbors), NO_NEIGHBOR, dtype=np.int64)
    distances = np.full((n_cells, n_neighbors), np.inf, dtype=np.float32)
    for sample in np.unique(samples):
        in_sample = np.flatnonzero(samples == sample)
        for queries, candidates in _query_groups(in_sample, labels, exclude_same_type):
            _fill(
                coordinates,
                queries,
                candidates,
                radius=radius,
                indices=indices,
                distances=distances,
            )
    return indices, distances


def _query_groups(
    in_sample: np.ndarray, labels: np.ndarray, exclude_same_type: bool
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Pairs ``(query cells, candidate neighbours)`` of one sample: one pair, or one per type.

    With ``exclude_same_type``, the cells of each type query the sample's cells of other types;
    otherwise all cells query all (the same array, so that each cell is left out of its own).
    """
    if not exclude_same_type:
        return [(in_sample, in_sample)]
    types = labels[in_sample]
    return [(in_sample[types == t], in_sample[types != t]) for t in np.unique(types)]


def _fill(
    coordinates: np.ndarray,
    queries: np.ndarray,
    candidates: np.ndarray,
    *,
    radius: float | None,
    indices: np.ndarray,
    distances: np.ndarray,
) -> None:
    """Write the nearest ``candidates`` (other than the cell itself) of each query cell."""
    n_slots = indices.shape[1]
    same_pool = queries is candidates
    n_query = min(n_slots + int(same_pool), len(candidates))
    if n_query == 0 or len(queries) == 0:
        return
    tree = NearestNeighbors(n_neighbors=n_query).fit(coordinates[candidates])
    found_distances, found = tree.kneighbors(coordinates[queries])
    found = candidates[found]
    if same_pool:  # drop the cell itself (the first hit, up to ties at distance 0)
        is_self = found == queries[:, None]
        keep = np.where(is_self.any(axis=1, keepdims=True), ~is_self, True)
        keep[~is_self.any(axis=1), -1] = False
        found = found[keep].reshape(len(queries), -1)
        found_distances = found_distances[keep].reshape(len(queries), -1)
    found, found_distances = found[:, :n_slots], found_distances[:, :n_slots]
    if radius is not None:
        outside = found_distances > radius
        found[outside] = NO_NEIGHBOR
        found_distances[outside] = np.inf
    width = found.shape[1]
    indices[queries, :width] = found
    distances[queries, :width] = found_distances


def check_spatial_inputs(
    adata,
    labels_key: str,
    spatial_key: str,
    groups: np.ndarray,
    n_neighbors: int,
    radius: float | None,
    precomputed_graph: bool = False,
) -> np.ndarray:
    """Check coordinates, cell types and neighbour settings; return the coordinates.

    Parameters
    ----------
    adata
        The AnnData.
    labels_key
        ``obs`` column of cell types (checked to exist without missing values beforehand).
    spatial_key
        ``obsm`` key of the coordinates.
    groups
        Sample of each cell (neighbours never cross samples).
    n_neighbors
        Number of neighbour slots.
    radius
        Optional neighbourhood radius.
    precomputed_graph
        Whether the neighbours come from a stored graph (then a sample may have fewer cells
        than ``n_neighbors``).

    Returns
    -------
    The coordinates as a float64 array of shape ``(n_cells, n_dims)``.
    """
    if spatial_key not in adata.obsm:
        raise ValueError(
            f"adata.obsm has no {spatial_key!r} (keys: {list(adata.obsm)}). Store the cell "
            f"coordinates there (cells x 2) or pass spatial_key=."
        )
    coordinates = np.asarray(adata.obsm[spatial_key], dtype=np.float64)
    if coordinates.ndim != 2 or coordinates.shape[1] not in (2, 3):
        raise ValueError(
            f"adata.obsm[{spatial_key!r}] must be cells x 2 (or 3), got {coordinates.shape}."
        )
    bad = ~np.isfinite(coordinates).all(axis=1)
    if bad.any():
        raise ValueError(
            f"{int(bad.sum())} cells have missing (NaN) or infinite coordinates in "
            f"adata.obsm[{spatial_key!r}], e.g. {list(adata.obs_names[bad][:3])}; drop them first."
        )
    counts = adata.obs[labels_key].value_counts()
    single = counts[counts == 1]
    if len(single):
        raise ValueError(
            f"Cell types with a single cell: {list(single.index)}. A type needs at least two "
            f"cells; merge them into a broader type or drop them."
        )
    if int(n_neighbors) != n_neighbors or n_neighbors < 1:
        raise ValueError(f"n_neighbors must be a positive integer, got {n_neighbors!r}.")
    if radius is not None and not radius > 0:
        raise ValueError(f"radius must be positive, got {radius!r}.")
    values, sizes = np.unique(groups, return_counts=True)
    small = values[sizes <= n_neighbors]
    if small.size and radius is None and not precomputed_graph:
        raise ValueError(
            f"Samples with no more cells than n_neighbors={n_neighbors}: {list(small[:5])}. "
            f"Lower n_neighbors or drop those samples."
        )
    return coordinates

"""Minibatches of receiver cells that carry their spatial neighbours (the senders)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from scipy.sparse.csgraph import reverse_cuthill_mckee
from scvi import REGISTRY_KEYS
from scvi.data import AnnDataManager

from lucidvi._constants import (
    NEIGHBOR_DISTANCE_KEY,
    NEIGHBOR_INDEX_KEY,
    NEIGHBOR_SLOT_KEY,
    RECEIVER_INDEX_KEY,
    SENDER_INDEX_KEY,
    SENDER_LABELS_KEY,
    SENDER_X_KEY,
)
from lucidvi._docstrings import lucidvi_dsp
from lucidvi._matrix_rows import read_rows

from ._array_data import _FLOAT_KEYS, ArrayBatchLoader, ArrayDataSplitter, registered_array


def _rows(values: np.ndarray | sp.csr_matrix, rows: np.ndarray) -> torch.Tensor:
    part = values[rows]
    part = part.toarray() if sp.issparse(part) else np.asarray(part)
    return torch.from_numpy(part.astype(np.float32, copy=False) if part.dtype.kind == "f" else part)


_SENDERS = "_senders"


@lucidvi_dsp.dedent
class NeighborhoodBatchLoader(ArrayBatchLoader):
    """Minibatches of receivers, each with the expression and type of its neighbours.

    A minibatch holds the receivers' registered arrays plus the senders they need: the unique
    neighbours of the minibatch (``sender_X``, ``sender_labels``, ``sender_index``: rows of
    the whole data set, so senders may be cells outside the split) and, per receiver, the
    position of each neighbour among them (``neighbor_slot``, ``-1`` for an empty slot) and
    its distance (``neighbor_distance``). A sender's embedding can so be computed once per
    minibatch however many receivers see it, and no pass ever touches the whole graph.

    Parameters
    ----------
    arrays
        Registry key -> array with one row per cell; must hold ``neighbor_index`` and
        ``neighbor_distance`` (cells x slots) besides ``X`` and ``labels``.
    indices
        Receivers to iterate over.
    batch_size
        Minibatch size.
    %(loader_options)s
    """

    _graph_order: np.ndarray | None = None  # each cell's position in the graph order

    def _block_order(self) -> np.ndarray:
        """Return the receivers ordered so that a block's receivers are near each other.

        Each block reads its receivers' senders from the out-of-core matrix. In row order, the
        senders of a block of receivers can be spread over the whole section (rows need not
        follow space), so a block would read up to ``block_cells x n_slots`` rows and an epoch
        a multiple of the matrix that grows with the number of cells. Ordered by the reverse
        Cuthill-McKee permutation of the neighbour graph, consecutive receivers are graph
        neighbours, a block's senders are mostly its own receivers and the cells next to them,
        and an epoch reads each cell a bounded number of times.
        """
        if self._graph_order is None:
            neighbors = self.arrays[NEIGHBOR_INDEX_KEY]
            n_cells, n_slots = neighbors.shape
            present = neighbors >= 0
            graph = sp.csr_matrix(
                (
                    np.ones(int(present.sum()), dtype=np.int8),
                    (np.repeat(np.arange(n_cells), n_slots)[present.ravel()], neighbors[present]),
                ),
                shape=(n_cells, n_cells),
            )
            position = np.empty(n_cells, dtype=np.int64)
            position[reverse_cuthill_mckee(graph, symmetric_mode=False)] = np.arange(n_cells)
            self._graph_order = position
        return self.indices[np.argsort(self._graph_order[self.indices], kind="stable")]

    def _read(self, cells: np.ndarray) -> dict:
        """Also read, once per block, the out-of-core expression of all the block's senders."""
        block = super()._read(cells)
        if REGISTRY_KEYS.X_KEY in block:
            neighbors = self.arrays[NEIGHBOR_INDEX_KEY][cells]
            senders = np.unique(neighbors[neighbors >= 0])
            block[_SENDERS] = (senders, read_rows(self.arrays[REGISTRY_KEYS.X_KEY], senders))
        return block

    def _batch(self, rows: np.ndarray, block: dict, at: np.ndarray) -> dict[str, torch.Tensor]:
        neighbors = self.arrays[NEIGHBOR_INDEX_KEY][rows]
        batch = {
            key: _rows(block[key], at) if key in block else _rows(values, rows)
            for key, values in self.arrays.items()
            if key not in (NEIGHBOR_INDEX_KEY, NEIGHBOR_DISTANCE_KEY)
        }
        present = neighbors >= 0
        senders, slots = np.unique(neighbors[present], return_inverse=True)
        neighbor_slot = np.full(neighbors.shape, -1, dtype=np.int64)
        neighbor_slot[present] = slots
        batch[NEIGHBOR_SLOT_KEY] = torch.from_numpy(neighbor_slot)
        batch[NEIGHBOR_DISTANCE_KEY] = _rows(self.arrays[NEIGHBOR_DISTANCE_KEY], rows)
        if _SENDERS in block:
            block_senders, sender_x = block[_SENDERS]
            batch[SENDER_X_KEY] = _rows(sender_x, np.searchsorted(block_senders, senders))
        else:
            batch[SENDER_X_KEY] = _rows(self.arrays[REGISTRY_KEYS.X_KEY], senders)
        batch[SENDER_LABELS_KEY] = _rows(self.arrays[REGISTRY_KEYS.LABELS_KEY], senders)
        batch[SENDER_INDEX_KEY] = torch.from_numpy(senders)
        batch[RECEIVER_INDEX_KEY] = torch.from_numpy(np.asarray(rows, dtype=np.int64))
        if self.pin_memory:
            batch = {key: value.pin_memory() for key, value in batch.items()}
        return batch


class NeighborhoodDataSplitter(ArrayDataSplitter):
    """Split receivers into training and validation cells; loaders carry their neighbours.

    The split is over receivers only: a validation receiver's expression is never used to fit
    the model, while any cell may serve as a sender (its expression is an input of the niche,
    never a prediction target of the same minibatch). Arguments are those of
    :class:`ArrayDataSplitter`.

    Parameters
    ----------
    adata_manager
        The model's :class:`~scvi.data.AnnDataManager`, with the neighbour fields registered.
    **kwargs
        Arguments of :class:`ArrayDataSplitter`.
    """

    _float_keys = (*_FLOAT_KEYS, NEIGHBOR_DISTANCE_KEY)
    _loader_cls = NeighborhoodBatchLoader

    def __init__(self, adata_manager: AnnDataManager, **kwargs):
        super().__init__(adata_manager, **kwargs)
        for key in (NEIGHBOR_INDEX_KEY, NEIGHBOR_DISTANCE_KEY):
            if key not in self.arrays:
                raise ValueError(f"The data were registered without {key!r}: set them up again.")


def neighborhood_loader(
    adata_manager: AnnDataManager,
    indices: np.ndarray,
    batch_size: int = 256,
    dense_limit_bytes: int = 256 * 2**20,
    keep_order: bool = True,
) -> NeighborhoodBatchLoader:
    """Loader over given receivers of registered data, carrying their neighbours.

    Parameters
    ----------
    adata_manager
        Manager of the registered data.
    indices
        Receivers (rows of the data).
    batch_size
        Receivers per minibatch.
    dense_limit_bytes
        Densify sparse expression once when its dense copy fits in this many bytes.
    keep_order
        Return the receivers in the order of ``indices``. When ``False``, out-of-core
        expression is read in the neighbour graph's order (see
        :meth:`NeighborhoodBatchLoader._block_order`), for passes that sum over cells or put
        each receiver back by its ``receiver_index``.

    Returns
    -------
    The loader (no shuffling).
    """
    float_keys = NeighborhoodDataSplitter._float_keys
    arrays = {
        key: registered_array(
            adata_manager.get_from_registry(key), key, dense_limit_bytes, float_keys
        )
        for key in adata_manager.data_registry
    }
    return NeighborhoodBatchLoader(
        arrays, np.asarray(indices, dtype=np.int64), batch_size, keep_order=keep_order
    )

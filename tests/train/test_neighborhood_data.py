import dask.array as da
import numpy as np
import scipy.sparse as sp
import torch
from scvi import REGISTRY_KEYS
from sklearn.neighbors import NearestNeighbors

from lucidvi._matrix_rows import read_rows
from lucidvi.train import NeighborhoodBatchLoader


def test_minibatches_carry_each_receivers_neighbours_once():
    rng = np.random.default_rng(0)
    n, k = 50, 4
    neighbours = np.stack(
        [rng.choice(np.delete(np.arange(n), i), k, replace=False) for i in range(n)]
    )
    neighbours[0, -1] = -1
    arrays = {
        REGISTRY_KEYS.X_KEY: rng.poisson(3, size=(n, 6)).astype(np.float32),
        REGISTRY_KEYS.LABELS_KEY: rng.integers(0, 3, size=(n, 1)),
        "neighbor_index": neighbours,
        "neighbor_distance": rng.uniform(1, 2, size=(n, k)).astype(np.float32),
    }
    loader = NeighborhoodBatchLoader(arrays, np.arange(n), batch_size=16)
    seen = []
    for batch in loader:
        receivers = batch["receiver_index"].numpy()
        senders = batch["sender_index"].numpy()
        slots = batch["neighbor_slot"].numpy()
        assert len(np.unique(senders)) == len(senders)
        mapped = np.where(slots >= 0, senders[np.clip(slots, 0, None)], -1)
        assert np.array_equal(mapped, neighbours[receivers])
        torch.testing.assert_close(
            batch["sender_X"], torch.from_numpy(arrays[REGISTRY_KEYS.X_KEY][senders])
        )
        seen.extend(receivers)
    assert sorted(seen) == list(range(n))


def _random_layout(n: int, k: int, seed: int = 0) -> dict:
    """Cells scattered uniformly, rows in random order: a row's neighbours lie anywhere."""
    rng = np.random.default_rng(seed)
    coordinates = rng.uniform(0, 1, size=(n, 2))
    _, neighbours = NearestNeighbors(n_neighbors=k + 1).fit(coordinates).kneighbors(coordinates)
    counts = sp.random(n, 20, density=0.3, format="csr", random_state=seed, dtype=np.float32)
    return {
        REGISTRY_KEYS.X_KEY: da.from_array(counts.toarray(), chunks=(500, 20)),  # out of core
        REGISTRY_KEYS.LABELS_KEY: rng.integers(0, 3, size=(n, 1)),
        "neighbor_index": neighbours[:, 1:],
        "neighbor_distance": np.ones((n, k), dtype=np.float32),
    }


def _sender_rows_read(monkeypatch, loader) -> tuple[int, list[int]]:
    """Rows of the matrix a training epoch reads for the senders, and the receivers it visits."""
    from lucidvi.train import _neighborhood_data

    read = []

    def counting(matrix, rows):
        read.append(len(rows))
        return read_rows(matrix, rows)

    monkeypatch.setattr(_neighborhood_data, "read_rows", counting)
    receivers = [cell for batch in loader for cell in batch["receiver_index"].tolist()]
    return sum(read), receivers


def test_out_of_core_blocks_read_nearby_senders(monkeypatch):
    n, k, block = 4000, 10, 256
    arrays = _random_layout(n, k)
    options = {"batch_size": 64, "shuffle": True, "seed": 0, "block_cells": block}
    by_graph, receivers = _sender_rows_read(
        monkeypatch, NeighborhoodBatchLoader(arrays, np.arange(n), **options)
    )
    assert sorted(receivers) == list(range(n))  # every receiver once per epoch
    # cut in row order, each block of 256 receivers needs nearly 256 x 10 distinct senders
    monkeypatch.setattr(NeighborhoodBatchLoader, "_block_order", lambda self: self.indices)
    by_rows, _ = _sender_rows_read(
        monkeypatch, NeighborhoodBatchLoader(arrays, np.arange(n), **options)
    )
    assert by_rows > 4 * n
    # in graph order a block's senders are mostly its own receivers and the cells beside them
    assert by_graph < by_rows / 3


def test_passes_in_any_order_read_nearby_senders_too(monkeypatch):
    n, k, block = 4000, 10, 256
    arrays = _random_layout(n, k)
    cells = np.random.default_rng(1).permutation(n)[: n // 2]  # e.g. validation cells
    options = {"batch_size": 64, "block_cells": block}
    in_order, receivers = _sender_rows_read(
        monkeypatch, NeighborhoodBatchLoader(arrays, cells, **options)
    )
    assert receivers == cells.tolist()  # the order asked for
    any_order, receivers = _sender_rows_read(
        monkeypatch, NeighborhoodBatchLoader(arrays, cells, keep_order=False, **options)
    )
    assert sorted(receivers) == sorted(cells.tolist())  # every cell once, in another order
    assert receivers != cells.tolist()
    assert any_order < in_order / 2

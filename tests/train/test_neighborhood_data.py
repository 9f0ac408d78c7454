import numpy as np
import torch
from scvi import REGISTRY_KEYS

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

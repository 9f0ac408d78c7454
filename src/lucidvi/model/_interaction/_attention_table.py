"""The long table of attention weights behind :meth:`InteractionVI.get_attention`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch
from anndata import AnnData
from scvi import REGISTRY_KEYS

from lucidvi._constants import NEIGHBOR_DISTANCE_KEY, RECEIVER_INDEX_KEY, SENDER_INDEX_KEY

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ._model import InteractionVI


@torch.inference_mode()
def attention_table(
    model: InteractionVI,
    adata: AnnData | None,
    indices: Sequence[int] | None,
    batch_size: int,
) -> pd.DataFrame:
    """One row per receiver, head and occupied slot; see :meth:`InteractionVI.get_attention`.

    Parameters
    ----------
    model
        A trained model with heads.
    adata
        Registered data; the training data when ``None``.
    indices
        Receivers; all when ``None``.
    batch_size
        Receivers per minibatch.

    Returns
    -------
    The table.
    """
    adata = model._validate_anndata(adata)
    labels = np.asarray(model.labels, dtype=object)
    frames = []
    decoder = model.module.niche_decoder
    for tensors, inference, _ in model._outputs(adata, indices, batch_size):
        weights = inference["attention"].cpu().numpy()  # (r, h, s + 1)
        slots = tensors["neighbor_slot"].numpy()
        # size of each sender's decoded value per head: its niche effect at full weight
        effect = (
            torch.linalg.vector_norm(
                torch.einsum("shd,hdg->shg", inference["values"], decoder), dim=-1
            )
            .cpu()
            .numpy()
        )  # (senders, h)
        senders = tensors[SENDER_INDEX_KEY].numpy()
        receivers = tensors[RECEIVER_INDEX_KEY].numpy()
        neighbor = np.where(slots >= 0, senders[np.clip(slots, 0, None)], -1)
        neighbor = np.concatenate([neighbor, np.full((len(slots), 1), -1)], axis=1)
        distance = np.concatenate(
            [tensors[NEIGHBOR_DISTANCE_KEY].numpy(), np.full((len(slots), 1), np.nan)], 1
        )
        occupied = np.concatenate([slots >= 0, np.ones((len(slots), 1), bool)], axis=1)
        r, h, s = np.nonzero(np.broadcast_to(occupied[:, None, :], weights.shape))
        slot_effect = np.concatenate(  # (r, s + 1, h); the null slot's value is 0
            [effect[np.clip(slots, 0, None)], np.zeros((len(slots), 1, weights.shape[1]))], 1
        )
        frames.append(
            pd.DataFrame(
                {
                    "cell_index": receivers[r],
                    "head": h,
                    "neighbor_index": neighbor[r, s],
                    "distance": distance[r, s],
                    "weight": weights[r, h, s],
                    "weighted_effect": weights[r, h, s] * slot_effect[r, s, h],
                }
            )
        )
    table = pd.concat(frames, ignore_index=True)
    manager = model.get_anndata_manager(adata)
    codes = np.asarray(manager.get_from_registry(REGISTRY_KEYS.LABELS_KEY)).ravel()
    is_null = table["neighbor_index"].to_numpy() < 0
    neighbor_rows = np.where(is_null, 0, table["neighbor_index"].to_numpy())
    table.insert(0, "cell", adata.obs_names[table["cell_index"]].to_numpy())
    table.insert(2, "cell_type", labels[codes[table["cell_index"]]])
    names = adata.obs_names[neighbor_rows].to_numpy().astype(object)
    types = labels[codes[neighbor_rows]]
    names[is_null], types[is_null] = None, None
    table.insert(4, "neighbor", names)
    table.insert(6, "neighbor_type", types)
    return table

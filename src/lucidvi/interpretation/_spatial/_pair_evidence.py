"""Per-gene evidence that one sender type changes one receiver type, read from the model."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from anndata import AnnData

from ._gene_set_test import Alternative, normal_scores
from ._inputs import predicted_expression
from ._niche_contrast import PSEUDOCOUNT

if TYPE_CHECKING:
    from lucidvi.model import InteractionVI


def niche_head(patterns: pd.DataFrame, receiver: str, sender: str) -> int:
    """Pick the head with the largest value-weighted attention from the receivers to the senders.

    Parameters
    ----------
    patterns
        The table of :class:`~lucidvi.interpretation.AttentionPatterns`.
    receiver, sender
        The cell types.

    Returns
    -------
    The head.
    """
    rows = patterns[
        (patterns["level"] == "pair")
        & (patterns["receiver_type"] == receiver)
        & (patterns["sender_type"] == sender)
    ]
    if rows.empty:
        raise ValueError(f"No attention from {receiver!r} to {sender!r} in the table.")
    return int(rows["head"].to_numpy()[np.argmax(rows["weighted_effect"].to_numpy())])


def head_programme(
    model: InteractionVI, adata: AnnData, rows: np.ndarray, head: int, sender: str, batch_size: int
) -> np.ndarray:
    """Per gene, what one head's attention to the senders changes in the receivers' predictions.

    Parameters
    ----------
    model
        The model.
    adata
        Registered data.
    rows
        Receivers with a neighbour of the sender type.
    head
        The head kept (the others are ablated).
    sender
        The sender type, masked for the comparison.
    batch_size
        Receivers per minibatch.

    Returns
    -------
    Log2 fold change of the mean prediction with the senders over without them (``"nb"``), or
    the difference of the means (``"gaussian"``), one per gene.
    """
    with_senders = predicted_expression(model, adata, rows, "total", batch_size, heads=[head])
    without = predicted_expression(
        model, adata, rows, "total", batch_size, heads=[head], mask_sender_types=[sender]
    )
    full, masked = with_senders.mean(axis=0), without.mean(axis=0)
    if model.module.likelihood == "nb":
        return np.log2((full + PSEUDOCOUNT) / (masked + PSEUDOCOUNT))
    return full - masked


def gene_evidence(
    interaction: np.ndarray, programme: np.ndarray, alternative: Alternative
) -> np.ndarray:
    """Combine the observed interaction statistic and the head's programme into one per gene.

    Parameters
    ----------
    interaction
        Per gene, the observed contrast of the affected receivers (e.g. Welch's t).
    programme
        Per gene, the head's predicted change (:func:`head_programme`).
    alternative
        ``"greater"`` or ``"two-sided"`` (see :func:`normal_scores`).

    Returns
    -------
    The mean of the two normal scores, per gene.
    """
    return 0.5 * (normal_scores(interaction, alternative) + normal_scores(programme, alternative))

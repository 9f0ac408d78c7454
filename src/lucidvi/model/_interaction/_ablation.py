"""Turn InteractionVI's ablation arguments (heads, masked senders) into module inputs."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


def ablation_options(
    n_heads: int,
    labels: list[str],
    device: torch.device,
    heads: Sequence[int] | None = None,
    mask_sender_types: Sequence[str] | None = None,
    mask_senders: Sequence[int] | None = None,
) -> dict[str, torch.Tensor]:
    """Check the ablation arguments and build the keyword tensors of the module's inference.

    Parameters
    ----------
    n_heads
        The model's number of heads.
    labels
        Its cell types, in code order.
    device
        Device of the tensors.
    heads
        Heads to keep (the others are ablated); all when ``None``.
    mask_sender_types
        Cell types no receiver may attend to.
    mask_senders
        Rows (cells) no receiver may attend to.

    Returns
    -------
    ``head_keep``, ``masked_sender_labels`` and ``masked_sender_index``, for those given.

    Raises
    ------
    ValueError
        For a head outside ``0..n_heads - 1`` or an unknown cell type.
    """
    options = {}
    if heads is not None:
        heads = list(heads)
        if any(not 0 <= h < n_heads for h in heads):
            raise ValueError(f"heads must lie in 0..{n_heads - 1}, got {heads}.")
        keep = torch.zeros(n_heads, dtype=torch.bool)
        keep[heads] = True
        options["head_keep"] = keep.to(device)
    if mask_sender_types is not None:
        if isinstance(mask_sender_types, str):
            mask_sender_types = [mask_sender_types]
        unknown = sorted(set(map(str, mask_sender_types)) - set(labels))
        if unknown:
            raise ValueError(f"Unknown cell types {unknown}; the types are {labels}.")
        codes = [labels.index(str(t)) for t in mask_sender_types]
        options["masked_sender_labels"] = torch.as_tensor(codes, device=device)
    if mask_senders is not None:
        options["masked_sender_index"] = torch.as_tensor(
            np.asarray(mask_senders, dtype=np.int64), device=device
        )
    return options

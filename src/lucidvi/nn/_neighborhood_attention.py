"""Multi-head attention of receiver cells over their spatial neighbours."""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F


class NeighborhoodAttention(nn.Module):
    r"""Attention from each receiver (queries from its type) over its neighbours (the senders).

    For head :math:`h`, receiver :math:`i` of type :math:`t_i` and neighbour :math:`j` at
    distance :math:`d_{ij}`, the score is

    .. math:: s_{hij} = \frac{q_h(t_i)^\top k_h(e_j)}{\sqrt{d_k}} - \lambda_h \frac{d_{ij}}{\ell},

    with :math:`e_j` the sender's embedding (from its expression and type), :math:`\lambda_h
    \ge 0` a learned decay rate per head and :math:`\ell` a fixed distance unit (the median
    distance to the nearest neighbour, so rates do not depend on the coordinates' units). A
    *null* slot with score :math:`q_h(t_i)^\top k^0_h / \sqrt{d_k} + b^0_h` and value 0 lets a
    receiver attend to no neighbour. The weights are the softmax over the slots; head
    :math:`h`'s output is :math:`\sum_j a_{hij} v_h(e_j)`.

    With ``values="constant"``, :math:`v_h(e_j) = v_h` is one learned vector per head, so the
    output is :math:`(1 - a_{hi0})\, v_h` with :math:`a_{hi0}` the null slot's weight: how much
    a head changes a receiver is then set by how much it attends to neighbours rather than to
    none, and *which* neighbours it attends to is what the attention weights say. With
    ``values="sender"``, values are a linear map of the senders' embeddings, so a neighbour's
    expression can also change the size and direction of its effect (more flexible, and
    the weights alone no longer tell who matters).

    Parameters
    ----------
    n_labels
        Number of cell types.
    n_input
        Dimension of the sender embeddings.
    n_heads
        Number of heads.
    head_dim
        Dimension of each head's keys, queries and values.
    distance_unit
        The distance :math:`\ell`.
    values
        ``"constant"`` (one value per head) or ``"sender"`` (from each sender's embedding).
    """

    def __init__(
        self,
        n_labels: int,
        n_input: int,
        n_heads: int,
        head_dim: int,
        distance_unit: float,
        values: Literal["constant", "sender"] = "constant",
    ):
        super().__init__()
        if values not in ("constant", "sender"):
            raise ValueError(f"values must be 'constant' or 'sender', got {values!r}.")
        self.n_heads, self.head_dim, self.value_source = n_heads, head_dim, values
        self.queries = nn.Embedding(n_labels, n_heads * head_dim)
        self.keys = nn.Linear(n_input, n_heads * head_dim)
        if values == "sender":
            self.values = nn.Linear(n_input, n_heads * head_dim)
        else:
            self.constant_values = nn.Parameter(torch.randn(n_heads, head_dim) / head_dim**0.5)
        self.null_keys = nn.Parameter(torch.zeros(n_heads, head_dim))
        self.null_bias = nn.Parameter(torch.zeros(n_heads))
        self.raw_decay = nn.Parameter(torch.zeros(n_heads))
        self.register_buffer("distance_unit", torch.tensor(float(distance_unit)))

    @property
    def decay(self) -> torch.Tensor:
        """Decay rate of each head's scores per distance unit, shape ``(n_heads,)``."""
        return F.softplus(self.raw_decay)

    def _null_scores(self, queries: torch.Tensor) -> torch.Tensor:
        scale = 1.0 / math.sqrt(self.head_dim)
        return torch.einsum("rhd,hd->rh", queries, self.null_keys) * scale + self.null_bias

    def sender_values(self, sender_embedding: torch.Tensor) -> torch.Tensor:
        """Each sender's value in every head, shape ``(n_senders, n_heads, head_dim)``.

        The same learned vector for every sender with ``values="constant"``.
        """
        if self.value_source == "sender":
            return self.values(sender_embedding).view(-1, self.n_heads, self.head_dim)
        return self.constant_values.expand(len(sender_embedding), -1, -1)

    def scores_over_null(
        self, receiver_labels: torch.Tensor, sender_embedding: torch.Tensor
    ) -> torch.Tensor:
        """Each sender's score above the null slot's, at distance 0, for every receiver type.

        A receiver with a single neighbour ``j`` at distance ``d`` gives it the weight
        ``sigmoid(s_hj - decay_h d / unit)`` in head ``h``, with ``s_hj`` this score.

        Parameters
        ----------
        receiver_labels
            Receiver type codes, shape ``(n_receivers,)``.
        sender_embedding
            Sender embeddings, shape ``(n_senders, n_input)``.

        Returns
        -------
        Tensor of shape ``(n_receivers, n_heads, n_senders)``.
        """
        shape = (-1, self.n_heads, self.head_dim)
        queries = self.queries(receiver_labels).view(shape)
        keys = self.keys(sender_embedding).view(shape)
        scores = torch.einsum("rhd,shd->rhs", queries, keys) / math.sqrt(self.head_dim)
        return scores - self._null_scores(queries)[..., None]

    def forward(
        self,
        receiver_labels: torch.Tensor,
        sender_embedding: torch.Tensor,
        neighbor_slot: torch.Tensor,
        neighbor_distance: torch.Tensor,
        sender_keep: torch.Tensor | None = None,
        head_keep: torch.Tensor | None = None,
        receiver_keep: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Attend from each receiver over its neighbours.

        Parameters
        ----------
        receiver_labels
            Type code of each receiver, shape ``(n_receivers,)``.
        sender_embedding
            Embeddings of the minibatch's senders, shape ``(n_senders, n_input)``.
        neighbor_slot
            Row of each neighbour in ``sender_embedding``, ``-1`` for an empty slot; shape
            ``(n_receivers, n_slots)``.
        neighbor_distance
            Distances, same shape.
        sender_keep
            Boolean per sender: ``False`` masks it for every receiver (it is not attended).
        head_keep
            Boolean per head: ``False`` ablates the head (its output is zero).
        receiver_keep
            Boolean per receiver: ``False`` makes it attend to no neighbour (all weight on the
            null slot, output zero).

        Returns
        -------
        ``(outputs, weights, values)``: head outputs ``(n_receivers, n_heads, head_dim)``;
        attention weights ``(n_receivers, n_heads, n_slots + 1)``, the null slot last; the
        senders' values ``(n_senders, n_heads, head_dim)``.
        """
        n_receivers, n_slots = neighbor_slot.shape
        shape = (-1, self.n_heads, self.head_dim)
        queries = self.queries(receiver_labels).view(shape)
        keys = self.keys(sender_embedding).view(shape)
        values = self.sender_values(sender_embedding)
        present = neighbor_slot >= 0
        if sender_keep is not None:
            present = present & sender_keep[neighbor_slot.clamp(min=0)]
        if receiver_keep is not None:
            present = present & receiver_keep[:, None]
        slot = neighbor_slot.clamp(min=0)
        neighbor_keys = keys[slot]  # (receivers, slots, heads, dim)
        scale = 1.0 / math.sqrt(self.head_dim)
        scores = torch.einsum("rhd,rshd->rhs", queries, neighbor_keys) * scale
        distance = torch.where(present, neighbor_distance, torch.zeros_like(neighbor_distance))
        scores = scores - self.decay[None, :, None] * (distance / self.distance_unit)[:, None, :]
        scores = scores.masked_fill(~present[:, None, :], float("-inf"))
        null = self._null_scores(queries)
        weights = torch.softmax(torch.cat([scores, null[..., None]], dim=-1), dim=-1)
        if self.value_source == "sender":
            outputs = torch.einsum("rhs,rshd->rhd", weights[..., :n_slots], values[slot])
        else:  # every neighbour carries the head's value: no per-slot gather needed
            outputs = (1 - weights[..., -1:]) * self.constant_values
        if head_keep is not None:
            outputs = outputs * head_keep.to(outputs.dtype)[None, :, None]
        return outputs, weights, values

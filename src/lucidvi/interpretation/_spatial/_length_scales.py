"""Over what distance each head lets a sender type reach a receiver type, from the learned decay."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
from anndata import AnnData
from scvi import REGISTRY_KEYS

from lucidvi._docstrings import lucidvi_dsp

from .._result import TableResult, plot_method
from ._inputs import cell_types, evaluation_cells

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from matplotlib.axes import Axes

    from lucidvi.model import InteractionVI

# the spread over sender cells: q10, q25, the median (the length scale), q75, q90
_QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)
# the columns of the table, in order
_COLUMNS = [
    "head",
    "sender_type",
    "receiver_type",
    "length_scale",
    "ci_low",
    "ci_high",
    "q10",
    "q25",
    "q75",
    "q90",
    "weight_at_zero",
    "head_effect",
    "importance",
    "n_senders",
    "niche_kept",
    "status",
]
# columns that describe the reach: NaN where the receiver type's niche was dropped
_REACH_COLUMNS = ["length_scale", "ci_low", "ci_high", "q10", "q25", "q75", "q90"]
_MAX_ENTRIES = 1 << 24  # resampled distances held at once by the bootstrap (128 MiB of float64)
_CHUNK = 1024  # sender cells embedded per forward pass


@dataclass(frozen=True, eq=False)
class LengthScales(TableResult):
    """Distance at which a head stops attending to a sender, per head and cell-type pair.

    Attributes
    ----------
    table
        One row per head, sender type and receiver type: ``length_scale`` (lower median over
        the sender cells of the distance at which a receiver's attention to a lone such sender
        drops below ``threshold``), its bootstrap interval (``ci_low``, ``ci_high``), the
        spread over sender cells (quantiles ``q10`` ... ``q90``), ``weight_at_zero``
        (median attention to a lone sender next to the receiver), ``head_effect`` (size, as the
        Euclidean norm over genes on the linear-predictor scale, of the niche term a sender of
        the type gives the receiver type through the head at full attention, mean over the
        sender cells; 0 for receiver types without niche),
        ``importance`` (``weight_at_zero * head_effect``), ``n_senders``, ``niche_kept`` and
        ``status``: ``"ok"``, or ``"niche dropped"`` where the calibration dropped the receiver
        type's niche, whose reach columns are then NaN (the model uses no such reach).
    threshold
        Attention weight defining the length scale.
    confidence
        Level of the bootstrap intervals.
    n_bootstrap
        Bootstrap resamples of the sender cells.
    cells
        Which cells provided the senders.
    """

    _text_columns = ("sender_type", "receiver_type")

    table: pd.DataFrame
    threshold: float
    confidence: float
    n_bootstrap: int
    cells: str

    @classmethod
    @lucidvi_dsp.dedent
    def compute(
        cls,
        model: InteractionVI,
        adata: AnnData | None = None,
        indices: Sequence[int] | None = None,
        threshold: float = 0.5,
        n_bootstrap: int = 200,
        confidence: float = 0.95,
        seed: int | None = None,
    ) -> LengthScales:
        r"""Read each head's reach off its learned distance decay.

        A receiver of type :math:`t` with a single neighbour :math:`j` at distance :math:`d`
        gives it, in head :math:`h`, the weight :math:`\sigma(s_{htj} - \lambda_h d / \ell)`
        against the null slot (:meth:`~lucidvi.nn.NeighborhoodAttention.scores_over_null`),
        with :math:`s_{htj}` the sender's score at distance 0, :math:`\lambda_h` the head's
        decay rate and :math:`\ell` the distance unit. The weight falls below ``threshold``
        :math:`\tau` at

        .. math:: d^*_{htj} = \ell\, \frac{s_{htj} - \mathrm{logit}(\tau)}{\lambda_h}

        (0 when it is below :math:`\tau` even next to the receiver). With the default
        :math:`\tau = 0.5`, :math:`d^*` is where the sender stops outweighing attending to no
        neighbour. Its (lower) median over the sender type's cells is the length scale, with a
        percentile bootstrap interval over those cells. Receivers attend to several
        neighbours at once, so this is the reach of one sender, not a cut-off on a tissue.

        Parameters
        ----------
        %(interaction_model)s
        %(interaction_adata)s
        indices
            Cells providing the senders (default: held-out cells of the training data, all
            cells of other data).
        threshold
            Attention weight :math:`\tau` in (0, 1).
        n_bootstrap
            Bootstrap resamples (0: no intervals).
        %(confidence)s
        %(random_seed)s

        Returns
        -------
        The result.
        """
        if not 0 < threshold < 1 or not 0 < confidence < 1 or n_bootstrap < 0:
            raise ValueError("threshold and confidence must lie in (0, 1), n_bootstrap >= 0.")
        adata, cells, description = evaluation_cells(model, adata, indices)
        module = model.module
        reach = _reach(model, adata, cells, threshold)  # (heads, receivers, senders)
        senders = cell_types(model, adata, cells)
        niche_scale = module.niche_scale.cpu().numpy().astype(np.float64)
        rng = np.random.default_rng(seed)
        frames = []
        for sender_type in model.labels:
            columns = np.flatnonzero(senders == sender_type)
            if len(columns) == 0:
                continue
            distances = reach["distance"][:, :, columns]
            quantiles = np.quantile(distances, _QUANTILES, axis=-1, method="inverted_cdf")
            low, high = _bootstrap(distances, n_bootstrap, confidence, rng)
            weight = np.median(reach["weight"][:, :, columns], axis=-1)  # finite
            value_size = reach["value_size"][:, columns].mean(axis=-1)
            effect = np.outer(value_size, niche_scale)  # (heads, receiver types)
            heads, receivers = np.meshgrid(
                np.arange(module.n_heads), np.arange(len(model.labels)), indexing="ij"
            )
            frames.append(
                pd.DataFrame(
                    {
                        "head": heads.ravel(),
                        "sender_type": sender_type,
                        "receiver_type": np.asarray(model.labels, dtype=object)[receivers.ravel()],
                        "length_scale": quantiles[2].ravel(),
                        "ci_low": low.ravel(),
                        "ci_high": high.ravel(),
                        "q10": quantiles[0].ravel(),
                        "q25": quantiles[1].ravel(),
                        "q75": quantiles[3].ravel(),
                        "q90": quantiles[4].ravel(),
                        "weight_at_zero": weight.ravel(),
                        "head_effect": effect.ravel(),
                        "importance": (weight * effect).ravel(),
                        "n_senders": len(columns),
                        "niche_kept": np.broadcast_to(niche_scale > 0, effect.shape).ravel(),
                    }
                )
            )
        table = pd.concat(frames, ignore_index=True)
        table["status"] = np.where(table["niche_kept"], "ok", "niche dropped")
        table.loc[~table["niche_kept"], _REACH_COLUMNS] = np.nan
        return cls(table, float(threshold), float(confidence), int(n_bootstrap), description)

    @lucidvi_dsp.dedent
    def for_pair(self, *, sender_type: str, receiver_type: str) -> pd.Series:
        """Return the row of the head that matters most for a (sender, receiver) pair.

        Parameters
        ----------
        %(interaction_pair)s

        Returns
        -------
        The row (of :attr:`table`) with the largest ``importance``.

        Raises
        ------
        ValueError
            If the pair is not in the table, or its receiver type kept no niche.
        """
        rows = self.table[
            (self.table["sender_type"] == str(sender_type))
            & (self.table["receiver_type"] == str(receiver_type))
        ]
        if rows.empty:
            raise ValueError(f"No pair ({sender_type!r}, {receiver_type!r}) in the result.")
        if not rows["niche_kept"].any():
            raise ValueError(
                f"{receiver_type!r} kept no niche (model.get_niche_calibration()): the model "
                f"predicts it from its own expression, so {sender_type!r} has no reach on it."
            )
        return rows.loc[rows["importance"].idxmax()]

    def to_dataframe(self) -> pd.DataFrame:
        """Return the table (see :attr:`table`).

        Returns
        -------
        Columns ``head``, ``sender_type``, ``receiver_type``, ``length_scale``, ``ci_low``,
        ``ci_high``, ``q10``, ``q25``, ``q75``, ``q90``, ``weight_at_zero``, ``head_effect``,
        ``importance``, ``n_senders``, ``niche_kept``, ``status``.
        """
        return self.table.copy()

    def _parameters(self) -> dict[str, Any]:
        return {
            "threshold": self.threshold,
            "confidence": self.confidence,
            "n_bootstrap": self.n_bootstrap,
            "cells": self.cells,
        }

    @classmethod
    def _from_table(cls, table: pd.DataFrame, parameters: dict[str, Any]) -> LengthScales:
        for column in ("sender_type", "receiver_type"):
            table[column] = table[column].astype(str)
        table["niche_kept"] = table["niche_kept"].astype(bool)
        table["status"] = table["status"].astype(str)
        return cls(table=table[_COLUMNS], **parameters)

    plot_distribution = plot_method(
        "length_scale_distribution",
        "Spread of the length scale over sender cells for the most important pairs.",
        options="(``n_pairs``): per pair, a box from ``q25`` to ``q75``, whiskers "
        "``q10``-``q90``, the median and its bootstrap interval",
    )

    def _figures(self) -> Iterator[tuple[str, Axes]]:
        yield "distribution", self.plot_distribution()


@torch.inference_mode()
def _reach(
    model: InteractionVI, adata: AnnData, cells: np.ndarray, threshold: float
) -> dict[str, np.ndarray]:
    """Per head, receiver type and sender cell: lone-sender weight at 0 and reach ``d*``."""
    module = model.module
    manager = model.get_anndata_manager(adata, required=True)
    matrix = manager.get_from_registry(REGISTRY_KEYS.X_KEY)
    codes = np.asarray(manager.get_from_registry(REGISTRY_KEYS.LABELS_KEY)).ravel()
    device = module.label_profile.weight.device
    receivers = torch.arange(len(model.labels), device=device)
    attention = module.attention
    decay = attention.decay.cpu().numpy().astype(np.float64)
    unit = float(attention.distance_unit)
    scores, sizes = [], []
    for start in range(0, len(cells), _CHUNK):
        rows = cells[start : start + _CHUNK]
        x = matrix[rows]
        x = torch.as_tensor(
            np.asarray(x.toarray() if hasattr(x, "toarray") else x), dtype=torch.float32
        ).to(device)
        labels = torch.as_tensor(codes[rows], device=device).long()
        embedding = module.sender_embedding(x, labels)
        scores.append(attention.scores_over_null(receivers, embedding).cpu().numpy())
        effect = torch.einsum(
            "shd,hdg->shg", attention.sender_values(embedding), module.niche_decoder
        )
        sizes.append(torch.linalg.vector_norm(effect, dim=-1).T.cpu().numpy())
    score = np.concatenate(scores, axis=-1).astype(np.float64).transpose(1, 0, 2)  # (h, t, s)
    margin = score - math.log(threshold / (1 - threshold))
    with np.errstate(divide="ignore", invalid="ignore"):
        distance = unit * margin / decay[:, None, None]
    distance = np.where(margin <= 0, 0.0, np.where(decay[:, None, None] > 0, distance, np.inf))
    return {
        "distance": distance,
        "weight": 1.0 / (1.0 + np.exp(-score)),
        "value_size": np.concatenate(sizes, axis=-1).astype(np.float64),  # (h, s)
    }


def _bootstrap(
    distances: np.ndarray, n_bootstrap: int, confidence: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval of the median over the last axis, resampling it."""
    if n_bootstrap == 0:
        nothing = np.full(distances.shape[:-1], np.nan)
        return nothing, nothing
    n = distances.shape[-1]
    chunk = max(1, _MAX_ENTRIES // max(distances.size, 1))
    medians = []
    for start in range(0, n_bootstrap, chunk):
        draws = rng.integers(0, n, size=(min(chunk, n_bootstrap - start), n))
        resampled = distances[..., draws]  # (h, t, b, n); no interpolation: d* may be inf
        medians.append(np.quantile(resampled, 0.5, axis=-1, method="inverted_cdf"))
    medians = np.concatenate(medians, axis=-1)
    tail = (1 - confidence) / 2
    low = np.quantile(medians, tail, axis=-1, method="inverted_cdf")
    return low, np.quantile(medians, 1 - tail, axis=-1, method="inverted_cdf")

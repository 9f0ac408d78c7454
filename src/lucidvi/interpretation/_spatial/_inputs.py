"""What the InteractionVI results share: held-out cells, expression and predictions on one scale."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from anndata import AnnData
from scvi import REGISTRY_KEYS

from lucidvi._constants import NEIGHBOR_INDEX_OBSM

if TYPE_CHECKING:
    from lucidvi.model import InteractionVI

# "nb": expression and predictions are counts per 10,000 (the scale of log-normalisation)
_COUNTS_PER = 1e4


def evaluation_cells(
    model: InteractionVI, adata: AnnData | None, indices: Sequence[int] | None
) -> tuple[AnnData, np.ndarray, str]:
    """Pick the cells a result is computed on: held-out cells unless told otherwise.

    A model fits the cells it trained on better than new ones (a flexible niche model can
    memorise their neighbourhoods), so statistics on them are biased. By default a result uses
    the cells of the training data the model did not train on (its validation cells and any
    cells outside the split), or every cell of other data. The validation cells also decided
    early stopping and which receiver types keep a niche, so tests on them are slightly
    optimistic; for a strict test, train with a test split (``datasplitter_kwargs=
    {"external_indexing": [train, validation, test]}``) and pass ``indices=test``.

    Parameters
    ----------
    model
        A trained :class:`~lucidvi.model.InteractionVI`.
    adata
        Data registered with the model; the training data when ``None``.
    indices
        Rows to use; overrides the default.

    Returns
    -------
    ``(adata, cells, description)``: the data, the rows and a phrase naming them.

    Raises
    ------
    ValueError
        If the model has no heads, or every cell of the training data was trained on and no
        ``indices`` are given.
    """
    if not model.module.n_heads:
        raise ValueError("This model has no attention heads (n_heads=0).")
    if not model.is_trained:
        raise RuntimeError(
            "Trying to query inferred values from an untrained model. Please train the model first."
        )
    training_data = adata is None or adata is model.adata
    adata = model._validate_anndata(adata)
    if indices is not None:
        if np.asarray(indices).dtype == bool:
            raise ValueError("indices must be row numbers, not a mask: use numpy.flatnonzero.")
        cells = np.asarray(indices, dtype=np.int64)
        if cells.size == 0 or cells.min() < 0 or cells.max() >= adata.n_obs:
            raise ValueError(f"indices must be non-empty rows in 0..{adata.n_obs - 1}.")
        return adata, cells, f"{len(cells)} given cells"
    if not training_data:
        return adata, np.arange(adata.n_obs), f"all {adata.n_obs} cells of the given data"
    trained = np.zeros(adata.n_obs, dtype=bool)
    trained[np.asarray(model.train_indices, dtype=np.int64)] = True
    if trained.all():
        raise ValueError(
            "The model trained on every cell (train_size=1), so no cell is held out and "
            "statistics on training cells are biased. Train with train_size < 1, or pass "
            "indices= (e.g. numpy.arange(adata.n_obs)) to use training cells knowingly."
        )
    cells = np.flatnonzero(~trained)
    return adata, cells, f"{len(cells)} held-out cells (not trained on)"


def cell_types(model: InteractionVI, adata: AnnData, cells: np.ndarray) -> np.ndarray:
    """Cell type of each of ``cells`` (strings)."""
    manager = model.get_anndata_manager(adata, required=True)
    codes = np.asarray(manager.get_from_registry(REGISTRY_KEYS.LABELS_KEY)).ravel()
    return np.asarray(model.labels, dtype=object)[codes[cells]]


def batch_codes(model: InteractionVI, adata: AnnData, cells: np.ndarray) -> np.ndarray:
    """Batch code of each of ``cells`` (all 0 without a batch key)."""
    manager = model.get_anndata_manager(adata, required=True)
    return np.asarray(manager.get_from_registry(REGISTRY_KEYS.BATCH_KEY)).ravel()[cells]


def observed_expression(model: InteractionVI, adata: AnnData, cells: np.ndarray) -> np.ndarray:
    """Return the registered expression of ``cells``, on the scale of the predictions.

    Counts (``"nb"``) become counts per 10,000 of each cell's total; Gaussian data stay as
    they are.

    Returns
    -------
    Dense float64 array, cells x genes.
    """
    manager = model.get_anndata_manager(adata, required=True)
    matrix = manager.get_from_registry(REGISTRY_KEYS.X_KEY)[cells]
    values = np.asarray(matrix.toarray() if hasattr(matrix, "toarray") else matrix, np.float64)
    if model.module.likelihood == "nb":
        totals = values.sum(axis=1, keepdims=True)
        values = values * (_COUNTS_PER / np.where(totals > 0, totals, 1.0))
    return values


def predicted_expression(
    model: InteractionVI,
    adata: AnnData,
    cells: np.ndarray,
    component: str = "total",
    batch_size: int = 256,
    **ablation: Any,
) -> np.ndarray:
    """Return the model's prediction for ``cells``, on the scale of the expression.

    Parameters
    ----------
    model
        The model.
    adata
        Registered data.
    cells
        Rows to predict.
    component
        ``"total"`` or ``"intrinsic"``
        (:meth:`~lucidvi.model.InteractionVI.get_predictions`).
    batch_size
        Receivers per minibatch.
    **ablation
        ``heads``, ``mask_sender_types`` or ``mask_senders``.

    Returns
    -------
    Dense float64 array, cells x genes (expected counts per 10,000 for ``"nb"``).
    """
    predictions = model.get_predictions(
        adata, indices=cells, component=component, batch_size=batch_size, **ablation
    ).to_numpy(dtype=np.float64, copy=True)
    if model.module.likelihood == "nb":
        totals = predictions.sum(axis=1, keepdims=True)
        predictions *= _COUNTS_PER / np.where(totals > 0, totals, 1.0)
    return predictions


def chosen_types(given: str | Sequence[str] | None, labels: list[str], name: str) -> list[str]:
    """Cell types asked for by name (all of ``labels`` when ``None``), checked against them."""
    if given is None:
        return list(labels)
    given = [given] if isinstance(given, str) else [str(t) for t in given]
    unknown = sorted(set(given) - set(labels))
    if unknown:
        raise ValueError(f"{name}: unknown cell types {unknown}; the types are {labels}.")
    return given


def neighbor_types(model: InteractionVI, adata: AnnData) -> np.ndarray:
    """Type of every neighbour slot of every cell (``None`` for empty slots)."""
    neighbors = np.asarray(adata.obsm[NEIGHBOR_INDEX_OBSM])
    types = cell_types(model, adata, np.clip(neighbors, 0, None).ravel()).reshape(neighbors.shape)
    return np.where(neighbors >= 0, types, None)

"""Read and check the matrices interpretation results start from (expression, embeddings)."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData

from lucidvi._layers import read_layer
from lucidvi.metrics import TARGET_SUM, log_normalize_counts

logger = logging.getLogger(__name__)


def _is_count_matrix(matrix) -> bool:
    values = matrix.data if sp.issparse(matrix) else np.asarray(matrix)
    sample = values.ravel()[:1_000_000]  # the first million values decide: fast on any matrix
    return bool(np.all(sample >= 0) and np.all(sample == np.round(sample)))


def expression_matrix(
    adata: AnnData, layer: str | None = None, log_normalize: bool | None = None
) -> np.ndarray | sp.csr_matrix:
    """Return the expression that interpretation results describe: log-normalised values.

    Parameters
    ----------
    adata
        Cells x genes data.
    layer
        Layer to read (``None`` for ``adata.X``).
    log_normalize
        Whether the layer holds counts that still need ``log1p(normalize_total)``; ``None``
        decides from the values (non-negative integers are taken as counts).

    Returns
    -------
    Cells x genes float matrix (CSR when stored sparse).
    """
    matrix, where = read_layer(adata, layer)
    values = matrix.data if sp.issparse(matrix) else np.asarray(matrix)
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{where} contains NaN or infinite values.")
    if log_normalize is None:
        log_normalize = _is_count_matrix(matrix)
        if log_normalize:
            logger.info("%s holds counts: using log1p(normalize_total(%g)).", where, TARGET_SUM)
    if log_normalize:
        return log_normalize_counts(matrix)
    if sp.issparse(matrix):
        return sp.csr_matrix(matrix, dtype=np.float64)
    return np.asarray(matrix, dtype=np.float64)


def column_moments(matrix) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (population) standard deviation of each column, without densifying.

    Parameters
    ----------
    matrix
        Dense or sparse matrix.

    Returns
    -------
    ``(mean, sd)`` arrays with one entry per column.
    """
    mean = np.asarray(matrix.mean(axis=0), dtype=np.float64).ravel()
    if sp.issparse(matrix):
        square = np.asarray(matrix.multiply(matrix).mean(axis=0), dtype=np.float64).ravel()
    else:
        square = np.mean(np.square(matrix), axis=0)
    return mean, np.sqrt(np.maximum(square - mean**2, 0.0))


def embedding_frame(
    embedding: np.ndarray | pd.DataFrame | str, adata: AnnData | None = None
) -> pd.DataFrame:
    """Return an embedding as a cells x dimensions DataFrame, checked for NaN and shape.

    Parameters
    ----------
    embedding
        An array, a DataFrame, or the key of ``adata.obsm``.
    adata
        Needed when ``embedding`` is an ``obsm`` key; gives the cell names.

    Returns
    -------
    DataFrame with one column per dimension (``Z_0, Z_1, ...`` unless named).
    """
    if isinstance(embedding, str):
        if adata is None or embedding not in adata.obsm:
            available = [] if adata is None else list(adata.obsm.keys())
            raise ValueError(f"{embedding!r} is not in adata.obsm (available: {available}).")
        embedding = adata.obsm[embedding]
    if isinstance(embedding, pd.DataFrame):
        frame = embedding.astype(np.float64)
    else:
        values = np.asarray(embedding, dtype=np.float64)
        if values.ndim != 2:
            raise ValueError(f"An embedding must be cells x dimensions, got shape {values.shape}.")
        index = adata.obs_names if adata is not None and len(values) == adata.n_obs else None
        columns = [f"Z_{i}" for i in range(values.shape[1])]
        frame = pd.DataFrame(values, index=index, columns=columns)
    if adata is not None and len(frame) != adata.n_obs:
        raise ValueError(f"The embedding has {len(frame)} rows but adata has {adata.n_obs} cells.")
    bad = ~np.isfinite(frame.to_numpy())
    if bad.any():
        rows = np.flatnonzero(bad.any(axis=1))
        raise ValueError(
            f"The embedding has NaN or infinite values in {rows.size} cells (e.g. rows "
            f"{rows[:5].tolist()}); drop or impute those cells first."
        )
    if frame.shape[0] < 3 or frame.shape[1] < 1:
        raise ValueError(f"An embedding needs at least 3 cells and 1 dimension, got {frame.shape}.")
    return frame

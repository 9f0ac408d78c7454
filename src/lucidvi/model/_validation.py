"""Checks of user input that fail early, with errors that say what to do."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from anndata import AnnData
from anndata.abc import CSCDataset

from lucidvi._layers import read_layer
from lucidvi._matrix_rows import CSC_ON_DISK, row_sums, stored_values


def check_obs_keys(adata: AnnData, **keys: str | list[str] | None) -> None:
    """Raise a ValueError naming any ``obs`` column that is missing.

    Parameters
    ----------
    adata
        The AnnData to check.
    **keys
        Argument name -> obs column name(s) given for it (``None`` to skip).
    """
    for argument, columns in keys.items():
        if columns is None:
            continue
        for column in [columns] if isinstance(columns, str) else list(columns):
            if column not in adata.obs.columns:
                raise ValueError(
                    f"{argument}={column!r} is not a column of adata.obs. Available columns: "
                    f"{list(adata.obs.columns)}. Pass an existing column or add it first."
                )
            if adata.obs[column].isna().any():
                n_missing = int(adata.obs[column].isna().sum())
                raise ValueError(
                    f"adata.obs[{column!r}] ({argument}) has {n_missing} missing values. Fill "
                    f"them (e.g. with an 'unknown' category) or drop those cells first."
                )


def check_count_matrix(adata: AnnData, layer: str | None) -> None:
    """Raise a ValueError when the count matrix cannot be modelled with a count likelihood.

    Checks that the layer exists, that values are finite, non-negative integers, and that no
    cell has zero total counts.

    Parameters
    ----------
    adata
        The AnnData to check.
    layer
        Layer holding the counts (``None`` for ``adata.X``).
    """
    matrix, where = read_layer(adata, layer)
    if isinstance(matrix, CSCDataset):
        raise ValueError(f"{where}: {CSC_ON_DISK}")
    for values in stored_values(matrix):
        if not np.all(np.isfinite(values)):
            raise ValueError(
                f"{where} contains NaN or infinite values. Counts must be finite: replace "
                f"them or remove the affected cells/genes."
            )
        if np.any(values < 0):
            raise ValueError(
                f"{where} contains negative values, so it does not hold raw counts. Pass the "
                f"layer with raw UMI counts via layer= (e.g. layer='counts')."
            )
        if np.any(values != np.round(values)):
            raise ValueError(
                f"{where} contains non-integer values (is it normalised or log-transformed?). "
                f"This model's likelihood needs raw integer counts: pass them via layer=."
            )
    totals = row_sums(matrix)
    zero_cells = np.flatnonzero(totals == 0)
    if zero_cells.size:
        shown = ", ".join(map(str, adata.obs_names[zero_cells[:5]]))
        raise ValueError(
            f"{zero_cells.size} cells have zero total counts (e.g. {shown}); their library size "
            f"is undefined. Drop them first with `scanpy.pp.filter_cells(adata, min_counts=1)`."
        )


def panel_mask(var_names: Iterable[str], panel: Iterable[str]) -> np.ndarray:
    """Boolean mask over ``var_names`` of the genes in ``panel``.

    Parameters
    ----------
    var_names
        The model's genes, in order.
    panel
        Gene names; each must be one of ``var_names``, without repeats.

    Returns
    -------
    Boolean array of length ``len(var_names)``.
    """
    var_names = np.asarray(list(var_names))
    panel = [panel] if isinstance(panel, str) else list(panel)
    if not panel:
        raise ValueError("The panel is empty: give at least one gene name.")
    unknown = sorted(set(panel) - set(var_names))
    if unknown:
        raise ValueError(
            f"{len(unknown)} panel genes are not among the model's genes, e.g. {unknown[:5]}; "
            f"subset the panel to `model.adata.var_names`."
        )
    if len(set(panel)) < len(panel):
        raise ValueError("The panel lists some genes more than once; give each gene once.")
    return np.isin(var_names, panel)

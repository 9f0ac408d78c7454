"""Name clusters by the marker genes they express most, with the table that shows why."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import scipy.sparse as sp

if TYPE_CHECKING:
    from anndata import AnnData


def _log_normalised(counts, columns: np.ndarray) -> np.ndarray:
    """``log1p`` of the ``columns`` of counts scaled to the median library size (dense, new).

    Library sizes are over every gene; only the chosen columns are copied and transformed.
    """
    totals = np.asarray(counts.sum(axis=1), dtype=np.float64).ravel()
    target = float(np.median(totals[totals > 0])) if np.any(totals > 0) else 1.0
    scale = np.divide(target, totals, out=np.zeros_like(totals), where=totals > 0)
    chosen = counts[:, columns]
    chosen = chosen.toarray() if sp.issparse(chosen) else np.asarray(chosen)
    return np.log1p(chosen.astype(np.float64) * scale[:, None])


def annotate_clusters(
    adata: AnnData,
    markers: Mapping[str, Sequence[str]],
    groupby: str,
    *,
    layer: str | None = None,
    key_added: str = "cell_type",
    min_score: float = 0.2,
    unassigned: str = "unassigned",
) -> pd.DataFrame:
    """Give each cluster the cell type whose marker genes it expresses most.

    Counts are scaled to the median library size and ``log1p``-transformed (on a copy).
    Each cluster's mean of each marker gene is scaled across clusters to [0, 1] (0 for the
    cluster that expresses it least, 1 for the one that expresses it most, as in the
    ``standard_scale="var"`` of :func:`scanpy.pl.dotplot`), so neither a gene's overall level
    nor the number of clusters a large type splits into sets the scale. A type's score in a
    cluster is the mean of its markers' scaled values. A cluster takes the type with the
    highest score when that score is at least ``min_score``, and ``unassigned`` otherwise;
    several clusters may take the same type.

    Parameters
    ----------
    adata
        AnnData with raw counts in ``X`` or ``layers[layer]`` and clusters in ``obs``. Only
        ``obs[key_added]`` is written.
    markers
        Cell type -> its marker genes (names in ``var_names``).
    groupby
        Column of ``obs`` with the clusters (e.g. from :func:`scanpy.tl.leiden`).
    layer
        Layer with the counts (default ``X``).
    key_added
        Column of ``obs`` that receives the cell types (categorical).
    min_score
        Smallest winning score (a mean of scaled marker levels, in [0, 1]) for a cluster to
        be named.
    unassigned
        Name given to the clusters no type reaches ``min_score`` in.

    Returns
    -------
    The marker table, one row per cluster: ``n_cells``, ``cell_type``, ``score``,
    ``runner_up`` (the second-best type), ``runner_up_score``, then the cluster's mean
    log-normalised expression of each marker gene.

    Examples
    --------
    >>> sc.tl.leiden(adata, key_added="leiden")
    >>> table = lucidvi.tl.annotate_clusters(
    ...     adata, {"Rod": ["Nrl", "Nr2e3"], "Bipolar": ["Vsx2", "Grm6"]}, groupby="leiden"
    ... )
    """
    if len(markers) < 2:
        raise ValueError("markers must name at least two cell types.")
    empty = [name for name, genes in markers.items() if len(genes) == 0]
    if empty:
        raise ValueError(f"Cell types without marker genes: {empty}.")
    genes = list(dict.fromkeys(gene for names in markers.values() for gene in names))
    missing = [gene for gene in genes if gene not in adata.var_names]
    if missing:
        raise KeyError(f"Marker genes not in var_names: {missing}.")
    if groupby not in adata.obs:
        raise KeyError(f"obs has no column {groupby!r}.")
    clusters = adata.obs[groupby].astype(str).to_numpy()
    if pd.isna(adata.obs[groupby]).any():
        raise ValueError(f"obs[{groupby!r}] has missing values.")
    counts = adata.X if layer is None else adata.layers[layer]
    columns = adata.var_names.get_indexer(genes)
    expression = _log_normalised(counts, columns)
    means = pd.DataFrame(expression, columns=genes).groupby(clusters, sort=True).mean()
    lowest = means.min(axis=0)
    spread = (means.max(axis=0) - lowest).replace(0.0, np.nan)
    scaled = ((means - lowest) / spread).fillna(0.0)
    scores = pd.DataFrame(
        {name: scaled[list(names)].mean(axis=1) for name, names in markers.items()}
    )
    order = np.argsort(-scores.to_numpy(), axis=1)
    rows = np.arange(len(scores))
    best, second = order[:, 0], order[:, 1]
    best_score = scores.to_numpy()[rows, best]
    named = np.where(best_score >= min_score, scores.columns.to_numpy()[best], unassigned)
    table = pd.DataFrame(
        {
            "n_cells": pd.Series(clusters).value_counts().reindex(means.index).to_numpy(),
            "cell_type": named,
            "score": best_score,
            "runner_up": scores.columns.to_numpy()[second],
            "runner_up_score": scores.to_numpy()[rows, second],
        },
        index=pd.Index(means.index, name=groupby),
    )
    table = pd.concat([table, means], axis=1)
    cell_types = pd.Series(table["cell_type"]).reindex(clusters).to_numpy()
    categories = [name for name in markers if name in set(named)]
    categories += [unassigned] if unassigned in set(named) else []
    adata.obs[key_added] = pd.Categorical(cell_types, categories=categories)
    return table

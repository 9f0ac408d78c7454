"""How well a clustering recovers known labels: scores, confusion table and embedding plots."""

from __future__ import annotations

import logging
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from anndata import AnnData
from pandas.api.types import is_integer_dtype

from lucidvi.metrics import (
    clustering_log_loss,
    clustering_scores,
    match_clusters,
    matched_cluster_probability,
)

from .._result import TableResult, plot_method

if TYPE_CHECKING:
    from collections.abc import Iterator

    from matplotlib.axes import Axes

    from lucidvi.model import MixtureVI

logger = logging.getLogger(__name__)

# the columns every table has; the embedding's two columns are optional
_COLUMNS = ["cell", "label", "cluster", "probability", "probability_true"]
_EMBEDDING = ["embedding_1", "embedding_2"]


def _scalar(value: Any) -> Any:
    """Return a numpy scalar as the Python scalar it holds (saves to JSON, compares equal)."""
    return value.item() if isinstance(value, np.generic) else value


def _aligned(values: Any, adata: AnnData, what: str) -> Any:
    """Reorder a Series/DataFrame indexed by ``adata.obs_names``; check the length of the rest."""
    if isinstance(values, pd.Series | pd.DataFrame):
        index = values.index
        if index.is_unique and len(index) == adata.n_obs and index.isin(adata.obs_names).all():
            return values.reindex(adata.obs_names)
    if len(values) != adata.n_obs:
        raise ValueError(f"The {what} have {len(values)} rows, adata has {adata.n_obs} cells.")
    return values


def _plain(values: Any) -> np.ndarray:
    """Integer ids stay int64; anything else becomes str, so a saved table reads back equal."""
    series = values if isinstance(values, pd.Series) else pd.Series(values)
    if isinstance(series.dtype, pd.CategoricalDtype):
        integer = is_integer_dtype(series.cat.categories.dtype)
        series = series.astype(series.cat.categories.dtype if integer else object)
    if is_integer_dtype(series.dtype):
        return series.to_numpy(dtype=np.int64)
    return series.astype(str).to_numpy(dtype=object)


def _sorted_unique(values: pd.Series) -> tuple[Hashable, ...]:
    return tuple(_scalar(v) for v in np.sort(pd.unique(values)))


def _top_probability(probabilities: np.ndarray | pd.DataFrame) -> np.ndarray:
    """Each cell's largest membership probability (checked by the metric before)."""
    values = probabilities.to_numpy() if isinstance(probabilities, pd.DataFrame) else probabilities
    return np.asarray(values, dtype=np.float64).max(axis=1)


def _coordinates(adata: AnnData, basis: str | None) -> np.ndarray | None:
    if basis is None:
        return None
    if basis not in adata.obsm:
        logger.info("adata.obsm has no %r: the evaluation will have no embedding plot.", basis)
        return None
    embedding = adata.obsm[basis]
    values = np.asarray(
        embedding.to_numpy() if isinstance(embedding, pd.DataFrame) else embedding, np.float64
    )
    if values.ndim != 2 or values.shape[1] < 2:
        raise ValueError(f"adata.obsm[{basis!r}] must be cells x 2 (or more), got {values.shape}.")
    if not np.isfinite(values[:, :2]).all():
        raise ValueError(f"adata.obsm[{basis!r}] contains NaN or infinite values.")
    return values[:, :2]


@dataclass(frozen=True, eq=False)
class ClusteringEvaluation(TableResult):
    """A clustering of cells scored against known labels.

    Attributes
    ----------
    table
        One row per cell, in the order of ``adata``: ``cell``, ``label`` (the truth),
        ``cluster``, ``probability`` (the cell's largest cluster membership probability) and
        ``probability_true`` (its probability of the cluster matched to its label, 0 when the
        label has no cluster: what the log-loss averages), both NaN without probabilities;
        plus ``embedding_1`` and ``embedding_2`` when the ``basis`` embedding was available.
        Integer labels and cluster ids are kept as integers, anything else as strings.
    labels_key
        The ``adata.obs`` column that held the labels.
    basis
        The ``adata.obsm`` key of the embedding that was asked for (``None``: none asked).
    label_order
        The labels, in display order (a categorical's category order, else sorted).
    cluster_order
        The cluster ids, sorted.
    """

    table: pd.DataFrame
    labels_key: str
    basis: str | None = "X_umap"
    label_order: tuple[Hashable, ...] = ()
    cluster_order: tuple[Hashable, ...] = ()

    def _validate(self) -> None:
        missing = [c for c in _COLUMNS if c not in self.table.columns]
        if missing:
            raise ValueError(f"table lacks the columns {missing}.")
        if sum(c in self.table.columns for c in _EMBEDDING) == 1:
            raise ValueError(f"table needs both or neither of the columns {_EMBEDDING}.")
        if len(self.table) == 0:
            raise ValueError("table is empty.")
        if self.table[["label", "cluster"]].isna().any().any():
            raise ValueError("table has missing labels or clusters.")
        probability = self.table[["probability", "probability_true"]].isna()
        if not (probability.all().all() or not probability.any().any()):
            raise ValueError("probability and probability_true must be all given or all NaN.")
        for name, column in (("label_order", "label"), ("cluster_order", "cluster")):
            order = tuple(_scalar(v) for v in getattr(self, name)) or _sorted_unique(
                self.table[column]
            )
            if len(set(order)) != len(order) or set(order) != set(self.table[column]):
                raise ValueError(f"{name} must list each value of table[{column!r}] once.")
            object.__setattr__(self, name, order)

    @classmethod
    def compute(
        cls,
        model_or_labels: MixtureVI | str | pd.Series | np.ndarray | Sequence[Hashable],
        adata: AnnData | None,
        labels_key: str,
        basis: str | None = "X_umap",
        probabilities: np.ndarray | pd.DataFrame | None = None,
    ) -> ClusteringEvaluation:
        """Score a clustering of the cells of ``adata`` against the labels in ``adata.obs``.

        Parameters
        ----------
        model_or_labels
            A fitted :class:`~lucidvi.model.MixtureVI` (or any model with its
            ``get_cluster_assignments(adata=)``, a Series of cluster ids indexed by the cell
            names, and ``get_cluster_probabilities(adata=)``, cells x clusters with the cluster
            ids as columns); or the clusters themselves: the name of an ``adata.obs`` column,
            or one id per cell (a Series indexed by ``adata.obs_names`` is aligned to them).
        adata
            The cells, with the labels in ``adata.obs``. ``None`` with a model: its own
            ``model.adata``.
        labels_key
            The ``adata.obs`` column with the true labels.
        basis
            Key of a 2-d embedding in ``adata.obsm`` (its first two columns) for
            :meth:`plot_embedding`. When absent the evaluation is computed without it;
            ``None`` skips it.
        probabilities
            Cells x clusters membership probabilities for the log-loss (see
            :func:`~lucidvi.metrics.clustering_scores`). With a model, default its
            ``get_cluster_probabilities``; otherwise no log-loss when ``None``.

        Returns
        -------
        The evaluation; its scores are in :attr:`scores`.
        """
        is_model = hasattr(model_or_labels, "get_cluster_assignments")
        if adata is None:
            if not is_model or getattr(model_or_labels, "adata", None) is None:
                raise ValueError("adata is needed unless a model with its own adata is passed.")
            adata = model_or_labels.adata
        if labels_key not in adata.obs.columns:
            raise ValueError(
                f"labels_key={labels_key!r} is not a column of adata.obs "
                f"(available: {list(adata.obs.columns)})."
            )
        truth = adata.obs[labels_key]
        if truth.isna().any():
            raise ValueError(
                f"adata.obs[{labels_key!r}] has {int(truth.isna().sum())} missing values; "
                f"evaluate on the labelled cells only (e.g. adata[adata.obs[{labels_key!r}]"
                f".notna()])."
            )
        if is_model:
            clusters = model_or_labels.get_cluster_assignments(adata=adata)
            if probabilities is None and hasattr(model_or_labels, "get_cluster_probabilities"):
                probabilities = model_or_labels.get_cluster_probabilities(adata=adata)
        elif isinstance(model_or_labels, str):
            if model_or_labels not in adata.obs.columns:
                raise ValueError(
                    f"Clusters {model_or_labels!r} are not a column of adata.obs "
                    f"(available: {list(adata.obs.columns)})."
                )
            clusters = adata.obs[model_or_labels]
        else:
            clusters = model_or_labels
        clusters = _aligned(clusters, adata, "cluster assignments")
        if pd.isna(np.asarray(clusters)).any():
            raise ValueError("The clusters have missing values (NaN/None); assign every cell.")
        labels, clusters = _plain(truth), _plain(clusters)
        true = top = np.full(adata.n_obs, np.nan)
        if probabilities is not None:
            probabilities = _aligned(probabilities, adata, "probabilities")
            true = matched_cluster_probability(labels, clusters, probabilities)
            top = _top_probability(probabilities)
        table = pd.DataFrame(
            {
                "cell": adata.obs_names.astype(str),
                "label": labels,
                "cluster": clusters,
                "probability": top,
                "probability_true": true,
            }
        )
        coordinates = _coordinates(adata, basis)
        if coordinates is not None:
            table[_EMBEDDING[0]], table[_EMBEDDING[1]] = coordinates[:, 0], coordinates[:, 1]
        label_order = _sorted_unique(table["label"])
        if isinstance(truth.dtype, pd.CategoricalDtype):
            observed = set(label_order)
            in_order = (_scalar(v) for v in _plain(truth.cat.categories.to_series()))
            label_order = tuple(v for v in in_order if v in observed)
        return cls(table=table, labels_key=labels_key, basis=basis, label_order=label_order)

    @property
    def has_probabilities(self) -> bool:
        """Whether membership probabilities were given (and the log-loss is scored)."""
        return bool(self.table["probability"].notna().all())

    @property
    def has_embedding(self) -> bool:
        """Whether the table holds embedding coordinates for :meth:`plot_embedding`."""
        return _EMBEDDING[0] in self.table.columns

    @cached_property
    def scores(self) -> dict[str, float]:
        """``accuracy``, ``nmi``, ``ari`` and, with probabilities, ``log_loss``.

        As :func:`~lucidvi.metrics.clustering_scores`; the log-loss is recomputed from the
        ``probability_true`` column, so it survives saving and loading.
        """
        scores = clustering_scores(self.table["label"], self.table["cluster"])
        if self.has_probabilities:
            scores["log_loss"] = clustering_log_loss(self.table["probability_true"].to_numpy())
        return scores

    @cached_property
    def matching(self) -> dict[Hashable, Hashable]:
        """``{cluster: label}`` as :func:`~lucidvi.metrics.match_clusters` gives it."""
        return match_clusters(self.table["label"], self.table["cluster"])

    @cached_property
    def matched_clusters(self) -> dict[Hashable, Hashable]:
        """``{cluster: label}`` for the clusters of the optimal one-to-one matching only."""
        return match_clusters(self.table["label"], self.table["cluster"], one_to_one=True)

    @cached_property
    def confusion(self) -> pd.DataFrame:
        """Labels x clusters cell counts.

        Rows follow :attr:`label_order`; columns put each label's matched cluster in the row
        order (the matched pairs fall on the diagonal), then the unmatched clusters, grouped by
        the label they overlap most.
        """
        rank = {label: i for i, label in enumerate(self.label_order)}
        position = {cluster: i for i, cluster in enumerate(self.cluster_order)}

        def key(cluster: Hashable) -> tuple[int, int, int]:
            unmatched = int(cluster not in self.matched_clusters)
            return unmatched, rank[self.matching[cluster]], position[cluster]

        columns = sorted(self.cluster_order, key=key)
        counts = pd.crosstab(self.table["label"], self.table["cluster"])
        counts = counts.reindex(index=list(self.label_order), columns=columns, fill_value=0)
        counts.index.name, counts.columns.name = "label", "cluster"
        return counts

    def to_dataframe(self) -> pd.DataFrame:
        """Return the per-cell table (see :attr:`table`)."""
        return self.table.copy()

    def _parameters(self) -> dict[str, Any]:
        return {
            "labels_key": self.labels_key,
            "basis": self.basis,
            "label_order": list(self.label_order),
            "cluster_order": list(self.cluster_order),
        }

    @classmethod
    def _from_table(cls, table: pd.DataFrame, parameters: dict[str, Any]) -> ClusteringEvaluation:
        table = table.assign(cell=table["cell"].astype(str))
        for column, order in (("label", "label_order"), ("cluster", "cluster_order")):
            integer = all(isinstance(v, int) for v in parameters[order])
            table[column] = table[column].astype(np.int64 if integer else str)
        return cls(
            table=table,
            labels_key=parameters["labels_key"],
            basis=parameters["basis"],
            label_order=tuple(parameters["label_order"]),
            cluster_order=tuple(parameters["cluster_order"]),
        )

    plot_confusion = plot_method(
        "clustering_confusion",
        "Annotated heatmap of :attr:`confusion`, matched pairs outlined.",
        options="(``normalize``: by label, by cluster or counts)",
    )

    plot_embedding = plot_method(
        "clustering_embedding",
        "Scatter plot of the embedding, coloured by label (default) or by cluster.",
        options='(one panel per call, ``color="label"`` or ``color="cluster"``; a cluster takes '
        "the colour of its matched label, so agreement shows as matching colours when the two "
        "panels are drawn side by side)",
    )

    def _figures(self) -> Iterator[tuple[str, Axes]]:
        yield "confusion", self.plot_confusion()
        if self.has_embedding:  # one image of both panels, labels and clusters
            import matplotlib.pyplot as plt

            _, axes = plt.subplots(1, 2, figsize=(11.0, 4.2), layout="constrained")
            self.plot_embedding(color="cluster", ax=axes[1])
            yield "embedding", self.plot_embedding(color="label", ax=axes[0])

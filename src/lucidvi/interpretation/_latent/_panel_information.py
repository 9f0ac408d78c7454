"""How much a gene panel's embedding says about the full transcriptome's, in nats."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from anndata import AnnData
from scvi.utils import track

from lucidvi._docstrings import lucidvi_dsp
from lucidvi._registration import unregistered_copy
from lucidvi.metrics import knn_accuracy, mutual_information
from lucidvi.tl import PANEL_STRATEGIES, select_panel

from .._result import TableResult, plot_method

if TYPE_CHECKING:
    from collections.abc import Iterator

    from matplotlib.axes import Axes

    from lucidvi.model import LinearVI

logger = logging.getLogger(__name__)

# nested panel sizes when none are given: from a small targeted panel to a large one
DEFAULT_SIZES = (100, 200, 500, 1000)
# the columns of the table, in order
_COLUMNS = [
    "panel", "group", "n_genes", "mutual_information", "ci_low", "ci_high", "upper_bound",
    "knn_accuracy", "genes",
]  # fmt: skip
_GENE_SEPARATOR = ";"  # joins a panel's genes in one table cell


@dataclass(frozen=True, eq=False)
class PanelInformation(TableResult):
    """Mutual information between gene panels' cell embeddings and the full transcriptome's.

    Attributes
    ----------
    table
        One row per panel: ``panel`` (its name), ``group`` (the ranking a nested panel was cut
        from, or ``"given"``), ``n_genes``, ``mutual_information`` (nats) with its interval
        ``ci_low``/``ci_high``, ``upper_bound`` (``log N`` for InfoNCE, else NaN),
        ``knn_accuracy`` (of the panel embedding, NaN without labels) and ``genes``
        (``";"``-joined names).
    method
        The estimator of :func:`~lucidvi.metrics.mutual_information`.
    embedding
        ``"masked"`` (one gene-masked model embeds every panel) or ``"refit"`` (a model trained
        on each panel).
    n_cells
        Number of cells the information was estimated on.
    full_knn_accuracy
        kNN accuracy of the full transcriptome's embedding (NaN without labels): the ceiling
        the panels approach.
    """

    table: pd.DataFrame
    method: Literal["gaussian", "ksg", "infonce"]
    embedding: Literal["masked", "refit"]
    n_cells: int
    full_knn_accuracy: float = float("nan")

    def _validate(self) -> None:
        missing = [c for c in _COLUMNS if c not in self.table.columns]
        if missing:
            raise ValueError(f"table lacks the columns {missing}.")
        if self.table["panel"].duplicated().any():
            raise ValueError("Panel names in table must be unique.")

    @classmethod
    @lucidvi_dsp.dedent
    def compute(
        cls,
        model: LinearVI,
        adata: AnnData | None = None,
        panels: dict[str, Sequence[str]] | None = None,
        sizes: Sequence[int] | None = None,
        order: str | Sequence[str] = "mean_expression",
        method: Literal["gaussian", "ksg", "infonce"] = "gaussian",
        *,
        labels_key: str | None = None,
        indices: Sequence[int] | None = None,
        embedding: Literal["masked", "refit"] = "masked",
        refit_kwargs: dict[str, Any] | None = None,
        n_bootstrap: int = 200,
        seed: int = 0,
        **mi_kwargs: Any,
    ) -> PanelInformation:
        """Estimate the information each panel's embedding carries about the full one.

        The full embedding is ``model``'s latent representation (posterior means) from all
        genes; a panel's is the same model's from the panel's genes alone
        (:meth:`~lucidvi.model.LinearVI.get_panel_representation`), or that of a model trained
        on the panel (``embedding="refit"``).

        Parameters
        ----------
        model
            A trained :class:`~lucidvi.model.LinearVI`, built with ``gene_masking`` for
            ``embedding="masked"``.
        adata
            Cells to evaluate, registered with the model; its training data when ``None``.
        panels
            Named panels (lists of gene names). When ``None``, nested panels: the first
            ``size`` genes of each ranking in ``order``, for each of ``sizes``.
        sizes
            Sizes of the nested panels; default 100, 200, 500 and 1000 genes, those smaller
            than the number of genes.
        order
            Ranking(s) the nested panels are cut from: one or several of
            ``"mean_expression"``, ``"hvg"`` and ``"greedy_information"`` (with this model;
            see :func:`lucidvi.tl.select_panel`).
        method
            Estimator (see :func:`~lucidvi.metrics.mutual_information`). With
            ``embedding="refit"`` the two embeddings lie in different spaces: ``"infonce"``
            then needs ``critic="learned"``.
        labels_key
            An ``adata.obs`` column of cell types: adds the 5-fold cross-validated 15-nearest-
            neighbour accuracy of each embedding (:func:`~lucidvi.metrics.knn_accuracy`).
        indices
            Cells of ``adata`` to use; all when ``None``.
        embedding
            ``"masked"`` or ``"refit"``.
        refit_kwargs
            ``"refit"``: passed to each panel model's ``train`` (default ``max_epochs=200``,
            no progress bar).
        n_bootstrap
            Resamples for each estimate's interval (0: none).
        seed
            Seed of the resampling and the folds.
        **mi_kwargs
            Passed to :func:`~lucidvi.metrics.mutual_information` (``k``, ``temperature``,
            ``critic``, ...).

        Returns
        -------
        The result; plot it with :meth:`plot_information`.
        """
        if embedding not in ("masked", "refit"):
            raise ValueError(f"embedding must be 'masked' or 'refit', got {embedding!r}.")
        if embedding == "masked" and model.module.masking_range is None:
            raise ValueError(
                "The model was trained without gene masking, so it cannot embed a panel. "
                "Build it with LinearVI(adata, gene_masking=(0.0, 0.95)) and train it, or use "
                "embedding='refit' (one model per panel)."
            )
        if embedding == "refit" and method == "infonce" and mi_kwargs.get("critic") != "learned":
            raise ValueError(
                "Refitted panel models have their own latent spaces, so cosine InfoNCE does not "
                "apply: pass critic='learned' or use method='gaussian'."
            )
        adata = model.adata if adata is None else adata
        cells = np.arange(adata.n_obs) if indices is None else np.asarray(indices)
        panels, groups = _panels(model, adata, panels, sizes, order)
        labels = _labels(adata, labels_key, cells)
        full = model.get_latent_representation(adata, indices=cells)
        full_accuracy = knn_accuracy(full, labels, seed=seed) if labels is not None else np.nan
        rows = []
        for name, genes in track(panels.items(), description="Panels", total=len(panels)):
            if embedding == "masked":
                panel_embedding = model.get_panel_representation(genes, adata, indices=cells)
            else:
                panel_embedding = _refit_embedding(model, adata, genes, cells, refit_kwargs)
            mi = mutual_information(
                panel_embedding, full, method, n_bootstrap=n_bootstrap, seed=seed, **mi_kwargs
            )
            accuracy = (
                knn_accuracy(panel_embedding, labels, seed=seed) if labels is not None else np.nan
            )
            rows.append({
                "panel": name, "group": groups[name], "n_genes": len(genes),
                "mutual_information": mi.estimate, "ci_low": mi.ci_low, "ci_high": mi.ci_high,
                "upper_bound": np.nan if mi.upper_bound is None else mi.upper_bound,
                "knn_accuracy": accuracy, "genes": _GENE_SEPARATOR.join(genes),
            })  # fmt: skip
        return cls(
            table=pd.DataFrame(rows, columns=_COLUMNS),
            method=method,
            embedding=embedding,
            n_cells=len(cells),
            full_knn_accuracy=float(full_accuracy),
        )

    def to_dataframe(self) -> pd.DataFrame:
        """Return the table (one row per panel)."""
        return self.table.copy()

    @property
    def panels(self) -> dict[str, list[str]]:
        """The panels, by name."""
        return {
            name: genes.split(_GENE_SEPARATOR)
            for name, genes in zip(self.table["panel"], self.table["genes"], strict=True)
        }

    plot_information = plot_method(
        "panel_information",
        "Mutual information (or kNN accuracy) against panel size, one line per group.",
        options='(``metric="knn_accuracy"`` for the accuracy)',
    )

    def _parameters(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "embedding": self.embedding,
            "n_cells": self.n_cells,
            "full_knn_accuracy": self.full_knn_accuracy,
        }

    @classmethod
    def _from_table(cls, table: pd.DataFrame, parameters: dict[str, Any]) -> PanelInformation:
        return cls(table=table.reset_index(drop=True), **parameters)

    def _figures(self) -> Iterator[tuple[str, Axes]]:
        yield "mutual_information", self.plot_information()
        if self.table["knn_accuracy"].notna().any():
            yield "knn_accuracy", self.plot_information(metric="knn_accuracy")


def _panels(
    model: LinearVI,
    adata: AnnData,
    panels: dict[str, Sequence[str]] | None,
    sizes: Sequence[int] | None,
    order: str | Sequence[str],
) -> tuple[dict[str, list[str]], dict[str, str]]:
    """Named panels and the group of each: the given ones, or nested cuts of rankings."""
    if panels is not None:
        if sizes is not None:
            raise ValueError("Give either panels or sizes, not both.")
        if not panels:
            raise ValueError("panels is empty.")
        named = {str(name): list(genes) for name, genes in panels.items()}
        return named, dict.fromkeys(named, "given")
    orders = [order] if isinstance(order, str) else list(order)
    unknown = [o for o in orders if o not in PANEL_STRATEGIES]
    if unknown or not orders:
        raise ValueError(f"order must be one or several of {PANEL_STRATEGIES}, got {order!r}.")
    if sizes is None:
        sizes = [s for s in DEFAULT_SIZES if s < adata.n_vars]
        if not sizes:
            raise ValueError(f"adata has only {adata.n_vars} genes: pass smaller sizes.")
    sizes = sorted(int(s) for s in sizes)
    if sizes[0] < 1 or sizes[-1] > adata.n_vars:
        raise ValueError(f"sizes must lie between 1 and the {adata.n_vars} genes, got {sizes}.")
    layer = model.registry_["setup_args"].get("layer")
    named, groups = {}, {}
    for strategy in orders:
        ranking = select_panel(
            adata, sizes[-1], model=model if strategy == "greedy_information" else None,
            strategy=strategy, layer=layer,
        )  # fmt: skip
        for size in sizes:
            named[f"{strategy} {size}"] = ranking[:size]
            groups[f"{strategy} {size}"] = strategy
    return named, groups


def _labels(adata: AnnData, labels_key: str | None, cells: np.ndarray) -> np.ndarray | None:
    if labels_key is None:
        return None
    if labels_key not in adata.obs.columns:
        raise ValueError(f"labels_key={labels_key!r} is not a column of adata.obs.")
    return adata.obs[labels_key].astype(str).to_numpy()[cells]


def _refit_embedding(
    model: LinearVI,
    adata: AnnData,
    genes: list[str],
    cells: np.ndarray,
    refit_kwargs: dict[str, Any] | None,
) -> np.ndarray:
    """Latent representation of a LinearVI with the model's settings, trained on the panel."""
    setup_args = dict(model.registry_["setup_args"])
    params = dict(model.init_params_["non_kwargs"])
    params.pop("gene_masking", None)
    panel_adata = unregistered_copy(adata[:, genes])
    layer = setup_args.get("layer")
    counts = panel_adata.X if layer is None else panel_adata.layers[layer]
    empty = np.asarray(counts.sum(axis=1)).ravel() == 0
    if empty.any():
        raise ValueError(
            f"{int(empty.sum())} cells have no counts on a panel of {len(genes)} genes, so a "
            f"model of the panel cannot use them; use embedding='masked' or a larger panel."
        )
    type(model).setup_anndata(panel_adata, **setup_args)
    panel_model = type(model)(panel_adata, **params)
    panel_model.train(**{"max_epochs": 200, "enable_progress_bar": False, **(refit_kwargs or {})})
    return panel_model.get_latent_representation(indices=cells)

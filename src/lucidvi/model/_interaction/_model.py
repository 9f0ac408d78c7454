"""InteractionVI: which neighbouring cell types change a cell's expression, and how."""

from __future__ import annotations

import logging
import warnings
from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from anndata import AnnData
from scvi import REGISTRY_KEYS
from scvi.data import AnnDataManager
from scvi.data.fields import CategoricalObsField, LayerField, ObsmField
from scvi.model.base import BaseModelClass, UnsupervisedTrainingMixin
from scvi.utils import setup_anndata_dsp

from lucidvi._constants import (
    NEIGHBOR_DISTANCE_KEY,
    NEIGHBOR_DISTANCE_OBSM,
    NEIGHBOR_INDEX_KEY,
    NEIGHBOR_INDEX_OBSM,
    NEIGHBORS_UNS,
)
from lucidvi._docstrings import lucidvi_dsp
from lucidvi._layers import read_layer
from lucidvi._matrix_rows import read_rows
from lucidvi.module import InteractionModule
from lucidvi.train import (
    EpochLoggingTrainingPlan,
    NeighborhoodDataSplitter,
    TrainRunner,
    calibrate_niche,
    refit_intrinsic,
)

from .._validation import check_count_matrix, check_obs_keys
from ._outputs import InteractionOutputsMixin
from ._precomputed_graph import graph_neighbors
from ._spatial_neighbors import check_spatial_inputs, spatial_neighbors
from ._spatialdata_table import SpatialDataSetupMixin

logger = logging.getLogger(__name__)

# Cells whose expression fixes the senders' principal axes: a random 20,000 estimate the top
# axes closely, at a bounded cost for a dense copy and its SVD.
_MAX_CELLS_FOR_AXES = 20_000
# Default learning rate: 3e-3 rather than 1e-2 (docs/benchmarks.md, "Models and training").
_LEARNING_RATE = 3e-3
# Default share of the cells held out as validation receivers (scvi-tools' default is 0.9 for
# training); their number sets the power of the calibration's test (docs/benchmarks.md).
_TRAIN_SIZE = 0.8
# Epochs without improvement of the validation loss before early stopping.
_EARLY_STOPPING_PATIENCE = 5


class InteractionVI(
    InteractionOutputsMixin, SpatialDataSetupMixin, UnsupervisedTrainingMixin, BaseModelClass
):
    """Spatial cell-cell interactions by attention over each cell's neighbours.

    Each cell's expression is an *intrinsic* part, set by its type (and batch), plus a *niche*
    part: multi-head attention from the cell (the receiver; queries from its type) over its
    spatial neighbours (the senders; keys from their expression and type), with a learned
    decay with distance per head and a null slot for attending to no neighbour
    (:class:`~lucidvi.module.InteractionModule`). The niche part never sees the receiver's own
    expression, so what it predicts comes from the neighbourhood: which heads and which
    neighbours carry it can be read from :meth:`get_attention`, ablated with ``heads=`` and
    masked with ``mask_sender_types=`` / ``mask_senders=``. After training, held-out cells
    decide which receiver types keep a niche (:meth:`train`, :meth:`get_niche_calibration`).

    Parameters
    ----------
    adata
        AnnData registered with :meth:`setup_anndata`.
    n_heads
        Number of attention heads; 0 fits the intrinsic part alone (a cell-type baseline).
    n_latent
        Dimension of the niche embedding, a multiple of ``n_heads`` (each head gets
        ``n_latent / n_heads``).
    n_sender_components
        Principal components of the senders' log-normalised expression that, with their type,
        make their embedding (the keys; also the values with ``niche_values="sender"``). Fixed
        when the model is built, from up to 20,000 cells.
    niche_rank
        Gene programmes per head: each head changes a receiver's expression along this many
        gene loading vectors.
    likelihood
        ``"nb"`` for counts (the library size is observed), ``"gaussian"`` for log-normalised
        RNA or protein intensities.
    dispersion
        ``"gene-label"``: the inverse dispersion (``"nb"``) or standard deviation
        (``"gaussian"``) is per cell type and gene; ``"gene"``: per gene, shared by all types.
    niche_values
        ``"constant"``: each head has one value, so its effect on a receiver is how much it
        attends to neighbours rather than to none, and the attention weights say which
        neighbours matter; ``"sender"``: values from the senders' embeddings (a neighbour's
        expression can also change the size and sign of its effect).

    Examples
    --------
    >>> adata = lucidvi.data.simulate_spatial_niches(lucidvi.data.cbmc(), "cell_type",
    ...     interactions=[("B", "CD14+ Mono", 15.0)], n_cells=6000)
    >>> lucidvi.model.InteractionVI.setup_anndata(adata, labels_key="cell_type", layer="counts")
    >>> model = lucidvi.model.InteractionVI(adata, n_heads=8)
    >>> model.train(max_epochs=40)
    >>> attention = model.get_attention()  # cell, head, neighbour, distance, weight
    """

    _module_cls = InteractionModule
    _data_splitter_cls = NeighborhoodDataSplitter
    _training_plan_cls = EpochLoggingTrainingPlan
    _train_runner_cls = TrainRunner

    def __init__(
        self,
        adata: AnnData,
        n_heads: int = 8,
        n_latent: int = 64,
        n_sender_components: int = 10,
        niche_rank: int = 1,
        likelihood: Literal["nb", "gaussian"] = "nb",
        dispersion: Literal["gene-label", "gene"] = "gene-label",
        niche_values: Literal["constant", "sender"] = "constant",
    ):
        super().__init__(adata)
        layer = self.registry_["setup_args"]["layer"]
        if likelihood == "nb":
            check_count_matrix(adata, layer)
        distances = self.adata_manager.get_from_registry(NEIGHBOR_DISTANCE_KEY)
        nearest = np.asarray(distances)[:, 0]
        distance_unit = float(np.median(nearest[np.isfinite(nearest)]))
        self.module = self._module_cls(
            n_input=self.summary_stats.n_vars,
            n_labels=self.summary_stats.n_labels,
            n_batch=self.summary_stats.n_batch,
            n_heads=n_heads,
            n_latent=n_latent,
            n_sender_components=n_sender_components,
            niche_rank=niche_rank,
            likelihood=likelihood,
            dispersion=dispersion,
            niche_values=niche_values,
            distance_unit=distance_unit if distance_unit > 0 else 1.0,
        )
        self._initialize_profiles(adata, layer)
        self._model_summary_string = (
            f"InteractionVI model: n_heads={n_heads}, n_latent={n_latent}, "
            f"n_sender_components={n_sender_components}, niche_rank={niche_rank}, "
            f"likelihood={likelihood!r}, dispersion={dispersion!r}, niche_values={niche_values!r}"
        )
        self.niche_calibration_: pd.DataFrame | None = None
        self.refit_failures_: list[str] = []
        self.init_params_ = self._get_init_params(locals())

    def _initialize_profiles(self, adata: AnnData, layer: str | None) -> None:
        """Start the intrinsic part and the spread at moment estimates; fix the sender axes."""
        matrix, _ = read_layer(adata, layer)
        codes = np.asarray(self.adata_manager.get_from_registry(REGISTRY_KEYS.LABELS_KEY)).ravel()
        self.module.initialize_intrinsic(matrix, codes)
        if self.module.n_heads:
            rows = np.random.default_rng(0).permutation(adata.n_obs)[:_MAX_CELLS_FOR_AXES]
            sample = read_rows(matrix, np.sort(rows))
            sample = sample.toarray() if sp.issparse(sample) else sample
            self.module.set_sender_axes(torch.as_tensor(sample, dtype=torch.float32))

    @lucidvi_dsp.dedent
    def train(
        self,
        max_epochs: int | None = None,
        *,
        calibrate: bool = True,
        niche_alpha: float = 0.05,
        plan_kwargs: dict | None = None,
        **kwargs,
    ):
        """Train, then scale each receiver type's niche by how well it predicts held-out cells.

        Training goes through scvi-tools' training plan and Lightning, as for any scvi-tools
        model, at a learning rate of 3e-3 by default (``plan_kwargs={"lr": ...}`` changes it).
        Validation receivers (``train_size`` < 1, 20%% by default) are held out as targets only;
        any cell may be a sender. Early stopping on their loss is on by default (patience 5
        epochs).

        Then, with ``calibrate``, each receiver type's niche is centred on its training mean
        (which moves into the type's profile) and scaled by the factor in [0, 1] that best
        predicts the type's validation cells; a type keeps it only when its cross-fitted gain
        on those cells is significant (one-sided t-test, ``niche_alpha``), and otherwise has
        no niche: its cells attend to no neighbour (:func:`lucidvi.train.calibrate_niche`,
        :meth:`get_niche_calibration`). Last, every type's profile and spread are refitted by
        maximum likelihood with the niche held fixed (also without heads, for a cell-type
        baseline at its optimum; :func:`lucidvi.train.refit_intrinsic`); the types whose refit
        fails (a non-finite objective) keep their trained values and are listed in
        ``refit_failures_``. The calibration and the refit read the cells in a few passes
        (about two epochs' worth in all), from memory, a backed AnnData or lazy counts.
        Why these defaults: ``docs/benchmarks.md``, "Models and training".

        Parameters
        ----------
        max_epochs
            Passes over the training receivers (scvi-tools' heuristic when ``None``).
        calibrate
            Centre and scale each receiver type's niche on the validation cells. Needs
            ``train_size`` < 1; without validation cells a warning says the niche stays as
            trained.
        niche_alpha
            Significance level of the test that keeps a type's niche.
        %(model_plan_kwargs)s
        **kwargs
            Arguments of :meth:`scvi.model.base.UnsupervisedTrainingMixin.train`
            (``train_size`` (default 0.8; ``None`` means the default), ``batch_size``,
            ``early_stopping``, ``early_stopping_patience``, ``accelerator``, ``logger``, ...).
        """
        if not 0 < niche_alpha < 1:
            raise ValueError(f"niche_alpha must lie in (0, 1), got {niche_alpha}.")
        plan_kwargs = {"lr": _LEARNING_RATE, **(plan_kwargs or {})}
        if kwargs.get("train_size") is None:  # scvi-tools' "use the default"
            kwargs["train_size"] = _TRAIN_SIZE
        if not 0 < kwargs["train_size"] <= 1:
            raise ValueError(f"train_size must lie in (0, 1], got {kwargs['train_size']}.")
        if kwargs["train_size"] < 1.0:
            early_stopping = {
                "early_stopping": True,
                "early_stopping_patience": _EARLY_STOPPING_PATIENCE,
            }
            kwargs = {**early_stopping, **kwargs}
        if kwargs.get("early_stopping"):
            kwargs.setdefault("check_val_every_n_epoch", 1)
        if self.module.n_heads:
            self.module.reset_niche_calibration()
        self.niche_calibration_, self.refit_failures_ = None, []
        result = super().train(max_epochs=max_epochs, plan_kwargs=plan_kwargs, **kwargs)
        train = np.asarray(self.train_indices)
        if not self.module.n_heads:
            self.refit_failures_ = refit_intrinsic(self.module, self.adata_manager, train)
        elif calibrate and len(self.validation_indices) == 0:
            logger.warning(
                "No validation cells (train_size=1): the niche is not calibrated. Train with "
                "train_size < 1 to scale each receiver type's niche on held-out cells."
            )
        elif calibrate:
            validation = np.asarray(self.validation_indices)
            self.niche_calibration_ = calibrate_niche(
                self.module, self.adata_manager, train, validation, alpha=niche_alpha
            )
            failed = self.niche_calibration_["status"] == "refit failed"
            self.refit_failures_ = self.niche_calibration_.loc[failed, "cell_type"].tolist()
        return result

    def get_niche_calibration(self) -> pd.DataFrame:
        """Return each receiver type's niche scale and held-out gain, set by :meth:`train`.

        Returns
        -------
        DataFrame with one row per cell type: ``cell_type``, ``n_validation_cells``,
        ``niche_scale`` (in [0, 1]; 0: no niche), ``gain_per_cell`` (mean log-likelihood gain
        of a validation cell from its scaled niche over none, the scale chosen on the other
        half of the type's validation cells; nats), ``p_value`` (one-sided t-test of a
        positive gain; NaN with fewer than 3 cells), ``kept`` and ``status`` (``"ok"``, or
        ``"refit failed"`` when the type's final profile refit failed: its numbers then come
        from the trained values and are not a result; see ``refit_failures_``).
        """
        if self.niche_calibration_ is None:
            raise ValueError("No niche calibration: train with calibrate=True and train_size < 1.")
        return self.niche_calibration_.copy()

    @classmethod
    @setup_anndata_dsp.dedent
    def setup_anndata(
        cls,
        adata: AnnData,
        labels_key: str,
        spatial_key: str = "spatial",
        layer: str | None = None,
        sample_key: str | None = None,
        batch_key: str | None = None,
        n_neighbors: int = 30,
        radius: float | None = None,
        exclude_same_type: bool = False,
        neighbors_key: str | None = None,
        **kwargs,
    ) -> None:
        """Register the data and compute each cell's spatial neighbours.

        Neighbours are the ``n_neighbors`` nearest other cells of the same sample (within
        ``radius`` when given), found with scikit-learn's
        :class:`~sklearn.neighbors.NearestNeighbors`, or, with ``neighbors_key``, the edges of a
        graph already in ``obsp`` (e.g. from :func:`squidpy.gr.spatial_neighbors`: Delaunay,
        radius or grid), at most ``n_neighbors`` per cell, nearest first. Besides scvi-tools'
        registry keys,
        registration adds ``obsm["lucidvi_neighbor_index"]`` (row index of each neighbour,
        nearest first, ``-1`` in empty slots), ``obsm["lucidvi_neighbor_distance"]`` (their
        distances, ``inf`` in empty slots) and ``uns["lucidvi_neighbors"]`` (the settings).

        Parameters
        ----------
        adata
            AnnData with coordinates in ``obsm[spatial_key]`` and cell types in ``obs``.
        labels_key
            ``obs`` column of cell types.
        spatial_key
            ``obsm`` key of the coordinates (cells x 2 or 3).
        layer
            Layer with the expression (``X`` when ``None``): raw counts for ``"nb"``,
            continuous values for ``"gaussian"``.
        sample_key
            ``obs`` column of samples (tissue sections); neighbours never cross samples. When
            ``None``, the batches are the samples.
        %(param_batch_key)s
        n_neighbors
            Neighbour slots per cell.
        radius
            Only cells closer than this are neighbours.
        exclude_same_type
            Only cells of other types are neighbours.
        neighbors_key
            ``uns`` key of a precomputed spatial graph: a dict naming its ``obsp`` matrices in
            ``"connectivities_key"`` and ``"distances_key"``, as squidpy and scanpy write it
            (``"spatial_neighbors"`` after ``squidpy.gr.spatial_neighbors(adata)``). Its edges
            replace the kNN search; ``radius`` and ``exclude_same_type`` still filter them, and
            a cell with more than ``n_neighbors`` edges keeps the nearest (a warning says how
            many). Edges between samples are an error.
        **kwargs
            Passed to :meth:`~scvi.data.AnnDataManager.register_fields`.
        """
        # first, so that only the arguments are recorded (no local computed below)
        setup_method_args = cls._get_setup_method_args(**locals())
        check_obs_keys(adata, labels_key=labels_key, sample_key=sample_key, batch_key=batch_key)
        read_layer(adata, layer)
        group_key = sample_key or batch_key
        groups = (
            np.zeros(adata.n_obs, dtype=np.int64)
            if group_key is None
            else adata.obs[group_key].astype(str).to_numpy()
        )
        coordinates = check_spatial_inputs(
            adata,
            labels_key=labels_key,
            spatial_key=spatial_key,
            groups=groups,
            n_neighbors=n_neighbors,
            radius=radius,
            precomputed_graph=neighbors_key is not None,
        )
        labels = adata.obs[labels_key].astype(str).to_numpy()
        options = {"radius": radius, "exclude_same_type": exclude_same_type}
        if neighbors_key is None:
            indices, distances = spatial_neighbors(
                coordinates, labels, groups, n_neighbors=int(n_neighbors), **options
            )
        else:
            graph = graph_neighbors(
                adata, neighbors_key, labels, groups, n_neighbors=int(n_neighbors), **options
            )
            indices, distances = graph.indices, graph.distances
            if graph.n_truncated:
                warnings.warn(
                    f"{graph.n_truncated} cells have more than n_neighbors={n_neighbors} edges "
                    f"in the graph {neighbors_key!r}; their nearest {n_neighbors} are kept. "
                    f"Raise n_neighbors to keep all.",
                    UserWarning,
                    stacklevel=2,
                )
        adata.obsm[NEIGHBOR_INDEX_OBSM] = indices
        adata.obsm[NEIGHBOR_DISTANCE_OBSM] = distances
        adata.uns[NEIGHBORS_UNS] = {
            "spatial_key": spatial_key,
            "sample_key": group_key,
            "n_neighbors": int(indices.shape[1]),
            "radius": radius,
            "exclude_same_type": bool(exclude_same_type),
            "neighbors_key": neighbors_key,
        }
        fields = [
            LayerField(REGISTRY_KEYS.X_KEY, layer, is_count_data=False),
            CategoricalObsField(REGISTRY_KEYS.LABELS_KEY, labels_key),
            CategoricalObsField(REGISTRY_KEYS.BATCH_KEY, batch_key),
            ObsmField(NEIGHBOR_INDEX_KEY, NEIGHBOR_INDEX_OBSM),
            ObsmField(NEIGHBOR_DISTANCE_KEY, NEIGHBOR_DISTANCE_OBSM),
        ]
        manager = AnnDataManager(fields=fields, setup_method_args=setup_method_args)
        manager.register_fields(adata, **kwargs)
        cls.register_manager(manager)

    @property
    def labels(self) -> list[str]:
        """The cell types, in the order of their codes."""
        mapping = self.adata_manager.get_state_registry(REGISTRY_KEYS.LABELS_KEY)
        return [str(v) for v in mapping.categorical_mapping]

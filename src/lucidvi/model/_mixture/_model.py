"""MixtureVI: model-based clustering of counts with a mixture of negative binomials."""

from __future__ import annotations

import logging
from typing import Literal

import numpy as np
import pandas as pd
import torch
from anndata import AnnData
from scvi import REGISTRY_KEYS, settings
from scvi.data import AnnDataManager
from scvi.data.fields import CategoricalObsField, LayerField, NumericalObsField
from scvi.model.base import BaseModelClass, UnsupervisedTrainingMixin
from scvi.utils import setup_anndata_dsp

from lucidvi._docstrings import lucidvi_dsp
from lucidvi._matrix_rows import is_dask_array, read_rows, row_sums, select_columns
from lucidvi.module import NBMixture
from lucidvi.train import (
    ArrayDataSplitter,
    CountChunks,
    EpochLoggingTrainingPlan,
    RegisteredDataLoader,
    TrainRunner,
    torch_device,
)

from .._validation import check_count_matrix, check_obs_keys
from ._fitting import (
    AMORTIZED_EPOCHS,
    COMPONENTS_PER_CLUSTER,
    DEFAULT_TOP_GENES,
    EM_MAX_ITER,
    MIN_CELLS_PER_COMPONENT,
    FitOptions,
    MixtureFittingMixin,
)
from ._gene_selection import GeneSelectionMixin
from ._initial_memberships import START_METHODS, Init
from ._outputs import ClusterOutputsMixin
from ._parameters import ClusterParametersMixin
from ._selection import ClusterNumberSelectionMixin

logger = logging.getLogger(__name__)


class MixtureVI(
    ClusterOutputsMixin,
    ClusterParametersMixin,
    ClusterNumberSelectionMixin,
    MixtureFittingMixin,
    GeneSelectionMixin,
    UnsupervisedTrainingMixin,
    BaseModelClass,
):
    r"""Model-based clustering of counts with a mixture of negative binomials.

    Each cell's counts follow a mixture of negative binomials, the Poisson-Gamma model
    ``x_ij | s_i, lambda_ij ~ Poisson(s_i lambda_ij)``,
    ``lambda_ij ~ sum_k pi_k Gamma(shape 1/phi_kj, rate 1/(phi_kj mu_kj))``: clusters have
    centroids ``mu_k`` (expression per unit size factor) and dispersions ``phi_k`` per gene, and
    ``s_i`` is the library size or a registered size factor. Measurement noise (Poisson) and
    biological variation within a cluster (Gamma) are modelled apart, which k-nearest-neighbour
    graph clustering of transformed counts does not do. Batches get a per-gene log fold change.

    Two fits: ``train(method="em")`` runs exact batch expectation-maximisation over all cells
    (sparse data densified one chunk at a time); ``train(method="amortized")`` trains an
    encoder of ``q(cluster | x)`` together with the mixture on the evidence lower bound by
    minibatch gradient descent (scvi-tools' training plans), for data too large for batch EM.

    By default the clustering is driven by the 2,000 genes of highest binomial deviance
    (Townes et al. 2019; see :attr:`gene_deviance_`): each of them gets a mean per component,
    while every other gene follows one negative binomial shared by all components (the
    background), which leaves the memberships unchanged. Thousands of uninformative genes then
    no longer drown the few that separate cell types in the log-likelihood, and EM's cost
    falls with the genes it models. The genes are chosen when the model is made
    (:attr:`informative_genes_`).

    With ``n_components > n_clusters`` (by default twice as many), the mixture has
    ``n_components`` negative binomial components and each cluster is a mixture of one or more
    of them: after fitting, the two groups of components with the smallest estimated symmetric
    Kullback-Leibler divergence are merged, again and again, until ``n_clusters`` remain
    (recorded in :attr:`merges_`). A large cell type that the data resolve into
    sub-populations then stays one cluster, and the components it no longer needs go to small
    types; the fitted density is unchanged by merging. On five labelled real sets this default
    beat one component per cluster (``docs/benchmarks.md``).

    Parameters
    ----------
    adata
        AnnData registered with :meth:`setup_anndata`.
    n_clusters
        Number of clusters ``K`` returned (2 to the number of cells).
    dispersion
        ``"gene"``: one dispersion per gene, shared by all components; ``"cluster-gene"``:
        one per component and gene.
    encoder_hidden
        Width of the encoder's hidden layer (amortized inference).
    n_components
        Number of negative binomial components (``n_clusters`` to the number of cells). The
        default ``None`` means ``2 * n_clusters``, lowered to one component per 50 cells on
        small data (never below ``n_clusters``).
    n_top_genes
        Number of genes, of highest binomial deviance, that the components model; the others
        form the shared background. ``None`` (or at least the number of genes): every gene
        is modelled per component. With a registered batch, the deviance is summed over the
        batches.

    Attributes
    ----------
    informative_genes_
        The genes modelled per component (an :class:`~pandas.Index` of ``var_names``).
    gene_deviance_
        Binomial deviance of every gene (a :class:`~pandas.Series`; ``None`` when every gene
        is modelled).
    background_
        The background genes' shared ``mean`` and ``dispersion`` (a DataFrame indexed by
        gene, set by :meth:`train`; empty when every gene is modelled), by the method of
        moments over all cells.
    cluster_of_component_
        Cluster of each component, an integer array of length ``n_components`` (set by
        :meth:`train`).
    merges_
        One row per merge of two groups of components (``step``, ``components_a``,
        ``components_b``, ``divergence`` in nats per cell); empty without merging.

    Examples
    --------
    >>> adata = lucidvi.data.cbmc()
    >>> lucidvi.model.MixtureVI.setup_anndata(adata, layer="counts")
    >>> model = lucidvi.model.MixtureVI(adata, n_clusters=11)
    >>> model.train(seed=0)
    >>> adata.obs["mixture"] = model.get_cluster_assignments().astype("category")
    >>> model.get_marker_genes(n_top=5)
    >>> model.merges_.tail()

    One component per cluster, every gene modelled (the mixture without its defaults):

    >>> model = lucidvi.model.MixtureVI(adata, n_clusters=11, n_components=11, n_top_genes=None)
    """

    _module_cls = NBMixture
    _data_splitter_cls = ArrayDataSplitter
    _training_plan_cls = EpochLoggingTrainingPlan
    _train_runner_cls = TrainRunner
    _data_loader_cls = RegisteredDataLoader

    def __init__(
        self,
        adata: AnnData,
        n_clusters: int,
        dispersion: Literal["cluster-gene", "gene"] = "gene",
        encoder_hidden: int = 128,
        n_components: int | None = None,
        n_top_genes: int | None = DEFAULT_TOP_GENES,
    ):
        super().__init__(adata)
        n_clusters = int(n_clusters)
        if not 2 <= n_clusters <= adata.n_obs:
            raise ValueError(
                f"n_clusters must be between 2 and the number of cells ({adata.n_obs}), got "
                f"{n_clusters}. For one cluster there is nothing to cluster; choose K with "
                f"select_n_clusters()."
            )
        if n_components is None:
            n_components = min(
                COMPONENTS_PER_CLUSTER * n_clusters,
                max(n_clusters, adata.n_obs // MIN_CELLS_PER_COMPONENT),
            )
        n_components = int(n_components)
        if not n_clusters <= n_components <= adata.n_obs:
            raise ValueError(
                f"n_components must be between n_clusters ({n_clusters}) and the number of "
                f"cells ({adata.n_obs}), got {n_components}."
            )
        self.n_clusters = n_clusters
        self.n_components = n_components
        self.cluster_of_component_ = np.arange(n_components) if n_components == n_clusters else None
        self.merges_ = pd.DataFrame(columns=["step", "components_a", "components_b", "divergence"])
        self.background_ = pd.DataFrame(columns=["mean", "dispersion"], dtype=float)
        columns = self._choose_genes(n_top_genes)
        self.module = self._module_cls(
            n_input=self.summary_stats.n_vars if columns is None else len(columns),
            n_clusters=n_components,
            n_batch=self.summary_stats.n_batch,
            dispersion=dispersion,
            encoder_hidden=encoder_hidden,
            genes=None if columns is None else torch.as_tensor(columns),
        )
        self._model_summary_string = (
            f"MixtureVI model: n_clusters={n_clusters}, n_components={n_components}, "
            f"genes modelled per component={len(self.informative_genes_)} of "
            f"{self.summary_stats.n_vars}, dispersion={dispersion!r}, "
            f"encoder_hidden={encoder_hidden}"
        )
        self.init_params_ = self._get_init_params(locals())

    @classmethod
    @setup_anndata_dsp.dedent
    def setup_anndata(
        cls,
        adata: AnnData,
        layer: str | None = None,
        size_factor_key: str | None = None,
        batch_key: str | None = None,
        **kwargs,
    ) -> None:
        """%(summary)s.

        Checks the input first and raises a :class:`ValueError` that says what to fix when the
        counts are not finite non-negative integers, a cell has no counts, an ``obs`` column is
        missing, or size factors are not positive. Registration adds scvi-tools' registry keys
        to ``adata`` and nothing else (``uns["_scvi_uuid"]``, ``uns["_scvi_manager_uuid"]``,
        ``obs["_scvi_batch"]``).

        Parameters
        ----------
        %(param_adata)s
        %(param_layer)s
        size_factor_key
            ``obs`` column with each cell's size factor ``s_i``; the library size (total
            counts) when ``None``.
        %(param_batch_key)s
        **kwargs
            Passed to :meth:`~scvi.data.AnnDataManager.register_fields`.
        """
        # first, so that only the arguments are recorded (no local computed below)
        setup_method_args = cls._get_setup_method_args(**locals())
        check_obs_keys(adata, size_factor_key=size_factor_key, batch_key=batch_key)
        check_count_matrix(adata, layer)
        if size_factor_key is not None:
            factors = pd.to_numeric(adata.obs[size_factor_key], errors="coerce").to_numpy()
            if not np.all(np.isfinite(factors) & (factors > 0)):
                raise ValueError(
                    f"adata.obs[{size_factor_key!r}] must hold finite positive size factors."
                )
        anndata_fields = [
            LayerField(REGISTRY_KEYS.X_KEY, layer, is_count_data=True),
            CategoricalObsField(REGISTRY_KEYS.BATCH_KEY, batch_key),
            NumericalObsField(REGISTRY_KEYS.SIZE_FACTOR_KEY, size_factor_key, required=False),
        ]
        adata_manager = AnnDataManager(fields=anndata_fields, setup_method_args=setup_method_args)
        adata_manager.register_fields(adata, **kwargs)
        cls.register_manager(adata_manager)

    # ----------------------------------------------------------------------------- data access
    def _chunks(
        self, adata: AnnData | None = None, indices=None, background: bool = False
    ) -> CountChunks:
        """Return the cells' counts, log size factors and batches, in row chunks.

        The counts stay where they are (in memory, backed or a dask array) and are read chunk
        by chunk; the rows ``indices`` of a backed matrix are read into memory, those of a dask
        array stay lazy. Only the genes modelled per component are in the chunks (the
        background genes instead with ``background=True``); size factors count every gene.
        """
        adata = self._validate_anndata(adata)
        manager = self.get_anndata_manager(adata, required=True)
        counts = manager.get_from_registry(REGISTRY_KEYS.X_KEY)
        batch = np.asarray(manager.get_from_registry(REGISTRY_KEYS.BATCH_KEY)).reshape(-1)
        cells = slice(None) if indices is None else np.asarray(indices)
        if indices is not None:
            counts = counts[cells] if is_dask_array(counts) else read_rows(counts, cells)
        if REGISTRY_KEYS.SIZE_FACTOR_KEY in manager.data_registry:
            size = np.asarray(manager.get_from_registry(REGISTRY_KEYS.SIZE_FACTOR_KEY))
            size = size.reshape(-1)[cells]
        else:
            size = row_sums(counts)
        log_size = np.log(size.astype(np.float64))
        columns = self._background_columns() if background else self._modelled_columns()
        if columns is not None:
            counts = select_columns(counts, columns)
        dtype = self.module.log_mu.dtype
        return CountChunks(counts, log_size, batch[cells], device=self.device, dtype=dtype)

    def _obs_names(self, adata: AnnData | None, indices) -> pd.Index:
        """Names of the cells ``indices`` of ``adata`` (all when ``None``)."""
        names = (self.adata if adata is None else adata).obs_names
        return names if indices is None else names[np.asarray(indices)]

    def _component_shares(self) -> np.ndarray:
        """Return the indicator of each component's cluster, ``(n_components, n_clusters)``."""
        return np.eye(self.n_clusters)[self.cluster_of_component_]

    # ------------------------------------------------------------------------------- training
    @lucidvi_dsp.dedent
    def train(
        self,
        method: Literal["em", "amortized"] = "em",
        init: Init = "kmeans",
        n_init: int = 1,
        max_epochs: int | None = None,
        tol: float = 1e-5,
        seed: int | None = None,
        em_subsample: int = 5000,
        batch_size: int = 256,
        accelerator: str = "auto",
        devices: int | list[int] | str = "auto",
        progress_bar: bool = True,
        plan_kwargs: dict | None = None,
        **trainer_kwargs,
    ) -> None:
        """Fit the mixture by batch EM or amortized minibatch inference.

        Parameters
        ----------
        method
            ``"em"``: exact batch EM over all cells, stopping when the relative change of the
            log-likelihood is below ``tol``. ``"amortized"``: batch EM on a random subsample of
            ``em_subsample`` cells starts the mixture, then an encoder ``q(cluster | x)`` and
            the mixture are trained on the ELBO by minibatch SGD (Adam) through scvi-tools'
            training plan and Lightning; ``plan_kwargs`` and the trainer's arguments apply to
            it only. Either way, when ``n_components > n_clusters`` the fitted components are
            then merged into ``n_clusters`` clusters (see the class).
        init
            Starting memberships of the ``n_components`` components: ``"kmeans"`` (k-means
            on 30 principal components of log counts per 10,000), ``"leiden"`` (Leiden with
            the resolution searched to give ``n_components`` clusters), ``"random"`` (every
            cell joins the most similar of ``n_components`` random cells), an ``obs`` column
            of labels, or an array of labels (one per cell) or memberships (cells x
            components).
        n_init
            Number of restarts (with seeds ``seed, seed + 1, ...``); the fit with the highest
            log-likelihood is kept. Restarts from given labels are identical, so ``n_init``
            must be 1 then.
        max_epochs
            EM: maximum iterations (default 500). Amortized: training epochs (default 50).
        %(model_em_tol)s
        seed
            Seed of the starts and of amortized training (``scvi.settings.seed``, or 0 when it
            is unset, when ``None``). Amortized training runs with ``scvi.settings.seed`` set
            to it and restores the seed and the global generators' states afterwards.
        em_subsample
            Amortized only: number of cells in the starting EM fit (``0``: start the mixture
            from ``init`` directly).
        batch_size
            Amortized only: minibatch size.
        accelerator, devices
            Where to compute (``"auto"``: a CUDA GPU when one is available). Batch EM sums in
            float64, so it runs on the CPU or CUDA; ``"mps"`` serves amortized training only.
        %(model_progress_bar)s
        %(model_plan_kwargs)s
        **trainer_kwargs
            Amortized: passed to :class:`~scvi.train.Trainer` (``logger``, ``callbacks``, ...).
            EM takes only ``logger``: a Lightning logger (e.g.
            :func:`lucidvi.logging.wandb_logger`) that receives the kept start's
            log-likelihood per iteration as ``em_log_likelihood``.
        """
        if method not in ("em", "amortized"):
            raise ValueError(f"method must be 'em' or 'amortized', got {method!r}.")
        if n_init < 1:
            raise ValueError(f"n_init must be at least 1, got {n_init}.")
        given = not (isinstance(init, str) and init in START_METHODS)
        if given and n_init > 1:
            raise ValueError("Restarts from given labels are identical: use n_init=1.")
        options = FitOptions(
            init=init,
            n_init=n_init,
            max_iter=(max_epochs or EM_MAX_ITER) if method == "em" else EM_MAX_ITER,
            tol=tol,
            seed=(settings.seed or 0) if seed is None else int(seed),
            progress_bar=progress_bar,
        )
        # amortized training may run on several devices (DDP); its EM start runs on the first
        start_devices = devices
        if method == "amortized" and devices not in ("auto", -1):
            start_devices = list(devices[:1]) if isinstance(devices, list | tuple) else 1
        self.module.to(torch_device(accelerator, start_devices, needs_float64=method == "em"))
        if method == "amortized":
            self._train_amortized(
                options,
                max_epochs=max_epochs or AMORTIZED_EPOCHS,
                em_subsample=em_subsample,
                batch_size=batch_size,
                accelerator=accelerator,
                devices=devices,
                plan_kwargs=plan_kwargs,
                trainer_kwargs=trainer_kwargs,
            )
            return
        em_logger = trainer_kwargs.pop("logger", None)
        if trainer_kwargs or plan_kwargs:
            unused = list(trainer_kwargs) + (["plan_kwargs"] if plan_kwargs else [])
            raise ValueError(
                f"{unused} apply to method='amortized' only; batch EM takes logger= alone."
            )
        self._train_em(options)
        if em_logger:
            for step, value in enumerate(self.history_["log_likelihood"]["log_likelihood"]):
                em_logger.log_metrics({"em_log_likelihood": value}, step=step)
            em_logger.save()

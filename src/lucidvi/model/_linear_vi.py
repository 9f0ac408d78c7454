"""LinearVI: the linearly decoded VAE, with covariates and a faster training path."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd
import torch
from anndata import AnnData
from scvi import REGISTRY_KEYS
from scvi.data import AnnDataManager
from scvi.data.fields import (
    CategoricalJointObsField,
    CategoricalObsField,
    LayerField,
    NumericalJointObsField,
)
from scvi.model.base import BaseModelClass, RNASeqMixin, UnsupervisedTrainingMixin, VAEMixin
from scvi.utils import setup_anndata_dsp

from lucidvi._compat import saved_var_names
from lucidvi._docstrings import lucidvi_dsp
from lucidvi.module import LinearVAE
from lucidvi.train import (
    ArrayDataSplitter,
    EpochLoggingTrainingPlan,
    RegisteredDataLoader,
    TrainRunner,
)

from ._validation import check_count_matrix, check_obs_keys, panel_mask

logger = logging.getLogger(__name__)


class LinearVI(RNASeqMixin, VAEMixin, UnsupervisedTrainingMixin, BaseModelClass):
    """Linearly decoded variational auto-encoder (LDVAE) :cite:p:`Svensson20`.

    A non-linear encoder maps each cell's counts to latent factors ``z``; a linear decoder maps
    them back, so every factor is tied to genes by one loading per gene
    (:meth:`get_loadings`). Compared with scvi-tools' :class:`~scvi.model.LinearSCVI`, it also
    takes categorical and continuous covariates, uses the observed library size, and trains
    several times faster (in-memory minibatches, a likelihood that skips the zero counts'
    constant terms, and per-epoch rather than per-step metric logging).

    Parameters
    ----------
    adata
        AnnData registered with :meth:`setup_anndata`; ``None`` with ``registry``.
    n_latent
        Number of latent factors.
    n_hidden
        Width of the encoder's hidden layers.
    n_layers
        Number of hidden layers of the encoder.
    dropout_rate
        Dropout rate of the encoder.
    gene_likelihood
        ``"nb"`` (negative binomial), ``"zinb"`` (zero-inflated NB) or ``"poisson"``.
    dispersion
        ``"gene"``: one inverse dispersion per gene; ``"gene-batch"``: one per gene and batch.
    latent_distribution
        ``"normal"``, or ``"ln"`` (logistic normal, factors on the simplex).
    use_batch_norm
        Batch-normalise the decoder's logits (as LDVAE does); folded into the loadings exactly.
    bias
        Give the decoder a per-gene bias.
    gene_masking
        Train the encoder to embed cells from any gene panel (:meth:`get_panel_representation`):
        ``None`` (off), the fraction of genes hidden from the encoder at random in each cell, or
        a range ``(low, high)`` from which each cell draws its fraction uniformly. Hidden genes
        are still reconstructed, so a panel's embedding estimates the full transcriptome's.
        ``(0.0, 0.95)`` suits panels of 5 to 100 percent of the genes.
    registry
        Instead of ``adata``: the registry of a scvi-tools data module (``datamodule.registry``,
        e.g. :class:`~scvi.dataloaders.AnnbatchDataModule` on sharded zarr), trained with
        ``train(datamodule=datamodule)`` from data that never sit in one AnnData.

    Examples
    --------
    >>> import lucidvi
    >>> adata = lucidvi.data.pbmc68k()
    >>> lucidvi.model.LinearVI.setup_anndata(adata, layer="counts")
    >>> model = lucidvi.model.LinearVI(adata, n_latent=10)
    >>> model.train(max_epochs=200)
    >>> adata.obsm["X_linearvi"] = model.get_latent_representation()
    >>> loadings = model.get_loadings()  # genes x Z_0..Z_9

    From a scvi-tools data module (scvi-tools 1.5, ``annbatch`` installed)::

        datamodule = scvi.dataloaders.AnnbatchDataModule(loader, batch_key="sample")
        model = lucidvi.model.LinearVI(registry=datamodule.registry, n_latent=10)
        model.train(max_epochs=20, datamodule=datamodule)
    """

    _module_cls = LinearVAE
    _data_splitter_cls = ArrayDataSplitter
    _training_plan_cls = EpochLoggingTrainingPlan
    _train_runner_cls = TrainRunner
    _data_loader_cls = RegisteredDataLoader

    def __init__(
        self,
        adata: AnnData | None = None,
        n_latent: int = 10,
        n_hidden: int = 128,
        n_layers: int = 1,
        dropout_rate: float = 0.1,
        gene_likelihood: Literal["nb", "zinb", "poisson"] = "nb",
        dispersion: Literal["gene", "gene-batch"] = "gene",
        latent_distribution: Literal["normal", "ln"] = "normal",
        use_batch_norm: bool = True,
        bias: bool = False,
        gene_masking: float | tuple[float, float] | None = None,
        *,
        registry: dict | None = None,
    ):
        if adata is None and registry is None:
            raise ValueError(
                "Pass an AnnData registered with LinearVI.setup_anndata, or registry= of a "
                "scvi-tools data module (datamodule.registry)."
            )
        super().__init__(adata, registry)
        fields = self.registry_["field_registries"]
        cat_state = fields.get(REGISTRY_KEYS.CAT_COVS_KEY, {}).get("state_registry", {})
        n_cats_per_cov = list(cat_state.get("n_cats_per_key") or [])
        self.module = self._module_cls(
            n_input=self.summary_stats.n_vars,
            n_batch=self.summary_stats.n_batch,
            n_latent=n_latent,
            n_hidden=n_hidden,
            n_layers=n_layers,
            dropout_rate=dropout_rate,
            gene_likelihood=gene_likelihood,
            dispersion=dispersion,
            latent_distribution=latent_distribution,
            use_batch_norm=use_batch_norm,
            bias=bias,
            n_cats_per_cov=n_cats_per_cov,
            n_continuous_cov=self.summary_stats.get("n_extra_continuous_covs", 0),
            gene_masking=gene_masking,
        )
        self.n_latent = n_latent
        self._model_summary_string = (
            f"LinearVI model: n_latent={n_latent}, n_hidden={n_hidden}, n_layers={n_layers}, "
            f"dropout_rate={dropout_rate}, gene_likelihood={gene_likelihood!r}, "
            f"dispersion={dispersion!r}, latent_distribution={latent_distribution!r}, "
            f"use_batch_norm={use_batch_norm}, bias={bias}, gene_masking={gene_masking}"
        )
        self.init_params_ = self._get_init_params(locals())

    @classmethod
    @setup_anndata_dsp.dedent
    def setup_anndata(
        cls,
        adata: AnnData,
        layer: str | None = None,
        batch_key: str | None = None,
        labels_key: str | None = None,
        categorical_covariate_keys: list[str] | None = None,
        continuous_covariate_keys: list[str] | None = None,
        **kwargs,
    ) -> None:
        """%(summary)s.

        Checks the input first and raises a :class:`ValueError` that says what to fix when the
        counts are not finite non-negative integers, a cell has no counts, or an ``obs`` column
        is missing. Registration adds scvi-tools' registry keys to ``adata`` and nothing else:
        ``uns["_scvi_uuid"]``, ``uns["_scvi_manager_uuid"]``, ``obs["_scvi_batch"]``,
        ``obs["_scvi_labels"]`` and, with covariates, ``obsm["_scvi_extra_categorical_covs"]``
        and ``obsm["_scvi_extra_continuous_covs"]``.

        Parameters
        ----------
        %(param_adata)s
        %(param_layer)s
        %(param_batch_key)s
        %(param_labels_key)s
        %(param_cat_cov_keys)s
        %(param_cont_cov_keys)s
        **kwargs
            Passed to :meth:`~scvi.data.AnnDataManager.register_fields`.
        """
        setup_method_args = cls._get_setup_method_args(**locals())
        check_obs_keys(
            adata,
            batch_key=batch_key,
            labels_key=labels_key,
            categorical_covariate_keys=categorical_covariate_keys,
            continuous_covariate_keys=continuous_covariate_keys,
        )
        check_count_matrix(adata, layer)
        anndata_fields = [
            LayerField(REGISTRY_KEYS.X_KEY, layer, is_count_data=True),
            CategoricalObsField(REGISTRY_KEYS.BATCH_KEY, batch_key),
            CategoricalObsField(REGISTRY_KEYS.LABELS_KEY, labels_key),
            CategoricalJointObsField(REGISTRY_KEYS.CAT_COVS_KEY, categorical_covariate_keys),
            NumericalJointObsField(REGISTRY_KEYS.CONT_COVS_KEY, continuous_covariate_keys),
        ]
        adata_manager = AnnDataManager(fields=anndata_fields, setup_method_args=setup_method_args)
        adata_manager.register_fields(adata, **kwargs)
        cls.register_manager(adata_manager)

    def get_loadings(self) -> pd.DataFrame:
        """Per-gene loadings of the linear decoder, batch normalisation folded in exactly.

        In evaluation mode the decoder's logits are ``z @ loadings.T + offset``, where the
        offset depends only on the batch and covariates; covariate effects are not loadings
        and are left out.

        Returns
        -------
        DataFrame of shape ``(n_genes, n_latent)`` indexed by gene, columns ``Z_0 ... Z_{k-1}``.
        """
        loadings, _, _ = self.module.decoder.affine()
        columns = [f"Z_{i}" for i in range(self.n_latent)]
        if self.adata is not None:
            genes = self.adata.var_names.copy()
        else:  # trained from a data module: the genes it registered
            registered = self.registry_["field_registries"][REGISTRY_KEYS.X_KEY]["state_registry"]
            genes = pd.Index(registered["column_names"])
        return pd.DataFrame(loadings.detach().cpu().numpy(), index=genes, columns=columns)

    @torch.inference_mode()
    @lucidvi_dsp.dedent
    def get_panel_representation(
        self,
        panel: Sequence[str],
        adata: AnnData | None = None,
        indices: Sequence[int] | None = None,
        batch_size: int | None = None,
        mc_samples: int = 5000,
    ) -> np.ndarray:
        """Latent representation from a gene panel, the other genes unobserved.

        The encoder reads only the panel's counts (and which genes those are); it was trained
        to reconstruct all genes from random subsets, so the result estimates where the full
        transcriptome would place each cell. Needs a model built with ``gene_masking``.

        Parameters
        ----------
        panel
            Gene names, a subset of the model's genes.
        %(model_adata)s
        %(model_indices)s
        batch_size
            Minibatch size; scvi-tools' default when ``None``.
        mc_samples
            For ``latent_distribution="ln"``: samples averaged for the posterior mean on the
            simplex.

        Returns
        -------
        Array of shape ``(n_cells, n_latent)``: the posterior means given the panel.
        """
        self._check_if_trained(warn=False)
        observed = panel_mask(self.adata.var_names, panel)
        adata = self._validate_anndata(adata)
        loader = self._make_data_loader(adata=adata, indices=indices, batch_size=batch_size)
        mask = torch.as_tensor(observed, device=self.device)
        latents = []
        for tensors in loader:
            qz = self.module.inference(tensors[REGISTRY_KEYS.X_KEY], observed_genes=mask)["qz"]
            z = qz.loc
            if self.module.latent_distribution == "ln":
                z = torch.softmax(qz.sample((mc_samples,)), dim=-1).mean(0)
            latents.append(z.cpu())
        return torch.cat(latents).numpy()

    @classmethod
    def load(cls, dir_path: str, adata: AnnData | None = None, **kwargs) -> LinearVI:
        """Load a model saved with :meth:`save`.

        Parameters
        ----------
        dir_path
            Folder the model was saved to.
        adata
            Data to attach, with the genes the model was trained on, in the same order; the
            saved AnnData when ``None`` (if it was saved).
        **kwargs
            Passed to :meth:`scvi.model.base.BaseModelClass.load` (``accelerator``,
            ``device``, ``prefix``, ...).

        Returns
        -------
        The loaded model.
        """
        if adata is not None:
            expected = saved_var_names(dir_path, kwargs.get("prefix"))
            if not np.array_equal(expected, np.asarray(adata.var_names)):
                missing = np.setdiff1d(expected, adata.var_names)
                raise ValueError(
                    f"The model was trained on {len(expected)} genes, but adata has "
                    f"{adata.n_vars} genes that differ ({len(missing)} of the model's genes are "
                    f"missing, e.g. {list(missing[:5])}) or are in another order. Subset and "
                    f"order adata's genes as the model's: `adata[:, model_genes]`."
                )
        return super().load(dir_path, adata=adata, **kwargs)

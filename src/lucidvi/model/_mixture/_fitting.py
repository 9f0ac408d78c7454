"""The steps of :meth:`MixtureVI.train <lucidvi.model.MixtureVI.train>`: EM, amortized, merging."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch
from scvi.model.base import UnsupervisedTrainingMixin

from lucidvi.module import NBMixture
from lucidvi.train import (
    component_log_likelihood_in_chunks,
    fit_em_restarts,
    initialize_parameters,
    isolated_seed,
)

from ._initial_memberships import Init, InitialMemberships
from ._merging import merge_components

if TYPE_CHECKING:
    from anndata import AnnData

    from lucidvi.train import CountChunks

logger = logging.getLogger(__name__)

# Maximum EM iterations of a fit (``train(max_epochs=None)``, and the amortized mode's start):
# a bound, not a target; at tol=1e-5 EM took 9 to 17 iterations on CBMC (docs/benchmarks.md).
EM_MAX_ITER = 500
# Training epochs of the amortized mode by default.
AMORTIZED_EPOCHS = 50
# Genes modelled per component by default (``MixtureVI(n_top_genes=)``), scanpy's usual number
# of highly variable genes. On the mouse pancreas (14,877 genes) the 2,000 of highest deviance
# clustered better than all of them and than 1,000 (ARI 0.41 against 0.37 with one component
# per cluster, 0.62 against 0.60 with 2K from Leiden starts); on the 6,397-gene immune set 1,000
# did a little better (0.38 against 0.36) and 500 worse (0.34) (docs/benchmarks.md).
DEFAULT_TOP_GENES = 2000
# Components per cluster by default (``MixtureVI(n_components=None)``), merged into clusters.
COMPONENTS_PER_CLUSTER = 2
# ...unless the data have fewer than this many cells per component: a component of few cells
# fits its cells' noise, and merging needs components estimated from enough cells. On the
# 1,000-cell spectra_immune set (K = 14), 20 components merged scored ARI 0.45 against 0.36 for
# 28 (median of seeds 0-2); on the 700-cell PBMC set (K = 10), 14 against 20 components
# changed little (0.48 against 0.47).
MIN_CELLS_PER_COMPONENT = 50
# The amortized mode's training plan by default: Adam at 1e-2, and the KL term of the cluster
# posterior at full weight from the first epoch (no warm-up).
_AMORTIZED_PLAN = {"n_epochs_kl_warmup": None, "lr": 1e-2}


@dataclass(frozen=True)
class FitOptions:
    """How to fit the mixture by EM: the arguments of :meth:`MixtureVI.train` that EM takes.

    Attributes
    ----------
    init
        Starting memberships (see :class:`InitialMemberships`).
    n_init
        Number of starts.
    max_iter
        Maximum EM iterations per start.
    tol
        Relative change of the log-likelihood at which EM stops.
    seed
        Seed of the first start (and of the amortized mode's subsample and training).
    progress_bar
        Show progress bars.
    """

    init: Init
    n_init: int
    max_iter: int
    tol: float
    seed: int
    progress_bar: bool


class MixtureFittingMixin:
    """Training steps of :class:`~lucidvi.model.MixtureVI` (its ``train`` calls them)."""

    def _fit_best_start(self, chunks: CountChunks, adata: AnnData, options: FitOptions) -> None:
        """Fit the module by EM from ``options.n_init`` starts, keep the best; record history."""
        starts = InitialMemberships(options.init, adata, chunks.counts, seed=options.seed)
        best = fit_em_restarts(
            self.module,
            chunks,
            partial(starts, self.n_components),
            n_init=options.n_init,
            seed=options.seed,
            max_iter=options.max_iter,
            tol=options.tol,
            progress_bar=options.progress_bar,
        )
        self.history_ = {
            "log_likelihood": pd.DataFrame({"log_likelihood": best.history}).rename_axis("epoch")
        }
        if not best.converged:
            logger.warning(
                "EM stopped after %d iterations before the relative change reached tol=%g; "
                "raise max_epochs.",
                best.n_iterations,
                options.tol,
            )

    def _train_em(self, options: FitOptions) -> None:
        """Batch EM over all cells, then merging."""
        self._fit_best_start(self._chunks(), self.adata, options)
        self._merge_components()
        self._fit_background()
        self.train_method_ = "em"
        self.is_trained_ = True

    def _train_amortized(
        self,
        options: FitOptions,
        *,
        max_epochs: int,
        em_subsample: int,
        batch_size: int,
        accelerator: str,
        devices: int | list[int] | str,
        plan_kwargs: dict | None,
        trainer_kwargs: dict,
    ) -> None:
        """EM on a subsample (or the start alone), then minibatch training, then merging."""
        if em_subsample > 0:
            rng = np.random.default_rng(options.seed)
            n_sub = min(em_subsample, self.adata.n_obs)
            subset = np.sort(rng.choice(self.adata.n_obs, size=n_sub, replace=False))
            if isinstance(options.init, np.ndarray):
                options = dataclasses.replace(options, init=options.init[subset])
            self._fit_best_start(self._chunks(indices=subset), self.adata[subset], options)
        else:
            chunks = self._chunks()
            starts = InitialMemberships(options.init, self.adata, chunks.counts, seed=options.seed)
            initialize_parameters(self.module, chunks, starts(self.n_components, seed=options.seed))
        self.module.train()
        with isolated_seed(options.seed):
            UnsupervisedTrainingMixin.train(
                self,
                max_epochs=max_epochs,
                accelerator=accelerator,
                devices=devices,
                batch_size=batch_size,
                plan_kwargs={**_AMORTIZED_PLAN, **(plan_kwargs or {})},
                enable_progress_bar=options.progress_bar,
                **trainer_kwargs,
            )
        self._merge_components()
        self._fit_background()
        self.train_method_ = "amortized"

    def _fit_background(self) -> None:
        """Fit the background genes' shared negative binomial by moments over all cells."""
        if self._modelled_columns() is None:
            return
        chunks = self._chunks(background=True)
        background = NBMixture(n_input=chunks.n_genes, n_clusters=1, dispersion="gene")
        background = background.to(dtype=self.module.log_mu.dtype)
        initialize_parameters(background, chunks, np.ones((chunks.n_cells, 1)))
        genes = self.adata.var_names[self._background_columns()]
        self.background_ = pd.DataFrame(
            {
                "mean": torch.exp(background.log_mu[0]).detach().double().cpu().numpy(),
                "dispersion": torch.exp(-background.log_theta[0]).detach().double().cpu().numpy(),
            },
            index=genes,
        )

    def _merge_components(self) -> None:
        """Merge the fitted components into ``n_clusters`` clusters (none to merge: identity)."""
        if self.n_components == self.n_clusters:
            self.cluster_of_component_ = np.arange(self.n_components)
            return
        log_likelihood = component_log_likelihood_in_chunks(self.module, self._chunks())
        log_weights = self.module.log_weights().detach().double().cpu().numpy()
        self.cluster_of_component_, self.merges_ = merge_components(
            log_likelihood, log_weights, self.n_clusters
        )
        logger.info("Merged %d components into %d clusters.", self.n_components, self.n_clusters)

import numpy as np
import pandas as pd
import pytest
import scvi

import lucidvi

if int(pd.__version__.split(".")[0]) < 3:
    # pandas 3 always copies on write (read-only views from .to_numpy() and .values); turn it on
    # under pandas 2 too, so that code writing into such a view fails on both stacks.
    pd.options.mode.copy_on_write = True


@pytest.fixture(scope="session")
def small_adata():
    """A small simulated data set with two batches and covariates (never modified by tests)."""
    adata = lucidvi.data.simulate_linear(
        n_cells=400, n_genes=60, n_factors=3, n_batches=2, library_size=800, seed=3
    )
    rng = np.random.default_rng(0)
    adata.obs["donor"] = rng.choice(["d1", "d2", "d3"], adata.n_obs)
    adata.obs["percent_mito"] = rng.uniform(0, 0.1, adata.n_obs)
    adata.obs["cell_type"] = np.where(adata.obsm["true_factors"][:, 0] > 0, "A", "B")
    adata.obs["cell_type"] = adata.obs["cell_type"].astype("category")
    return adata


@pytest.fixture(scope="session")
def trained_model(small_adata):
    """LinearVI with batch, covariates and labels, trained for a few epochs once per session."""
    scvi.settings.seed = 0
    adata = small_adata.copy()
    lucidvi.model.LinearVI.setup_anndata(
        adata,
        layer="counts",
        batch_key="batch",
        labels_key="cell_type",
        categorical_covariate_keys=["donor"],
        continuous_covariate_keys=["percent_mito"],
    )
    model = lucidvi.model.LinearVI(adata, n_latent=3, dispersion="gene-batch")
    model.train(max_epochs=5, batch_size=64, enable_progress_bar=False)
    return model


@pytest.fixture(scope="session")
def masked_model():
    """LinearVI trained with random gene masking on 3 planted factors (labels: top factor)."""
    scvi.settings.seed = 0
    adata = lucidvi.data.simulate_linear(n_cells=800, n_genes=80, n_factors=3, seed=5)
    adata.obs["cell_type"] = np.argmax(adata.obsm["true_factors"], axis=1).astype(str)
    lucidvi.model.LinearVI.setup_anndata(adata, layer="counts")
    model = lucidvi.model.LinearVI(adata, n_latent=3, gene_masking=(0.0, 0.9))
    model.train(max_epochs=100, plan_kwargs={"lr": 1e-2}, enable_progress_bar=False)
    return model

import pytest
import scvi

import lucidvi


@pytest.fixture(scope="session")
def planted():
    """Counts from 4 planted factors of decreasing scale, each with its own gene block."""
    return lucidvi.data.simulate_linear(n_cells=1500, n_genes=200, n_factors=4, seed=2)


@pytest.fixture(scope="session")
def planted_model(planted):
    """LinearVI with 4 factors trained once to convergence (latent in obsm, key X_lv)."""
    scvi.settings.seed = 0
    adata = planted.copy()
    lucidvi.model.LinearVI.setup_anndata(adata, layer="counts")
    model = lucidvi.model.LinearVI(adata, n_latent=4)
    model.train(max_epochs=120, plan_kwargs={"lr": 1e-2}, enable_progress_bar=False)
    adata.obsm["X_lv"] = model.get_latent_representation()
    return model

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


@pytest.fixture(scope="session")
def spatial_model():
    """InteractionVI on planted spatial data (B -> CD14+ Mono), every type keeping its niche."""
    adata = lucidvi.data.simulate_spatial_niches(
        lucidvi.data.cbmc(), "cell_type", [("B", "CD14+ Mono", 15.0)], n_cells=1500, seed=2
    )
    scvi.settings.seed = 0
    lucidvi.model.InteractionVI.setup_anndata(
        adata, labels_key="cell_type", layer="counts", n_neighbors=10
    )
    model = lucidvi.model.InteractionVI(adata, n_heads=4, n_latent=16)
    model.train(max_epochs=5, batch_size=128, enable_progress_bar=False, calibrate=False)
    return model

from contextlib import contextmanager

import numpy as np
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


def _planted_b_to_mono(n_cells: int, n_neighbors: int, **train) -> lucidvi.model.InteractionVI:
    """InteractionVI (4 heads) on real cells with a planted B -> CD14+ Mono niche."""
    adata = lucidvi.data.simulate_spatial_niches(
        lucidvi.data.cbmc(), "cell_type", [("B", "CD14+ Mono", 15.0)], n_cells=n_cells, seed=2
    )
    scvi.settings.seed = 0
    lucidvi.model.InteractionVI.setup_anndata(
        adata, labels_key="cell_type", layer="counts", n_neighbors=n_neighbors
    )
    model = lucidvi.model.InteractionVI(adata, n_heads=4, n_latent=16)
    model.train(batch_size=128, enable_progress_bar=False, **train)
    return model


@pytest.fixture(scope="session")
def spatial_model():
    """InteractionVI on planted spatial data (B -> CD14+ Mono), every type keeping its niche."""
    return _planted_b_to_mono(1500, 10, max_epochs=5, calibrate=False)


@pytest.fixture(scope="session")
def planted_niche():
    """A model trained to convergence on the planted B -> CD14+ Mono niche (calibrated)."""
    return _planted_b_to_mono(6000, 30, max_epochs=80)


class PredictionRounding:
    """How far float32 rounding may move predictions, and checks that allow for it.

    A result's ``compute()`` and a test's own call predict the same cells in batches of other
    shapes. On a CPU they round alike; a GPU chooses its matrix kernels by shape, so the two may
    differ in the last places. Each prediction ends in a softmax over the genes, whose sum
    rounds by about ``sqrt(n_genes)`` float32 units at random: four times that, relative to the
    prediction, bounds the difference.
    """

    @staticmethod
    def bound(*predictions: np.ndarray) -> np.ndarray:
        """Per cell and gene, how far a prediction may move (the largest of those given)."""
        n_genes = predictions[0].shape[1]
        largest = np.max([np.abs(p) for p in predictions], axis=0)
        return 4 * np.sqrt(n_genes) * np.finfo(np.float32).eps * largest

    @staticmethod
    def assert_within(got, expected: np.ndarray, error: np.ndarray) -> None:
        """``got`` equals ``expected`` up to ``error`` (per gene) and a relative 1e-6."""
        excess = np.abs(np.asarray(got) - expected) - error - 1e-6 * np.abs(expected)
        assert (excess <= 0).all(), f"{(excess > 0).sum()} genes off, worst by {excess.max():.3g}"


@pytest.fixture(scope="session")
def rounding():
    """:class:`PredictionRounding`, for tests that recompute a result from predictions."""
    return PredictionRounding()


@contextmanager
def _niche_dropped(model: lucidvi.model.InteractionVI, cell_type: str):
    """Within the block, ``cell_type`` has no niche (scale 0), as if calibration dropped it."""
    module = model.module
    scale = module.niche_scale.clone()
    try:
        module.niche_scale[model.labels.index(cell_type)] = 0.0
        yield
    finally:
        module.niche_scale.copy_(scale)


@pytest.fixture(scope="session")
def niche_dropped():
    """``with niche_dropped(model, cell_type):`` turns one receiver type's niche off."""
    return _niche_dropped

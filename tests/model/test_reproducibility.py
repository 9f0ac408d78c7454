"""The same seed gives bit-identical models on the CPU; save then load changes no prediction."""

from __future__ import annotations

import numpy as np
import pytest
import scvi

import lucidvi
from lucidvi.model import InteractionVI, LinearVI, MixtureVI


@pytest.fixture(scope="module")
def tissue():
    adata = lucidvi.data.simulate_spatial_niches(
        lucidvi.data.cbmc(), "cell_type", [("B", "CD14+ Mono", 15.0)], n_cells=800, seed=1
    )
    return adata[:, :80].copy()


def _linear(adata) -> np.ndarray:
    scvi.settings.seed = 0
    data = adata.copy()
    LinearVI.setup_anndata(data, layer="counts")
    model = LinearVI(data, n_latent=3)
    model.train(max_epochs=2, enable_progress_bar=False)
    return model.get_latent_representation()


def _mixture(adata, method: str) -> np.ndarray:
    data = adata.copy()
    MixtureVI.setup_anndata(data, layer="counts")
    model = MixtureVI(data, n_clusters=4)
    model.train(method=method, max_epochs=3, seed=3, progress_bar=False)
    return model.get_cluster_probabilities().to_numpy()


def _spatial(adata) -> InteractionVI:
    scvi.settings.seed = 0
    data = adata.copy()
    InteractionVI.setup_anndata(data, labels_key="cell_type", layer="counts", n_neighbors=5)
    model = InteractionVI(data, n_heads=2, n_latent=4)
    model.train(max_epochs=2, enable_progress_bar=False)
    return model


def test_linear_vi_is_reproducible(tissue):
    assert np.array_equal(_linear(tissue), _linear(tissue))


@pytest.mark.parametrize("method", ["em", "amortized"])
def test_mixture_vi_is_reproducible(tissue, method):
    scvi.settings.seed = 11  # a different global seed between the runs changes nothing
    first = _mixture(tissue, method)
    scvi.settings.seed = 12
    assert np.array_equal(first, _mixture(tissue, method))


def test_interaction_vi_is_reproducible_and_survives_save_and_load(tissue, tmp_path):
    first, second = _spatial(tissue), _spatial(tissue)
    predictions = first.get_predictions().to_numpy()
    assert np.array_equal(predictions, second.get_predictions().to_numpy())
    assert first.get_niche_calibration().equals(second.get_niche_calibration())
    first.save(tmp_path / "model")
    loaded = InteractionVI.load(tmp_path / "model", adata=first.adata)
    assert np.array_equal(predictions, loaded.get_predictions().to_numpy())
    assert loaded.get_niche_calibration().equals(first.get_niche_calibration())


def test_loading_onto_other_genes_or_cell_types_raises(tissue, tmp_path):
    model = _spatial(tissue)
    model.save(tmp_path / "model")
    other_genes = tissue[:, 1:].copy()
    with pytest.raises(ValueError):
        InteractionVI.load(tmp_path / "model", adata=other_genes)
    other_types = tissue.copy()
    other_types.obs["cell_type"] = other_types.obs["cell_type"].cat.rename_categories(
        lambda name: f"{name} (renamed)"
    )
    with pytest.raises(ValueError):
        InteractionVI.load(tmp_path / "model", adata=other_types)

"""The InteractionVI results on a Gaussian model with sender values and batches."""

import numpy as np
import pytest
import scvi

import lucidvi
from lucidvi.interpretation import (
    AttentionPatterns,
    ExplainedVariance,
    LengthScales,
    NeighborAblation,
)


@pytest.fixture(scope="module")
def gaussian_model():
    adata = lucidvi.data.simulate_spatial_niches(
        lucidvi.data.cbmc(), "cell_type", [("B", "CD14+ Mono", 15.0)], n_cells=800, seed=4
    )
    counts = adata.layers["counts"].toarray().astype(float)
    adata.layers["log"] = np.log1p(counts / counts.sum(1, keepdims=True) * 1e4)
    adata.obs["batch"] = np.where(adata.obsm["spatial"][:, 0] < 70, "left", "right")
    scvi.settings.seed = 0
    lucidvi.model.InteractionVI.setup_anndata(
        adata, "cell_type", layer="log", batch_key="batch", n_neighbors=8
    )
    model = lucidvi.model.InteractionVI(
        adata, n_heads=2, n_latent=8, likelihood="gaussian", niche_values="sender"
    )
    model.train(max_epochs=2, enable_progress_bar=False, calibrate=False)
    return model


def test_results_on_a_gaussian_model_with_sender_values(gaussian_model):
    held_out = gaussian_model.adata.n_obs - len(gaussian_model.train_indices)
    explained = ExplainedVariance.compute(gaussian_model, n_permutations=19, seed=0)
    assert explained.summary["n_cells"].sum() <= 2 * held_out
    assert np.isfinite(explained.table["expl_var_head_gene"]).all()
    patterns = AttentionPatterns.compute(gaussian_model)
    pairs = patterns.table[patterns.table["level"] == "pair"]
    np.testing.assert_allclose(
        pairs.groupby(["head", "receiver_type"])["attention"].sum(), 1.0, rtol=1e-5
    )
    ablation = NeighborAblation.compute(gaussian_model, "CD14+ Mono", sender_types=["B"])
    assert (ablation.table["receiver_type"] == "CD14+ Mono").all()
    assert ablation.table["sender_log2_ratio"].isna().all()  # no ratio of Gaussian means
    scales = LengthScales.compute(gaussian_model, n_bootstrap=5, seed=0)
    assert (scales.table["head_effect"] > 0).all()  # every type keeps its niche uncalibrated
    assert (scales.table["length_scale"] >= 0).all()

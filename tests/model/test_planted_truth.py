"""LinearVI recovers planted loadings (``simulate_linear``) up to an invertible linear map."""

import numpy as np
import pytest
import scvi

import lucidvi


@pytest.mark.slow
def test_learned_loadings_span_the_true_ones():
    adata = lucidvi.data.simulate_linear(n_cells=3000, n_genes=500, n_factors=10, seed=0)
    scvi.settings.seed = 0
    lucidvi.model.LinearVI.setup_anndata(adata, layer="counts")
    model = lucidvi.model.LinearVI(adata, n_latent=10)
    model.train(max_epochs=100, train_size=1.0, plan_kwargs={"lr": 3e-3}, enable_progress_bar=False)
    correlations = lucidvi.metrics.canonical_correlations(
        adata.varm["true_loadings"], model.get_loadings().to_numpy()
    )
    # the target; each of the 10 factors must be found for the mean to pass
    assert np.mean(correlations) >= 0.9, correlations

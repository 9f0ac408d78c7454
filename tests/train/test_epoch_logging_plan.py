import numpy as np
import scvi

from lucidvi.model import LinearVI


def test_epoch_metrics_match_a_direct_evaluation(small_adata):
    """The logged training ELBO equals the mean per-cell loss terms (no KL weight at epoch 0)."""
    scvi.settings.seed = 0
    adata = small_adata.copy()
    LinearVI.setup_anndata(adata, layer="counts")
    model = LinearVI(adata, n_latent=2)
    model.train(
        max_epochs=2,
        batch_size=50,
        enable_progress_bar=False,
        plan_kwargs={"n_epochs_kl_warmup": 10},
    )
    history = {key: frame.to_numpy(dtype=float).ravel() for key, frame in model.history.items()}
    np.testing.assert_allclose(history["kl_weight"], [0.0, 0.1], atol=1e-6)
    elbo = history["elbo_train"]
    parts = history["reconstruction_loss_train"] + history["kl_local_train"]
    np.testing.assert_allclose(elbo, parts, rtol=1e-5)
    # the optimised loss weights the KL term: equal to the reconstruction term at weight 0
    np.testing.assert_allclose(
        history["train_loss"][0], history["reconstruction_loss_train"][0], rtol=1e-5
    )

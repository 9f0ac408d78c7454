"""LinearVI trained with gene masking embeds gene panels."""

import numpy as np
import pytest

from lucidvi.metrics import mutual_information
from lucidvi.model import LinearVI


def test_panel_of_all_genes_is_the_latent_representation(masked_model):
    full = masked_model.get_latent_representation()
    panel = masked_model.get_panel_representation(masked_model.adata.var_names)
    np.testing.assert_allclose(panel, full, rtol=1e-6, atol=1e-6)


def test_bigger_panels_carry_more_information_about_the_planted_factors(masked_model):
    adata = masked_model.adata
    truth = adata.obsm["true_factors"]
    ranked = adata.var_names[np.argsort(-np.asarray(adata.layers["counts"].mean(0)).ravel())]
    small, large = (
        mutual_information(masked_model.get_panel_representation(ranked[:n]), truth, seed=1)
        for n in (5, 40)
    )
    # the larger panel's interval lies above the smaller panel's estimate
    assert large.ci_low > small.estimate


def test_panel_representation_checks_its_input(masked_model, small_adata):
    with pytest.raises(ValueError, match="not among the model's genes"):
        masked_model.get_panel_representation(["not-a-gene"])
    with pytest.raises(ValueError, match="more than once"):
        gene = masked_model.adata.var_names[0]
        masked_model.get_panel_representation([gene, gene])
    with pytest.raises(ValueError, match="empty"):
        masked_model.get_panel_representation([])
    adata = small_adata.copy()
    LinearVI.setup_anndata(adata, layer="counts")
    unmasked = LinearVI(adata, n_latent=2)
    unmasked.train(max_epochs=1, enable_progress_bar=False)
    with pytest.raises(ValueError, match="without gene masking"):
        unmasked.get_panel_representation(adata.var_names[:5])

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from anndata import AnnData

from lucidvi.interpretation import DimImportance, LatentReport
from lucidvi.pl import dim_importance_elbow, latent_correlation

matplotlib.use("Agg")


def test_latent_correlation_clusters_correlated_dimensions_together():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(300, 2))
    z = np.column_stack([base[:, 0], base[:, 1], base[:, 0] + 0.1 * rng.normal(size=300)])
    adata = AnnData(np.ones((300, 1)))
    adata.obsm["X"] = pd.DataFrame(z, columns=["a", "b", "a2"], index=adata.obs_names)
    ax = latent_correlation(LatentReport.compute(adata, "X"))
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert sorted(labels) == ["a", "a2", "b"]
    assert abs(labels.index("a") - labels.index("a2")) == 1
    assert ax.images[0].get_array().shape == (3, 3)
    plt.close("all")


def test_elbow_marks_the_selected_dimensions():
    rng = np.random.default_rng(1)
    effects = np.column_stack([np.full(10, 3.0), np.full(10, 1.0), np.full(10, 0.5)])
    result = DimImportance.compute(effects, rng.normal(size=(500, 3)), cumulative_cutoff=0.8)
    fig, ax = plt.subplots()
    assert dim_importance_elbow(result, ax=ax) is ax
    bars = ax.patches
    assert len(bars) == 3
    heights = [bar.get_height() for bar in bars]
    assert heights == sorted(heights, reverse=True)
    assert [t.get_text() for t in ax.get_xticklabels()] == list(result.order)
    assert f"{result.n_dims_at_cutoff} reach 80%" in ax.get_title()
    plt.close("all")

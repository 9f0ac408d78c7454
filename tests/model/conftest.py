"""Shared fixtures of the model tests."""

import numpy as np
import pandas as pd
import pytest

import lucidvi


@pytest.fixture(scope="session")
def two_section_tissue():
    """600 planted cells (types of at least 10 cells) split into two sections, s1 and s2."""
    adata = lucidvi.data.simulate_spatial_niches(
        lucidvi.data.cbmc(),
        "cell_type",
        [("B", "CD14+ Mono", 15.0)],
        n_cells=600,
        n_domains=2,
        seed=3,
    )
    common = adata.obs["cell_type"].map(adata.obs["cell_type"].value_counts()) >= 10
    adata = adata[common.to_numpy()].copy()
    adata.obs["cell_type"] = adata.obs["cell_type"].cat.remove_unused_categories()
    half = adata.n_obs // 2
    adata.obs["section"] = pd.Categorical(np.where(np.arange(adata.n_obs) < half, "s1", "s2"))
    return adata

"""Bad input, generated: every call returns a valid result or raises a ValueError/KeyError.

Hypothesis draws small AnnData objects with the defects users bring: NaN and infinite values,
negative or non-integer counts, empty cells, one cell, duplicated gene names, cell types of
one cell, categories that look like numbers, duplicated or single coordinates. The models'
registration (and, for MixtureVI, a short EM fit) must either succeed with finite results or
raise ``ValueError``/``KeyError`` naming the problem; never a ``TypeError``/``IndexError``
from deep inside, never NaN in a returned table. Example counts are bounded so that the
default test run stays short.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from anndata import AnnData
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from lucidvi.model import InteractionVI, LinearVI, MixtureVI

FUZZ = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
EXPECTED = (ValueError, KeyError)


@st.composite
def user_anndata(draw) -> AnnData:
    n_cells = draw(st.integers(1, 24))
    n_genes = draw(st.integers(1, 6))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    counts = rng.poisson(8.0, size=(n_cells, n_genes)).astype(np.float64)
    defects = ["nan", "inf", "negative", "fraction", "empty cell", "zeros"]
    # about half of the examples without a defect in the counts
    defect = (["none"] * len(defects) + defects)[draw(st.integers(0, 2 * len(defects) - 1))]
    row, col = draw(st.integers(0, n_cells - 1)), draw(st.integers(0, n_genes - 1))
    if defect == "nan":
        counts[row, col] = np.nan
    elif defect == "inf":
        counts[row, col] = np.inf
    elif defect == "negative":
        counts[row, col] = -1
    elif defect == "fraction":
        counts[row, col] = 0.5
    elif defect == "empty cell":
        counts[row] = 0
    elif defect == "zeros":
        counts[:] = 0
    matrix = sp.csr_matrix(counts) if draw(st.booleans()) else counts
    names = draw(st.sampled_from(["unique", "duplicated"]))
    var_names = [f"g{i}" for i in range(n_genes)]
    if names == "duplicated" and n_genes > 1:
        var_names[1] = var_names[0]
    labels = draw(st.sampled_from([["A", "B"], ["1", "2", "10"], ["only"], ["0.5", "x"]]))
    obs = pd.DataFrame(
        {"cell_type": pd.Categorical(rng.choice(labels, n_cells))},
        index=[f"c{i}" for i in range(n_cells)],
    )
    adata = AnnData(matrix, obs=obs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # anndata warns about duplicated names
        adata.var_names = var_names
    layout = draw(st.sampled_from(["random", "duplicated", "line"]))
    spatial = rng.uniform(0, 100, size=(n_cells, 2))
    if layout == "duplicated":
        spatial[:] = spatial[0]
    elif layout == "line":
        spatial[:, 1] = 0
    adata.obsm["spatial"] = spatial
    return adata


def _finite_table(frame: pd.DataFrame) -> None:
    numbers = frame.select_dtypes("number").to_numpy(dtype=np.float64)
    assert np.isfinite(numbers).all(), "a returned table holds NaN or inf"


@FUZZ
@given(user_anndata())
def test_linear_vi_registration_accepts_or_explains(adata):
    try:
        LinearVI.setup_anndata(adata)
        LinearVI(adata, n_latent=2)
    except EXPECTED as error:
        assert str(error)


@FUZZ
@given(user_anndata(), st.integers(2, 4))
def test_mixture_vi_fit_accepts_or_explains(adata, n_clusters):
    try:
        MixtureVI.setup_anndata(adata)
        model = MixtureVI(adata, n_clusters=n_clusters)
        model.train(method="em", init="random", max_epochs=3, seed=0, progress_bar=False)
    except EXPECTED as error:
        event(str(error)[:70])
        assert str(error)
        return
    event("fitted")
    _finite_table(model.get_cluster_probabilities())


@FUZZ
@given(user_anndata(), st.integers(1, 5))
def test_interaction_vi_registration_accepts_or_explains(adata, n_neighbors):
    try:
        InteractionVI.setup_anndata(adata, labels_key="cell_type", n_neighbors=n_neighbors)
        InteractionVI(adata, n_heads=1, n_latent=2)
    except EXPECTED as error:
        event(str(error)[:70])
        assert str(error)
        return
    event("registered")


@pytest.mark.parametrize("key", ["missing", "cell_type"])
def test_missing_or_bad_keys_name_the_key(key):
    adata = AnnData(np.ones((4, 3)), obs=pd.DataFrame({"cell_type": list("aabb")}))
    with pytest.raises(EXPECTED, match="spatial|missing"):
        InteractionVI.setup_anndata(adata, labels_key=key)

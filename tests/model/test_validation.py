import numpy as np
import pytest
import scipy.sparse as sp

from lucidvi.model import LinearVI


@pytest.fixture
def adata(small_adata):
    return small_adata.copy()


def test_non_integer_counts(adata):
    adata.layers["counts"] = adata.layers["counts"].astype(float) * 1.5
    with pytest.raises(ValueError, match="non-integer"):
        LinearVI.setup_anndata(adata, layer="counts")


def test_negative_values(adata):
    adata.X = adata.X.astype(float)
    adata.X.data[0] = -1
    with pytest.raises(ValueError, match="negative"):
        LinearVI.setup_anndata(adata)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_inf(adata, bad):
    dense = adata.layers["counts"].toarray().astype(float)
    dense[3, 2] = bad
    adata.layers["counts"] = dense
    with pytest.raises(ValueError, match="NaN or infinite"):
        LinearVI.setup_anndata(adata, layer="counts")


def test_zero_count_cells_name_the_fix(adata):
    counts = adata.layers["counts"].tolil()
    counts[[1, 7]] = 0
    adata.layers["counts"] = sp.csr_matrix(counts)
    with pytest.raises(ValueError, match=r"2 cells have zero total counts.*filter_cells"):
        LinearVI.setup_anndata(adata, layer="counts")


def test_missing_obs_column(adata):
    with pytest.raises(ValueError, match="batch_key='sample'"):
        LinearVI.setup_anndata(adata, layer="counts", batch_key="sample")
    with pytest.raises(ValueError, match="continuous_covariate_keys='age'"):
        LinearVI.setup_anndata(adata, layer="counts", continuous_covariate_keys=["age"])


def test_missing_values_in_obs_column(adata):
    adata.obs["donor"] = adata.obs["donor"].astype(object)
    adata.obs.loc[adata.obs_names[0], "donor"] = None
    with pytest.raises(ValueError, match="missing values"):
        LinearVI.setup_anndata(adata, layer="counts", categorical_covariate_keys=["donor"])


def test_missing_layer(adata):
    with pytest.raises(ValueError, match="not in adata.layers"):
        LinearVI.setup_anndata(adata, layer="raw_counts")

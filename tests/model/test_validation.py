import inspect

import numpy as np
import pytest
import scipy.sparse as sp

import lucidvi
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


@pytest.mark.parametrize("name", ["LinearVI", "MixtureVI", "InteractionVI"])
def test_the_registry_records_the_setup_arguments_alone(small_adata, name):
    """Locals computed during setup (e.g. the neighbour arrays) never enter the saved registry.

    scvi-tools passes the recorded arguments back to ``setup_anndata`` when a saved model is
    loaded onto unregistered data, so anything else there would be an unexpected argument.
    """
    cls = getattr(lucidvi.model, name)
    adata = small_adata.copy()
    adata.obsm["spatial"] = np.random.default_rng(0).uniform(0, 100, (adata.n_obs, 2))
    setup = {"layer": "counts", "batch_key": "batch"}
    if name == "MixtureVI":
        adata.obs["size_factor"] = 1.0
        setup["size_factor_key"] = "size_factor"
    if name == "InteractionVI":
        setup.update(labels_key="cell_type", n_neighbors=5)
    cls.setup_anndata(adata, **setup)
    recorded = cls._get_most_recent_anndata_manager(adata).registry["setup_args"]
    parameters = set(inspect.signature(cls.setup_anndata).parameters) - {"adata", "kwargs"}
    assert set(recorded) <= parameters
    assert all(recorded[key] == value for key, value in setup.items())

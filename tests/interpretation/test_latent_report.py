import numpy as np
import pandas as pd
import pytest
from anndata import AnnData

from lucidvi.interpretation import LatentReport


def _adata_with(embedding):
    adata = AnnData(np.ones((len(embedding), 2)))
    adata.obsm["X_emb"] = embedding
    return adata


def test_report_on_independent_and_dependent_embeddings():
    z = np.random.default_rng(0).normal(size=(200, 3))
    report = LatentReport.compute(_adata_with(z), "X_emb")
    assert (report.n_obs, report.n_dims, report.rank) == (200, 3, 3)
    assert report.linearly_independent
    np.testing.assert_allclose(report.correlation.to_numpy(), np.corrcoef(z.T))
    dependent = LatentReport.compute(_adata_with(np.column_stack([z, z[:, 0] - z[:, 1]])), "X_emb")
    assert dependent.rank == 3 and not dependent.linearly_independent
    assert "DEPENDENT" in dependent.summary()


def test_constant_dimension_has_zero_correlation_and_lowers_the_rank():
    z = np.random.default_rng(1).normal(size=(50, 2))
    report = LatentReport.compute(_adata_with(np.column_stack([z, np.ones(50)])), "X_emb")
    assert report.rank == 2
    np.testing.assert_array_equal(report.correlation.iloc[2].to_numpy(), [0.0, 0.0, 0.0])


def test_dataframe_embeddings_keep_their_names():
    frame = pd.DataFrame(np.random.default_rng(2).normal(size=(30, 2)), columns=["a", "b"])
    report = LatentReport.compute(_adata_with(frame.set_axis([str(i) for i in range(30)])), "X_emb")
    assert list(report.correlation.columns) == ["a", "b"]


def test_bad_embeddings_raise():
    z = np.random.default_rng(3).normal(size=(20, 2))
    z[4, 0] = np.inf
    with pytest.raises(ValueError, match="NaN or infinite"):
        LatentReport.compute(_adata_with(z), "X_emb")
    with pytest.raises(ValueError, match="not in adata.obsm"):
        LatentReport.compute(_adata_with(z), "X_other")

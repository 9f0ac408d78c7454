"""InteractionVI neighbours from a graph in obsp: squidpy's layout, filters, bad graphs."""

import numpy as np
import pytest
import scipy.sparse as sp
import squidpy as sq
from anndata import AnnData
from sklearn.neighbors import kneighbors_graph

from lucidvi._registration import unregistered_copy
from lucidvi.model import InteractionVI
from lucidvi.model._interaction._precomputed_graph import graph_neighbors
from lucidvi.model._interaction._spatial_neighbors import spatial_neighbors

# squidpy 1.8.3 deprecates spatial_neighbors for spatial_neighbors_delaunay, which 1.8.0 lacks
pytestmark = pytest.mark.filterwarnings("ignore:Calling `spatial_neighbors` is deprecated")


def _store_knn_graph(adata: AnnData, k: int) -> None:
    """A kNN graph per section, stored the way squidpy stores its graphs."""
    distances = sp.lil_matrix((adata.n_obs, adata.n_obs))
    for section in adata.obs["section"].unique():
        rows = np.flatnonzero(adata.obs["section"] == section)
        block = kneighbors_graph(adata.obsm["spatial"][rows], k, mode="distance")
        distances[np.ix_(rows, rows)] = block
    distances = distances.tocsr()
    adata.obsp["knn_distances"] = distances
    adata.obsp["knn_connectivities"] = (distances > 0).astype(np.float32)
    adata.uns["knn_neighbors"] = {
        "connectivities_key": "knn_connectivities",
        "distances_key": "knn_distances",
    }


def test_a_knn_graph_gives_the_knn_neighbours(two_section_tissue):
    adata = unregistered_copy(two_section_tissue)
    _store_knn_graph(adata, 8)
    labels = adata.obs["cell_type"].astype(str).to_numpy()
    samples = adata.obs["section"].astype(str).to_numpy()
    graph = graph_neighbors(adata, "knn_neighbors", labels, samples, n_neighbors=8)
    indices, distances = spatial_neighbors(adata.obsm["spatial"], labels, samples, 8)
    assert graph.n_truncated == 0
    assert np.array_equal(graph.indices, indices)
    np.testing.assert_allclose(graph.distances, distances, rtol=1e-5)
    # filters act on the graph's edges as on the kNN search
    for options in ({"radius": 3.0}, {"exclude_same_type": True}):
        filtered = graph_neighbors(adata, "knn_neighbors", labels, samples, 8, **options)
        kept = filtered.indices[filtered.indices >= 0]
        assert len(kept) < (graph.indices >= 0).sum()
        rows = np.nonzero(filtered.indices >= 0)[0]
        if "radius" in options:
            assert (filtered.distances[filtered.indices >= 0] <= 3.0).all()
        else:
            assert (labels[kept] != labels[rows]).all()


def test_squidpy_delaunay_graph_is_registered_and_trains(two_section_tissue):
    adata = unregistered_copy(two_section_tissue)
    sq.gr.spatial_neighbors(adata, coord_type="generic", delaunay=True, library_key="section")
    InteractionVI.setup_anndata(
        adata,
        labels_key="cell_type",
        layer="counts",
        sample_key="section",
        neighbors_key="spatial_neighbors",
    )
    graph = adata.obsp["spatial_connectivities"].tocsr()
    degree = np.diff(graph.indptr)
    indices = adata.obsm["lucidvi_neighbor_index"]
    assert indices.shape == (adata.n_obs, degree.max())
    assert adata.uns["lucidvi_neighbors"]["neighbors_key"] == "spatial_neighbors"
    for cell in np.random.default_rng(0).choice(adata.n_obs, 25, replace=False):
        row = indices[cell]
        assert set(row[row >= 0]) == set(graph.indices[graph.indptr[cell] : graph.indptr[cell + 1]])
        found = adata.obsm["lucidvi_neighbor_distance"][cell][row >= 0]
        assert (np.diff(found) >= 0).all()  # nearest first
        np.testing.assert_allclose(
            found,
            np.linalg.norm(
                adata.obsm["spatial"][row[row >= 0]] - adata.obsm["spatial"][cell], axis=1
            ),
            rtol=1e-5,
        )
    model = InteractionVI(adata, n_heads=2, n_latent=8)
    model.train(max_epochs=1, batch_size=128, enable_progress_bar=False, calibrate=False)
    weights = model.get_attention(indices=np.arange(10))
    assert set(weights.loc[weights["neighbor_index"] >= 0, "neighbor_index"]) <= set(
        indices[:10].ravel()
    )


def test_a_cell_with_more_edges_than_slots_keeps_the_nearest(two_section_tissue):
    adata = unregistered_copy(two_section_tissue)
    _store_knn_graph(adata, 8)
    with pytest.warns(UserWarning, match=r"\d+ cells have more than n_neighbors=3"):
        InteractionVI.setup_anndata(
            adata,
            labels_key="cell_type",
            layer="counts",
            sample_key="section",
            n_neighbors=3,
            neighbors_key="knn_neighbors",
        )
    labels = adata.obs["cell_type"].astype(str).to_numpy()
    nearest, _ = spatial_neighbors(
        adata.obsm["spatial"], labels, adata.obs["section"].astype(str).to_numpy(), 3
    )
    assert np.array_equal(adata.obsm["lucidvi_neighbor_index"], nearest)


def test_bad_graphs_say_what_to_fix(two_section_tissue):
    adata = unregistered_copy(two_section_tissue)
    setup = {"labels_key": "cell_type", "layer": "counts", "sample_key": "section"}
    with pytest.raises(ValueError, match="squidpy.gr.spatial_neighbors"):
        InteractionVI.setup_anndata(adata, neighbors_key="spatial_neighbors", **setup)
    sq.gr.spatial_neighbors(adata, coord_type="generic", delaunay=True)  # across sections
    with pytest.raises(ValueError, match="different samples"):
        InteractionVI.setup_anndata(adata, neighbors_key="spatial_neighbors", **setup)
    del adata.obsp["spatial_distances"]
    with pytest.raises(ValueError, match="adata.obsp lacks"):
        InteractionVI.setup_anndata(adata, neighbors_key="spatial_neighbors", **setup)

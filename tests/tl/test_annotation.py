"""Naming clusters by their marker genes."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from lucidvi.tl import annotate_clusters

MARKERS = {"Rod": ["g0", "g1"], "Bipolar": ["g2", "g3"], "Glia": ["g4"]}


def _clusters(seed: int = 0) -> ad.AnnData:
    """Four clusters of 200 cells: three high in one type's markers, one in none of them."""
    rng = np.random.default_rng(seed)
    n_per, n_genes = 200, 12
    rates = np.full((4, n_genes), 2.0)
    rates[0, [0, 1]] = 30.0  # rods
    rates[1, [2, 3]] = 30.0  # bipolar cells
    rates[2, 4] = 30.0  # glia
    rates[3, 8] = 30.0  # a type no marker names
    counts = rng.poisson(np.repeat(rates, n_per, axis=0)).astype(np.float32)
    adata = ad.AnnData(sp.csr_matrix(counts))
    adata.var_names = [f"g{i}" for i in range(n_genes)]
    adata.obs["cluster"] = pd.Categorical(np.repeat(["c0", "c1", "c2", "c3"], n_per))
    adata.layers["counts"] = adata.X.copy()
    return adata


def test_each_cluster_takes_the_type_whose_markers_it_expresses():
    adata = _clusters()
    before = adata.X.copy()
    table = annotate_clusters(adata, MARKERS, groupby="cluster", layer="counts")
    assert table.loc[["c0", "c1", "c2"], "cell_type"].tolist() == ["Rod", "Bipolar", "Glia"]
    assert table.loc["c3", "cell_type"] == "unassigned"
    # A marker's scaled level is 1 in the cluster that expresses it most.
    assert table.loc["c0", "score"] == pytest.approx(1.0)
    assert table.loc["c0", "runner_up_score"] < 0.2
    assert table["n_cells"].tolist() == [200] * 4
    assert list(table.columns[5:]) == ["g0", "g1", "g2", "g3", "g4"]
    assert table.loc["c0", "g0"] > table.loc["c1", "g0"]
    categories = adata.obs["cell_type"].cat.categories.tolist()
    assert categories == ["Rod", "Bipolar", "Glia", "unassigned"]
    assert (adata.obs["cell_type"].to_numpy()[:200] == "Rod").all()
    assert (adata.X != before).nnz == 0  # the counts are not normalised in place


def test_clusters_split_into_many_pieces_keep_their_type():
    adata = _clusters()
    # Split the rods into five clusters: the scale is per cluster, not per cell.
    pieces = np.where(np.arange(adata.n_obs) < 200, np.arange(adata.n_obs) % 5, -1)
    labels = np.where(pieces >= 0, "rod" + pieces.astype(str), adata.obs["cluster"].astype(str))
    adata.obs["fine"] = pd.Categorical(labels)
    table = annotate_clusters(adata, MARKERS, groupby="fine", key_added="type")
    assert (table.loc[[f"rod{i}" for i in range(5)], "cell_type"] == "Rod").all()
    assert "type" in adata.obs


@pytest.mark.parametrize(
    ("markers", "groupby", "error", "match"),
    [
        ({"Rod": ["g0"]}, "cluster", ValueError, "at least two"),
        ({"Rod": ["g0"], "Glia": []}, "cluster", ValueError, "without marker"),
        ({"Rod": ["g0"], "Glia": ["Sox9"]}, "cluster", KeyError, "Sox9"),
        (MARKERS, "leiden", KeyError, "leiden"),
    ],
)
def test_bad_input_is_refused(markers, groupby, error, match):
    with pytest.raises(error, match=match):
        annotate_clusters(_clusters(), markers, groupby=groupby)

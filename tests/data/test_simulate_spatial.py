import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from scipy.stats import chi2_contingency, ttest_ind

import lucidvi
from lucidvi.data._simulate_spatial import simulate_spatial_niches

INTERACTIONS = [("B", "CD14+ Mono", 15.0), ("NK", "CD4 T", 12.0), ("CD16+ Mono", "CD8 T", 20.0)]
N_CELLS = 3000


@pytest.fixture(scope="module")
def cbmc():
    return lucidvi.data.cbmc()


@pytest.fixture(scope="module")
def simulated(cbmc):
    return simulate_spatial_niches(cbmc, "cell_type", INTERACTIONS, n_cells=N_CELLS, seed=0)


@pytest.fixture(scope="module")
def null(cbmc):
    return simulate_spatial_niches(cbmc, "cell_type", [], n_cells=N_CELLS, seed=0)


def _log_normalised(counts) -> np.ndarray:
    dense = counts.toarray().astype(np.float64)
    return np.log1p(dense / np.maximum(dense.sum(1, keepdims=True), 1) * 1e4)


def _receivers(adata, receiver: str, substate: str) -> np.ndarray:
    obs = adata.obs
    return ((obs["cell_type"] == receiver) & (obs["substate"] == substate)).to_numpy()


def test_output_layout(cbmc, simulated):
    assert simulated.shape == (N_CELLS, cbmc.n_vars)
    assert simulated.var_names.equals(cbmc.var_names)
    for matrix in (simulated.X, simulated.layers["counts"]):
        assert sp.isspmatrix_csr(matrix) and matrix.dtype == np.int32
    assert (simulated.X != simulated.layers["counts"]).nnz == 0
    assert not np.shares_memory(simulated.X.data, simulated.layers["counts"].data)
    assert not np.shares_memory(simulated.X.data, cbmc.X.data)
    obs = simulated.obs
    assert list(obs["cell_type"].cat.categories) == list(cbmc.obs["cell_type"].cat.categories)
    assert list(obs["substate"].cat.categories) == ["near", "far", "none"]
    assert obs["interacting"].dtype == bool and obs["distance_to_sender"].dtype == np.float64
    assert obs["source_cell"].isin(cbmc.obs_names).all()
    truth = simulated.uns["spatial_niches"]
    side = np.sqrt(N_CELLS / 0.04)
    assert truth["side"] == pytest.approx(side)
    assert (truth["density"], truth["seed"], truth["labels_key"]) == (0.04, 0, "cell_type")
    spatial = simulated.obsm["spatial"]
    assert spatial.shape == (N_CELLS, 2) and spatial.dtype == np.float64
    assert spatial.min() >= 0 and spatial.max() <= side
    table = truth["interactions"]
    pairs = list(table[["sender", "receiver", "length_scale"]].itertuples(index=False, name=None))
    assert pairs == INTERACTIONS
    assert set(truth["genes"]["receiver"]) == set(table["receiver"])
    for summary in table.to_dict("records"):
        assert summary["n_near"] == _receivers(simulated, summary["receiver"], "near").sum()
        assert summary["n_far"] == _receivers(simulated, summary["receiver"], "far").sum()


def test_seed_reproducibility(cbmc, simulated):
    again = simulate_spatial_niches(cbmc, "cell_type", INTERACTIONS, n_cells=N_CELLS, seed=0)
    other = simulate_spatial_niches(cbmc, "cell_type", INTERACTIONS, n_cells=N_CELLS, seed=1)
    assert (again.X != simulated.X).nnz == 0 and again.obs.equals(simulated.obs)
    np.testing.assert_array_equal(again.obsm["spatial"], simulated.obsm["spatial"])
    assert not np.allclose(other.obsm["spatial"], simulated.obsm["spatial"])
    assert (other.obs["source_cell"] != simulated.obs["source_cell"]).mean() > 0.9


def test_substate_follows_brute_force_distance(simulated):
    obs, positions = simulated.obs, simulated.obsm["spatial"]
    receiver_types = [receiver for _, receiver, _ in INTERACTIONS]
    for sender, receiver, length_scale in INTERACTIONS:
        receivers = (obs["cell_type"] == receiver).to_numpy()
        senders = positions[(obs["cell_type"] == sender).to_numpy()]
        gaps = positions[receivers][:, None, :] - senders[None, :, :]
        nearest = np.sqrt((gaps**2).sum(-1)).min(1)
        np.testing.assert_allclose(obs["distance_to_sender"][receivers], nearest, rtol=1e-10)
        expected = np.where(nearest <= length_scale, "near", "far")
        np.testing.assert_array_equal(obs["substate"][receivers].astype(str), expected)
        assert 0 < (expected == "near").sum() < len(expected)  # both sub-states are present
    others = ~obs["cell_type"].isin(receiver_types).to_numpy()
    assert (obs["substate"][others] == "none").all()
    assert obs["distance_to_sender"][others].isna().all()
    np.testing.assert_array_equal(obs["interacting"], obs["substate"] == "near")


def test_counts_are_copies_of_source_cells(cbmc, simulated):
    source = cbmc.obs_names.get_indexer(simulated.obs["source_cell"])
    assert (cbmc.X[source] != simulated.X).nnz == 0
    np.testing.assert_array_equal(
        cbmc.obs["cell_type"].to_numpy()[source], simulated.obs["cell_type"].to_numpy()
    )
    for _, receiver, _ in INTERACTIONS:  # near and far receivers copy disjoint real cells
        near = simulated.obs["source_cell"][_receivers(simulated, receiver, "near")]
        far = simulated.obs["source_cell"][_receivers(simulated, receiver, "far")]
        assert len(near) and len(far) and not set(near) & set(far)


def test_null_has_no_interactions(simulated, null):
    assert null.uns["spatial_niches"]["interactions"].empty
    assert null.uns["spatial_niches"]["genes"].empty
    assert (null.obs["substate"] == "none").all() and not null.obs["interacting"].any()
    assert null.obs["distance_to_sender"].isna().all()
    # Same seed: same positions, types and copies as planted, except for the receivers.
    np.testing.assert_array_equal(null.obsm["spatial"], simulated.obsm["spatial"])
    assert null.obs["cell_type"].equals(simulated.obs["cell_type"])
    others = (simulated.obs["substate"] == "none").to_numpy()
    assert null.obs["source_cell"][others].equals(simulated.obs["source_cell"][others])
    receivers = ~others  # drawn anew; a pool has >= 40 cells, so few match by chance
    assert (
        null.obs["source_cell"][receivers] != simulated.obs["source_cell"][receivers]
    ).mean() > 0.9


def test_planted_genes_differ_between_near_and_far(simulated, null):
    """A signed signature score of the planted genes separates near from far receivers.

    Null receivers (same positions and types) copy cells of their whole type whatever their
    distance, so the Welch t statistic of the score is about N(0, 1) there (|t| < 4 fails with
    probability 6e-5); planted receivers copy the two sub-states, which the genes separate.
    """
    expression, null_expression = _log_normalised(simulated.X), _log_normalised(null.X)
    planted_genes = simulated.uns["spatial_niches"]["genes"]
    for summary in simulated.uns["spatial_niches"]["interactions"].to_dict("records"):
        rows = planted_genes[planted_genes["receiver"] == summary["receiver"]]
        summary["log2_fold_change"] = rows["log2_fold_change"].to_numpy()
        genes = simulated.var_names.get_indexer(rows["gene"])
        assert len(genes) > 0 and (genes >= 0).all()
        signs = np.sign(summary["log2_fold_change"])
        assert np.all(np.abs(summary["log2_fold_change"]) >= 0.5)
        near = _receivers(simulated, summary["receiver"], "near")
        far = _receivers(simulated, summary["receiver"], "far")
        # Per gene: no planted gene is reversed beyond 4 standard errors.
        values = expression[:, genes]
        difference = values[near].mean(0) - values[far].mean(0)
        error = np.sqrt(
            values[near].var(0, ddof=1) / near.sum() + values[far].var(0, ddof=1) / far.sum()
        )
        assert np.all(signs * difference > -4 * error)
        planted = ttest_ind(values[near] @ signs, values[far] @ signs, equal_var=False)
        null_values = null_expression[:, genes]
        control = ttest_ind(null_values[near] @ signs, null_values[far] @ signs, equal_var=False)
        assert planted.statistic > 5 and abs(control.statistic) < 4


def test_composition_varies_in_space(simulated):
    """Types are not independent of the quadrant of the layout (chi-square test)."""
    positions, side = simulated.obsm["spatial"], simulated.uns["spatial_niches"]["side"]
    quadrant = 2 * (positions[:, 0] > side / 2) + (positions[:, 1] > side / 2)
    table = pd.crosstab(simulated.obs["cell_type"].to_numpy(), quadrant).to_numpy()
    assert chi2_contingency(table[table.sum(1) > 0]).pvalue < 1e-3


def test_small_field_scale_warns(cbmc):
    with pytest.warns(UserWarning, match="correlation length"):
        simulate_spatial_niches(cbmc, "cell_type", INTERACTIONS[:1], n_cells=500, n_domains=20)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"labels_key": "missing"}, "not a column"),
        ({"interactions": [("B", "Neuron", 10.0)]}, "not among the labels"),
        ({"interactions": [("B", "NK", 10.0), ("DC", "NK", 5.0)]}, "one interaction per"),
        ({"interactions": [("B", "B", 10.0)]}, "same sender and receiver"),
        ({"interactions": [("B", "NK", 0.0)]}, "must be positive"),
        ({"n_cells": 0}, "must be positive"),
        ({"density": -1.0}, "must be positive"),
    ],
)
def test_bad_arguments(cbmc, kwargs, match):
    arguments = {"labels_key": "cell_type", "interactions": INTERACTIONS[:1], "n_cells": 100}
    with pytest.raises(ValueError, match=match):
        simulate_spatial_niches(cbmc, **(arguments | kwargs))


@pytest.mark.parametrize("scale", [0.5, -1.0])
def test_non_count_data_raises(cbmc, scale):
    adata = cbmc[:200].copy()
    adata.X = adata.X.astype(np.float64) * scale
    with pytest.raises(ValueError, match="non-negative integer counts"):
        simulate_spatial_niches(adata, "cell_type", [], n_cells=100)


def test_too_few_cells_for_substates_raise(cbmc):
    types = cbmc.obs["cell_type"]
    first = {t: np.flatnonzero(types == t) for t in ("pDC", "B", "Eryth", "NK")}
    few = cbmc[np.concatenate([first["pDC"][:30], first["NK"][:10]])].copy()
    with pytest.raises(ValueError, match="'pDC' has 30 cells"):
        simulate_spatial_niches(few, "cell_type", [("NK", "pDC", 10.0)], n_cells=100, n_domains=1)
    # 60 B cells and 5 erythrocytes labelled B: k-means sets the 5 apart, below 20 cells.
    mixed = cbmc[np.concatenate([first["B"][:60], first["Eryth"][:5], first["NK"][:10]])].copy()
    mixed.obs["cell_type"] = np.where(np.arange(mixed.n_obs) < 65, "B", "NK")
    with pytest.raises(ValueError, match="'B' gives sub-states of"):
        simulate_spatial_niches(mixed, "cell_type", [("NK", "B", 10.0)], n_cells=100, n_domains=1)


def test_result_can_be_written_and_read(simulated, tmp_path):
    import anndata

    path = tmp_path / "niches.h5ad"
    simulated.write_h5ad(path)
    truth = anndata.read_h5ad(path).uns["spatial_niches"]
    pd.testing.assert_frame_equal(
        truth["genes"], simulated.uns["spatial_niches"]["genes"], check_dtype=False
    )


def test_copies_of_a_cell_have_different_neighbours(cbmc):
    """A cell's copies must not sit next to the same real cells, or neighbours predict it.

    Erythrocytes: 81 real cells for about 660 simulated ones at seed 0. With neighbours drawn
    independently of the copy, the nearest erythrocyte of each of a real cell's ``m`` copies
    comes from a different real cell except for chance repeats, a share of about
    ``(m - 1) / (2 * 81)``: under 0.05 for ``m <= 8``. One order of the pool repeated along
    the Z-order curve gave 0.62 distinct neighbours per copy.
    """
    adata = simulate_spatial_niches(cbmc, "cell_type", [], n_cells=6000, seed=0)
    rows = np.flatnonzero(adata.obs["cell_type"] == "Eryth")
    positions = adata.obsm["spatial"][rows]
    distances = ((positions[:, None] - positions[None]) ** 2).sum(-1)
    np.fill_diagonal(distances, np.inf)
    source = adata.obs["source_cell"].to_numpy()[rows]
    nearest = source[distances.argmin(1)]
    shares = [
        len(set(nearest[source == cell])) / (source == cell).sum()
        for cell in np.unique(source)
        if (source == cell).sum() >= 4
    ]
    assert len(shares) > 40
    assert np.mean(shares) > 0.9

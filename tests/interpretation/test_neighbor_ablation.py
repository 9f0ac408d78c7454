"""NeighborAblation: masking a sender type, per gene, with tests."""

import io

import matplotlib
import numpy as np
import pandas as pd
import pytest
from scipy.stats import binomtest
from sklearn.metrics import average_precision_score

from lucidvi.interpretation import NeighborAblation
from lucidvi.interpretation._spatial._inputs import observed_expression, predicted_expression

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def result(spatial_model):
    return NeighborAblation.compute(spatial_model, receiver_type="CD14+ Mono")


def _held_out(model, cell_type, sender_type):
    cells = np.setdiff1d(np.arange(model.adata.n_obs), model.train_indices)
    cells = cells[model.adata.obs["cell_type"].to_numpy()[cells] == cell_type]
    neighbors = model.adata.obsm["lucidvi_neighbor_index"][cells]
    types = model.adata.obs["cell_type"].to_numpy()[np.clip(neighbors, 0, None)]
    return cells[np.any((types == sender_type) & (neighbors >= 0), axis=1)]


def test_changes_match_masked_predictions(spatial_model, result, rounding):
    rows = _held_out(spatial_model, "CD14+ Mono", "B")
    adata = spatial_model.adata
    y = observed_expression(spatial_model, adata, rows)
    full = predicted_expression(spatial_model, adata, rows)
    masked = predicted_expression(spatial_model, adata, rows, mask_sender_types=["B"])
    got = result.table.query("sender_type == 'B'")
    assert (got["n_receivers"] == len(rows)).all()
    # each prediction may round by delta: a difference of two by 2 delta; the residual change
    # (full - masked)(2y - full - masked) by 2 delta (|2y - full - masked| + |full - masked|)
    delta = rounding.bound(full, masked)
    rounding.assert_within(got["prediction_change"], (full - masked).mean(0), 2 * delta.mean(0))
    change = (y - masked) ** 2 - (y - full) ** 2
    per_cell = 2 * delta * (np.abs(2 * y - full - masked) + np.abs(full - masked))
    rounding.assert_within(got["residual_change"], change.mean(0), per_cell.mean(0))
    sd = change.std(0, ddof=1)
    varies = sd > 0
    se = sd[varies] / np.sqrt(len(rows))
    t = change.mean(0)[varies] / se
    # t = mean / se moves by (mean's error) / se + |t| (sd's error) / sd
    t_error = per_cell.mean(0)[varies] / se + np.abs(t) * per_cell.max(0)[varies] / sd[varies]
    rounding.assert_within(got["statistic"].to_numpy()[varies], t, t_error)


def test_matrix_counts_significant_genes(result):
    matrix = result.interaction_matrix()
    assert list(matrix.columns) == ["CD14+ Mono"]
    counts = result.table.groupby("sender_type")["significant"].sum()
    assert (matrix["CD14+ Mono"] == counts.reindex(matrix.index)).all()
    tested = result.table["p_value"].notna()
    assert (result.table.loc[tested, "p_value_adj"] >= result.table.loc[tested, "p_value"]).all()


def test_type_without_niche_changes_nothing(spatial_model, niche_dropped):
    with niche_dropped(spatial_model, "CD14+ Mono"):
        off = NeighborAblation.compute(spatial_model, "CD14+ Mono", sender_types=["B"])
    assert (off.table["prediction_change"] == 0).all()
    assert off.table["p_value"].isna().all()  # nothing to test, kept out of the correction
    assert not off.table["significant"].any()
    assert (off.table["n_affected"] == 0).all() and off.table["de_p_value"].isna().all()
    assert not off.table["de_significant"].any()
    # no affected receiver: there is no ranking of genes to give (not the genes in var order)
    with pytest.raises(ValueError, match="finds no 'CD14\\+ Mono' cell that 'B' affects"):
        off.interaction_genes(sender_type="B", receiver_type="CD14+ Mono")
    with pytest.raises(ValueError, match="finds no"):
        off.plot_volcano(sender_type="B", receiver_type="CD14+ Mono")


def test_pair_methods_take_sender_and_receiver_by_keyword_only(result):
    """A positional (receiver, sender) call would silently answer about the other pair."""
    for method in (result.interaction_genes, result.plot_volcano):
        with pytest.raises(TypeError):
            method("CD14+ Mono", "B")


def test_interaction_genes_put_significant_genes_first_by_fold_change(result):
    ranked = result.interaction_genes(sender_type="B", receiver_type="CD14+ Mono")
    assert len(ranked) == result.table["gene"].nunique()
    significant = ranked["de_significant"].to_numpy()
    assert not (np.diff(significant.astype(int)) > 0).any()  # no significant gene after the rest
    for group in (ranked[significant], ranked[~significant]):
        fold = group["observed_log2_fold_change"].abs().to_numpy()
        assert (np.diff(fold) <= 0).all()
    adjusted = result.table["de_p_value_adj"].dropna()
    assert (adjusted >= result.table.loc[adjusted.index, "de_p_value"]).all()
    with pytest.raises(ValueError, match="No rows for 'NK' -> 'B'"):
        result.interaction_genes(sender_type="NK", receiver_type="B")


@pytest.mark.slow
def test_affected_receivers_and_genes_recover_the_planted_niche(planted_niche):
    adata = planted_niche.adata
    ablation = NeighborAblation.compute(
        planted_niche, "CD14+ Mono", sender_types=["B"], indices=np.arange(adata.n_obs)
    )
    ranked = ablation.interaction_genes(sender_type="B", receiver_type="CD14+ Mono")
    receivers = adata.obs["cell_type"] == "CD14+ Mono"
    near_share = float((adata.obs.loc[receivers, "substate"] == "near").mean())
    # the affected receivers are the near ones far beyond chance: without information, each
    # would be near with the base rate
    affected = _affected(planted_niche, adata, receivers.to_numpy())
    assert affected.sum() == ranked["n_affected"].iloc[0] > 0
    near = (adata.obs.loc[receivers, "substate"] == "near").to_numpy()
    assert binomtest(int(near[affected].sum()), int(affected.sum()), near_share).pvalue < 1e-6
    # the ranking finds the planted genes beyond any of 1,000 random rankings
    planted = ranked.index.isin(adata.uns["spatial_niches"]["genes"]["gene"])
    score = -np.arange(len(ranked))
    observed = average_precision_score(planted, score)
    rng = np.random.default_rng(0)
    shuffled = [average_precision_score(rng.permutation(planted), score) for _ in range(1000)]
    assert observed > max(shuffled)
    ax = ablation.plot_volcano(sender_type="B", receiver_type="CD14+ Mono", n_labels=5)
    _, significant = ax.collections
    assert len(significant.get_offsets()) == ranked["de_significant"].sum() > 0
    assert [text.get_text() for text in ax.texts] == list(ranked.index[:5])
    matplotlib.pyplot.close("all")


def _affected(model, adata, receivers: np.ndarray) -> np.ndarray:
    from lucidvi.interpretation._spatial._niche_contrast import affected_receivers

    rows = np.flatnonzero(receivers)
    neighbors = adata.obsm["lucidvi_neighbor_index"][rows]
    types = adata.obs["cell_type"].to_numpy()[np.clip(neighbors, 0, None)]
    exposed = np.any((types == "B") & (neighbors >= 0), axis=1)
    full = predicted_expression(model, adata, rows)
    masked = predicted_expression(model, adata, rows[exposed], mask_sender_types=["B"])
    return affected_receivers(full, masked, exposed, log_scale=True, pseudo=1e-3)


def test_plots_and_errors(spatial_model, result):
    assert result.plot_heatmap().get_title().startswith("Genes the senders")
    assert result.plot_graph().get_title().startswith("Interactions")
    assert (
        result.plot_volcano(sender_type="B", receiver_type="CD14+ Mono")
        .get_title()
        .startswith("B -> CD14+ Mono")
    )
    with pytest.raises(ValueError, match="unknown cell types"):
        NeighborAblation.compute(spatial_model, "T cell")
    with pytest.raises(ValueError, match="alpha"):
        NeighborAblation.compute(spatial_model, alpha=0)
    matplotlib.pyplot.close("all")


def test_sender_ratio_compares_the_two_types_mean_profiles(spatial_model, result):
    # log2 of the senders' mean expression (per 10,000) over the receivers', both over the
    # cells the result is computed on: the held-out cells, every type included
    adata = spatial_model.adata
    cells = np.setdiff1d(np.arange(adata.n_obs), spatial_model.train_indices)
    types = adata.obs["cell_type"].to_numpy()[cells]
    mean = {
        t: observed_expression(spatial_model, adata, cells[types == t]).mean(0)
        for t in ("B", "CD14+ Mono")
    }
    expected = np.log2((mean["B"] + 1e-3) / (mean["CD14+ Mono"] + 1e-3))
    got = result.table.query("sender_type == 'B'")["sender_log2_ratio"].to_numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-10)
    same_type = result.table.query("sender_type == 'CD14+ Mono'")["sender_log2_ratio"]
    assert (same_type == 0.0).all()


def test_a_table_saved_before_the_sender_ratio_loads(result, tmp_path):
    path = tmp_path / "ablation.csv"
    result.save(path)
    header, body = path.read_text(encoding="utf-8").split("\n", 1)
    older = pd.read_csv(io.StringIO(body)).drop(columns="sender_log2_ratio")
    path.write_text(header + "\n" + older.to_csv(index=False), encoding="utf-8")
    loaded = NeighborAblation.load(path)
    assert loaded.table["sender_log2_ratio"].isna().all()
    pd.testing.assert_frame_equal(
        loaded.table.drop(columns="sender_log2_ratio"),
        result.table.drop(columns="sender_log2_ratio"),
        check_dtype=False,
    )

"""AttentionPatterns: attention summarised by cell-type pair and by distance."""

import matplotlib
import numpy as np
import pandas as pd
import pytest

from lucidvi.interpretation import AttentionPatterns
from lucidvi.interpretation._spatial import _attention_patterns as attention_patterns
from lucidvi.interpretation._spatial._attention_patterns import NULL_SENDER

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def result(spatial_model):
    return AttentionPatterns.compute(spatial_model, distance_bins=5)


def test_pair_attention_sums_to_one_with_the_null_slot(spatial_model, result):
    pairs = result.table[result.table["level"] == "pair"]
    totals = pairs.groupby(["head", "receiver_type"])["attention"].sum()
    np.testing.assert_allclose(totals.to_numpy(), 1.0, rtol=1e-5)
    shares = pairs[pairs["sender_type"] != NULL_SENDER].groupby(["head", "receiver_type"])
    np.testing.assert_allclose(shares["neighbor_share"].sum().to_numpy(), 1.0, rtol=1e-6)
    held_out = spatial_model.adata.n_obs - len(spatial_model.train_indices)
    per_type = pairs.drop_duplicates("receiver_type")["n_receivers"].sum()
    assert per_type == held_out


def test_pair_level_agrees_with_the_attention_table(spatial_model, result):
    cells = np.setdiff1d(np.arange(spatial_model.adata.n_obs), spatial_model.train_indices)
    attention = spatial_model.get_attention(indices=cells)
    rows = attention.query("cell_type == 'CD14+ Mono' and head == 1 and neighbor_type == 'B'")
    n_receivers = attention.query("cell_type == 'CD14+ Mono'")["cell_index"].nunique()
    expected = rows["weight"].sum() / n_receivers
    got = result.table.query(
        "level == 'pair' and head == 1 and receiver_type == 'CD14+ Mono' and sender_type == 'B'"
    )["attention"]
    assert got.iloc[0] == pytest.approx(expected, rel=1e-5)
    scores = result.pair_scores("attention", head=1)
    assert scores.loc["B", "CD14+ Mono"] == pytest.approx(expected, rel=1e-5)
    assert NULL_SENDER not in scores.index


def test_enrichment_is_attention_per_share_of_neighbour_slots(spatial_model, result):
    cells = np.setdiff1d(np.arange(spatial_model.adata.n_obs), spatial_model.train_indices)
    attention = spatial_model.get_attention(indices=cells)
    rows = attention.query("cell_type == 'CD14+ Mono' and head == 1 and neighbor_index >= 0")
    is_b = (rows["neighbor_type"] == "B").to_numpy()
    by_cell = rows.assign(is_b=is_b, b_weight=rows["weight"] * is_b).groupby("cell_index")
    expected = by_cell["b_weight"].sum().mean() / by_cell["is_b"].mean().mean()
    scores = result.pair_scores("enrichment", head=1)
    assert scores.loc["B", "CD14+ Mono"] == pytest.approx(expected, rel=1e-5)
    assert np.isfinite(result.pair_scores("enrichment").to_numpy()).all()


def test_distance_level_counts_every_neighbour_once(spatial_model, result):
    distance = result.table[result.table["level"] == "distance"]
    cells = np.setdiff1d(np.arange(spatial_model.adata.n_obs), spatial_model.train_indices)
    attention = spatial_model.get_attention(indices=cells)
    assert distance["n_neighbors"].sum() == (attention["neighbor_index"] >= 0).sum()
    edges = np.unique(np.r_[distance["distance_low"], distance["distance_high"]])
    assert len(edges) == 6 and edges[0] == 0.0


def test_plots_and_errors(result):
    assert result.plot_summary().get_title().startswith("Attention to sender types")
    assert "CD14+ Mono" in result.plot_distance(receiver_type="CD14+ Mono").get_title()
    with pytest.raises(ValueError, match="statistic"):
        result.pair_scores("weights")
    with pytest.raises(ValueError, match="No receiver type"):
        result.plot_distance(receiver_type="T cell")
    matplotlib.pyplot.close("all")


def test_receivers_read_in_several_passes_give_the_same_table(spatial_model, result, monkeypatch):
    # The long attention table is built a few thousand receivers at a time and summed; passes
    # of 7 receivers (hundreds of passes, most types split across them) change nothing beyond
    # float32 rounding: the forward pass runs on minibatches of another composition, which moves
    # a weight by a few units in the last place (relative 1e-7), far below rtol.
    monkeypatch.setattr(attention_patterns, "_RECEIVERS_PER_PASS", 7)
    in_passes = AttentionPatterns.compute(spatial_model, distance_bins=5)
    pd.testing.assert_frame_equal(in_passes.table, result.table, check_exact=False, rtol=1e-5)

"""NeighborAblation: masking a sender type, per gene, with tests."""

import matplotlib
import numpy as np
import pytest

from lucidvi.interpretation import NeighborAblation
from lucidvi.interpretation._interaction_inputs import observed_expression, predicted_expression

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


def test_type_without_niche_changes_nothing(spatial_model):
    module = spatial_model.module
    scale = module.niche_scale.clone()
    code = spatial_model.labels.index("CD14+ Mono")
    try:
        module.niche_scale[code] = 0.0
        off = NeighborAblation.compute(spatial_model, "CD14+ Mono", sender_types=["B"])
    finally:
        module.niche_scale.copy_(scale)
    assert (off.table["prediction_change"] == 0).all()
    assert off.table["p_value"].isna().all()  # nothing to test, kept out of the correction
    assert not off.table["significant"].any()


def test_plots_and_errors(spatial_model, result):
    assert result.plot_heatmap().get_title().startswith("Genes the senders")
    assert result.plot_graph().get_title().startswith("Interactions")
    with pytest.raises(ValueError, match="unknown cell types"):
        NeighborAblation.compute(spatial_model, "T cell")
    with pytest.raises(ValueError, match="alpha"):
        NeighborAblation.compute(spatial_model, alpha=0)
    matplotlib.pyplot.close("all")

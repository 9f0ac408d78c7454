"""LengthScales: each head's reach, read off its distance decay."""

import math

import matplotlib
import numpy as np
import pytest
import torch

from lucidvi.interpretation import LengthScales

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def result(spatial_model):
    return LengthScales.compute(spatial_model, n_bootstrap=50, seed=0)


def test_a_lone_sender_at_its_reach_gets_the_threshold_weight(spatial_model):
    # d* = unit * (s - logit(tau)) / decay: a single neighbour at d* gets attention tau
    module, adata, tau = spatial_model.module, spatial_model.adata, 0.1
    device = spatial_model.device
    sender = np.flatnonzero(adata.obs["cell_type"].to_numpy() == "B")[0]
    x = torch.as_tensor(adata.layers["counts"][[sender]].toarray(), dtype=torch.float32)
    receivers = torch.arange(len(spatial_model.labels), device=device)
    slot = torch.zeros(1, 1, dtype=torch.long, device=device)
    label = torch.as_tensor([spatial_model.labels.index("B")], device=device)
    checked = 0
    with torch.inference_mode():
        embedding = module.sender_embedding(x.to(device), label)
        score = module.attention.scores_over_null(receivers, embedding)[:, :, 0]
        margin = score - math.log(tau / (1 - tau))
        for receiver, head in zip(*np.nonzero(margin.cpu().numpy() > 0), strict=True):
            unit, decay = module.attention.distance_unit, module.attention.decay[head]
            reach = unit * margin[receiver, head] / decay
            _, weights, _ = module.attention(
                receivers[[receiver]], embedding, slot,
                reach.reshape(1, 1),
            )  # fmt: skip
            assert weights[0, head, 0].item() == pytest.approx(tau, abs=1e-4)
            checked += 1
    assert checked > 0


def test_table_quantiles_intervals_and_importance(spatial_model, result):
    table = result.to_dataframe()
    n_types = len(spatial_model.labels)
    assert len(table) == spatial_model.module.n_heads * n_types * table["sender_type"].nunique()
    assert (table["q10"] <= table["q25"] + 1e-9).all()
    assert (table["q25"] <= table["length_scale"] + 1e-9).all()
    assert (table["length_scale"] <= table["q75"] + 1e-9).all()
    assert (table["ci_low"] <= table["length_scale"] + 1e-9).all()
    assert (table["length_scale"] <= table["ci_high"] + 1e-9).all()
    np.testing.assert_allclose(table["importance"], table["weight_at_zero"] * table["head_effect"])
    best = result.for_pair(sender_type="B", receiver_type="CD14+ Mono")
    pair = table.query("sender_type == 'B' and receiver_type == 'CD14+ Mono'")
    assert best["importance"] == pair["importance"].max()
    assert math.isclose(result.threshold, 0.5)


def test_plot_and_errors(spatial_model, result):
    assert result.plot_distribution().get_title().startswith("Length scales")
    with pytest.raises(ValueError, match="No pair"):
        result.for_pair(sender_type="B", receiver_type="T cell")
    with pytest.raises(ValueError, match="threshold"):
        LengthScales.compute(spatial_model, threshold=1.0)
    matplotlib.pyplot.close("all")


def test_pairs_whose_niche_was_dropped_have_no_reach(spatial_model, niche_dropped):
    """A dropped niche: reach columns NaN with a status, and for_pair refuses to give one."""
    with niche_dropped(spatial_model, "CD14+ Mono"):
        dropped = LengthScales.compute(spatial_model, n_bootstrap=10, seed=0)
    table = dropped.table
    off = table["receiver_type"] == "CD14+ Mono"
    assert (table.loc[off, "status"] == "niche dropped").all()
    assert not table.loc[off, "niche_kept"].any()
    assert table.loc[off, ["length_scale", "ci_low", "ci_high", "q10", "q90"]].isna().all().all()
    assert (table.loc[~off, "status"] == "ok").all()
    with pytest.raises(ValueError, match="kept no niche"):
        dropped.for_pair(sender_type="B", receiver_type="CD14+ Mono")
    with pytest.raises(TypeError):
        dropped.for_pair("B", "CD14+ Mono")

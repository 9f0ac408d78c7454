"""Saving, loading and W&B logging of the InteractionVI results."""

import dataclasses
import glob
import os

import matplotlib
import pandas as pd
import pytest

from lucidvi.interpretation import (
    AttentionPatterns,
    ExplainedVariance,
    InteractionReach,
    LengthScales,
    NeighborAblation,
)

matplotlib.use("Agg")

FIGURES = {
    "ExplainedVariance": 2,
    "AttentionPatterns": 2,
    "NeighborAblation": 2,
    "LengthScales": 1,
    "InteractionReach": 1,
}


@pytest.fixture(scope="module")
def results(spatial_model):
    return {
        "ExplainedVariance": ExplainedVariance.compute(spatial_model, n_permutations=19, seed=0),
        "AttentionPatterns": AttentionPatterns.compute(spatial_model),
        "NeighborAblation": NeighborAblation.compute(spatial_model, "CD14+ Mono"),
        "LengthScales": LengthScales.compute(spatial_model, n_bootstrap=10, seed=0),
        "InteractionReach": InteractionReach.compute(
            spatial_model, "CD14+ Mono", n_bootstrap=10, seed=0
        ),
    }


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
@pytest.mark.parametrize("name", list(FIGURES))
def test_save_and_load_lose_nothing(results, name, suffix, tmp_path):
    result = results[name]
    loaded = type(result).load(result.save(tmp_path / f"result{suffix}"))
    pd.testing.assert_frame_equal(loaded.to_dataframe(), result.to_dataframe(), check_dtype=False)
    assert loaded._parameters() == result._parameters()
    titles = [ax.get_title() for _, ax in loaded._figures()]
    assert titles == [ax.get_title() for _, ax in result._figures()]
    matplotlib.pyplot.close("all")


@pytest.mark.parametrize("name", list(FIGURES))
def test_log_to_wandb_offline(results, name, tmp_path, monkeypatch):
    import wandb

    monkeypatch.setenv("WANDB_SILENT", "true")
    run = wandb.init(mode="offline", dir=tmp_path, project="lucidvi-test")
    try:
        results[name].log_to_wandb(run)
        run_dir = run.dir
    finally:
        run.finish()
    media = os.path.join(run_dir, "media")
    assert len(glob.glob(os.path.join(media, "table", name, "*.table.json"))) == 1
    assert len(glob.glob(os.path.join(media, "images", name, "*.png"))) == FIGURES[name]
    assert matplotlib.pyplot.get_fignums() == []


def test_csv_keeps_names_that_look_like_numbers(results, tmp_path):
    result = results["NeighborAblation"]
    table = result.table.assign(receiver_type="01", gene="1e3")
    renamed = dataclasses.replace(result, table=table)
    loaded = type(result).load(renamed.save(tmp_path / "numbers.csv"))
    assert set(loaded.table["receiver_type"]) == {"01"}
    assert set(loaded.table["gene"]) == {"1e3"}

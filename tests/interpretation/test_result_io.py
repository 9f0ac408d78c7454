"""Saving, loading and W&B logging, shared by every interpretation result."""

import glob
import os

import matplotlib
import numpy as np
import pandas as pd
import pytest

from lucidvi.interpretation import (
    DimImportance,
    GeneLoadings,
    GeneRanks,
    GenesPerDim,
    LatentReport,
)
from lucidvi.interpretation._inputs import log_normalize_counts

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def results(planted):
    loadings = GeneLoadings.compute(adata=planted, z_key="true_factors", layer="counts")
    expression = log_normalize_counts(planted.layers["counts"]).toarray()
    mean = np.tile(expression.mean(0), (planted.n_obs, 1))
    return {
        "GeneLoadings": loadings,
        "LatentReport": LatentReport.compute(planted, "true_factors"),
        "DimImportance": DimImportance.compute(loadings, planted.obsm["true_factors"], mode="diag"),
        "GenesPerDim": GenesPerDim.compute(planted, loadings, dims=[2, 0], n_top=4, layer="counts"),
        "GeneRanks": GeneRanks.compute(planted, 0.5 * (expression + mean), mean, layer="counts"),
    }


NAMES = ["GeneLoadings", "LatentReport", "DimImportance", "GenesPerDim", "GeneRanks"]


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
@pytest.mark.parametrize("name", NAMES)
def test_save_and_load_lose_nothing(results, name, suffix, tmp_path):
    result = results[name]
    path = result.save(tmp_path / f"result{suffix}")
    loaded = type(result).load(path)
    pd.testing.assert_frame_equal(loaded.to_dataframe(), result.to_dataframe(), check_dtype=False)
    assert loaded._parameters() == result._parameters()
    for (_, original), (_, reloaded) in zip(result._figures(), loaded._figures(), strict=True):
        assert original.get_title() == reloaded.get_title()
        matplotlib.pyplot.close("all")


def test_load_checks_the_type_and_the_suffix(results, tmp_path):
    path = results["LatentReport"].save(tmp_path / "report.csv")
    with pytest.raises(ValueError, match="not a DimImportance"):
        DimImportance.load(path)
    pd.DataFrame({"a": [1]}).to_csv(tmp_path / "plain.csv", index=False)
    with pytest.raises(ValueError, match="no lucidvi result"):
        LatentReport.load(tmp_path / "plain.csv")
    with pytest.raises(ValueError, match=".parquet or .csv"):
        results["LatentReport"].save(tmp_path / "report.xlsx")


@pytest.mark.parametrize("name", NAMES)
def test_log_to_wandb_offline_records_table_and_plot(results, name, tmp_path, monkeypatch):
    import wandb

    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    run = wandb.init(mode="offline", dir=tmp_path, project="lucidvi-test")
    try:
        results[name].log_to_wandb()  # the active run
        run_dir = run.dir
    finally:
        run.finish()
    media = os.path.join(run_dir, "media")
    tables = glob.glob(os.path.join(media, "table", name, "*.table.json"))
    images = glob.glob(os.path.join(media, "images", name, "*.png"))
    assert len(tables) == 1 and len(images) == 1
    assert matplotlib.pyplot.get_fignums() == []  # logged figures are closed


def test_log_to_wandb_without_a_run_raises(results):
    import wandb

    assert wandb.run is None
    with pytest.raises(RuntimeError, match="wandb.init"):
        results["LatentReport"].log_to_wandb()

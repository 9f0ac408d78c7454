"""Lightning DDP on the CPU with two processes (gloo), for every neural model."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

SCRIPT = Path(__file__).with_name("ddp_training_script.py")
MODELS = ("linear", "mixture", "interaction")
REFERENCE_SEEDS = ("0", "1", "2")


def _run(out: Path, devices: int, *seeds: str) -> dict:
    # a clean environment for Lightning's launcher: no rank variables from an outer run
    env = {k: v for k, v in os.environ.items() if k not in ("LOCAL_RANK", "WORLD_SIZE", "RANK")}
    process = subprocess.run(
        [sys.executable, str(SCRIPT), str(out), str(devices), *seeds],
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
    )
    assert process.returncode == 0, process.stderr[-3000:]
    return json.loads((out / f"results_devices{devices}.json").read_text())


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One two-process DDP run (seed 0) and one-process runs with three seeds, per model."""
    ddp, single = tmp_path_factory.mktemp("ddp"), tmp_path_factory.mktemp("single")
    return ddp, _run(ddp, 2, "0"), _run(single, 1, *REFERENCE_SEEDS)


@pytest.mark.parametrize("name", MODELS)
def test_processes_train_on_disjoint_parts_covering_the_training_cells(runs, name):
    out, ddp, _ = runs
    result = ddp[f"{name}_seed0"]
    train, epochs = np.array(result["train_indices"]), result["epochs"]
    per_epoch = len(train) // 2
    ranks = [np.load(out / f"{name}_seed0_rank{rank}.npy") for rank in (0, 1)]
    for seen in ranks:  # the same number of cells per epoch, so the same number of steps
        assert len(seen) == epochs * per_epoch
    for epoch in range(epochs):
        part = slice(epoch * per_epoch, (epoch + 1) * per_epoch)
        first, second = ranks[0][part], ranks[1][part]
        assert len(np.unique(first)) == per_epoch and not np.intersect1d(first, second).size
        covered = np.union1d(first, second)
        # together the processes visit every training cell, but for fewer than 2 a epoch
        assert np.isin(covered, train).all() and len(train) - len(covered) < 2


@pytest.mark.parametrize("name", MODELS)
def test_two_processes_fit_as_well_as_one(runs, name):
    """The held-out ELBO lies within the seed-to-seed range of one-process fits, widened by it.

    Two processes taking half a minibatch each see the same number of cells per step as one
    process, in a different random order: the DDP fit is one more draw of the order, so its
    ELBO differs from one-process fits as those differ from each other.
    """
    _, ddp, single = runs
    reference = [single[f"{name}_seed{seed}"]["elbo"] for seed in REFERENCE_SEEDS]
    spread = max(reference) - min(reference)
    assert min(reference) - spread <= ddp[f"{name}_seed0"]["elbo"] <= max(reference) + spread


@pytest.mark.parametrize("name", MODELS)
def test_model_trained_with_ddp_saves_and_loads(runs, name):
    _, ddp, _ = runs
    assert ddp[f"{name}_seed0"]["reloaded"]


def test_niche_calibration_after_ddp_is_the_same_in_both_processes(runs):
    out, _, _ = runs
    tables = [pd.read_csv(out / f"calibration_rank{rank}.csv", index_col=0) for rank in (0, 1)]
    assert len(tables[0]) > 0
    pd.testing.assert_frame_equal(tables[0], tables[1])

"""InteractionVI on planted spatial niches: held-out likelihood, attention, throughput.

On ``simulate_spatial_niches`` built from the bundled CBMC cells (three planted pairs,
default 6,000 cells, 30 neighbours, 8 heads), one process trains, with the same held-out
receivers (20%): InteractionVI; the cell-type baseline (the same model without heads); and
the oracle (no heads, but labels that know each receiver's planted sub-state). It prints the
held-out negative log-likelihood per cell of the three for the planted receiver types and for
the others, the share of the baseline-to-oracle gap InteractionVI captures, and the AUPRC of
ranking (sender type, receiver type) pairs by attention (plain and value-weighted; planted
pairs positive). Then it times training at 6,000 and 60,000 cells (cells/s, peak resident
memory), and, with ``--amici-python`` (the Python of an environment with PyPI ``amici-st``,
which pins scvi-tools 1.2.2), AMICI on the same files through its public API
(``_amici_runner.py``), printing the throughput ratio. Run with ``--help`` for the options.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import scvi
from sklearn.metrics import average_precision_score

import lucidvi
from lucidvi._registration import unregistered_copy
from lucidvi.model import InteractionVI

PAIRS = [("B", "CD14+ Mono", 15.0), ("NK", "CD4 T", 12.0), ("CD16+ Mono", "CD8 T", 20.0)]


def _registered(adata, labels_key: str, n_neighbors: int):
    data = unregistered_copy(adata)
    InteractionVI.setup_anndata(
        data, labels_key=labels_key, layer="counts", n_neighbors=n_neighbors
    )
    return data


def _fit(adata, labels_key: str, n_heads: int, args) -> tuple[InteractionVI, float]:
    scvi.settings.seed = args.seed
    model = InteractionVI(_registered(adata, labels_key, args.n_neighbors), n_heads=n_heads)
    start = time.perf_counter()
    model.train(
        max_epochs=args.epochs, train_size=0.8, batch_size=args.batch_size,
        enable_progress_bar=False, check_val_every_n_epoch=1,
    )  # fmt: skip
    return model, time.perf_counter() - start


def _pair_scores(attention: pd.DataFrame, column: str) -> pd.Series:
    """Max over heads of the mean attention per neighbour of a type, relative to uniform."""
    real = attention[attention["neighbor_index"] >= 0]
    slots = real[real["head"] == 0].groupby("cell").size().rename("k")
    real = real.join(slots, on="cell")
    real = real.assign(score=real[column] * real["k"])  # 1 = as much as a uniform share
    per_head = real.groupby(["neighbor_type", "cell_type", "head"])["score"].mean()
    scores = per_head.groupby(["neighbor_type", "cell_type"]).max()
    return scores[scores.index.get_level_values(0) != scores.index.get_level_values(1)]


def _auprc(scores: pd.Series) -> float:
    planted = {(sender, receiver) for sender, receiver, _ in PAIRS}
    truth = np.array([pair in planted for pair in scores.index])
    return float(average_precision_score(truth, scores.to_numpy()))


def _planted(args) -> None:
    adata = lucidvi.data.simulate_spatial_niches(
        lucidvi.data.cbmc(), "cell_type", PAIRS, n_cells=args.n_cells, seed=args.seed
    )
    substate = adata.obs["cell_type"].astype(str) + "/" + adata.obs["substate"].astype(str)
    adata.obs["oracle_label"] = substate.astype("category")
    model, seconds = _fit(adata, "cell_type", args.n_heads, args)
    baseline, _ = _fit(adata, "cell_type", 0, args)
    oracle, _ = _fit(adata, "oracle_label", 0, args)
    held_out = np.sort(model.validation_indices)
    assert np.array_equal(held_out, np.sort(baseline.validation_indices))
    nll = {
        name: -m.get_log_likelihood(indices=held_out)
        for name, m in (("InteractionVI", model), ("cell-type baseline", baseline),
                        ("oracle", oracle))
    }  # fmt: skip
    types = adata.obs["cell_type"].astype(str).to_numpy()[held_out]
    receivers = np.isin(types, [r for _, r, _ in PAIRS])
    epochs = len(model.history["elbo_train"])
    print(f"planted data: {adata.n_obs} cells, {len(held_out)} held-out receivers; "
          f"{epochs} epochs (early stopping, at most {args.epochs}), {seconds:.1f} s")  # fmt: skip
    print(f"{'held-out NLL per cell':24} {'planted receivers':>18} {'other cells':>12}")
    for name, values in nll.items():
        print(f"{name:24} {values[receivers].mean():18.3f} {values[~receivers].mean():12.3f}")
    base, best = nll["cell-type baseline"], nll["oracle"]
    for receiver in [None, *(r for _, r, _ in PAIRS)]:
        rows = receivers if receiver is None else types == receiver
        gap = base[rows].mean() - best[rows].mean()
        gained = base[rows].mean() - nll["InteractionVI"][rows].mean()
        label = "all planted receivers" if receiver is None else receiver
        print(f"  gap captured, {label}: {gained / gap:.2f} (gap {gap:.2f} nats per cell)")
    others = nll["InteractionVI"][~receivers].mean() - base[~receivers].mean()
    print(f"  other cells: InteractionVI minus baseline {others:+.3f} nats per cell")
    attention = model.get_attention(indices=held_out)
    for column in ("weight", "weighted_effect"):
        scores = _pair_scores(attention, column)
        print(f"  AUPRC of (sender, receiver) pairs by {column}: {_auprc(scores):.2f} "
              f"({len(scores)} pairs, chance {len(PAIRS) / len(scores):.2f})")  # fmt: skip


def _amici(args, adata) -> dict | None:
    """Throughput of AMICI on ``adata`` in its own environment (``None`` without one)."""
    if args.amici_python is None:
        return None
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "cells.h5ad"
        adata.write_h5ad(path)
        runner = Path(__file__).with_name("_amici_runner.py")
        command = [args.amici_python, str(runner), str(path), str(args.n_neighbors),
                   str(args.n_heads), str(args.scale_epochs), str(args.batch_size)]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _throughput(args) -> None:
    print(f"{'cells':>7} {'model':>13} {'epochs':>6} {'seconds':>8} {'cells/s':>8} "
          f"{'peak RSS GiB':>12} {'speed-up':>8}")  # fmt: skip
    for n_cells in args.scale:
        adata = lucidvi.data.simulate_spatial_niches(
            lucidvi.data.cbmc(), "cell_type", PAIRS, n_cells=n_cells, seed=args.seed
        )
        data = _registered(adata, "cell_type", args.n_neighbors)
        scvi.settings.seed = args.seed
        model = InteractionVI(data, n_heads=args.n_heads)
        start = time.perf_counter()
        model.train(
            max_epochs=args.scale_epochs, train_size=1.0, batch_size=args.batch_size,
            enable_progress_bar=False,
        )  # fmt: skip
        seconds = time.perf_counter() - start
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        speed = args.scale_epochs * n_cells / seconds
        print(f"{n_cells:>7} {'InteractionVI':>13} {args.scale_epochs:>6} {seconds:8.1f} "
              f"{speed:8.0f} {peak:12.2f}")  # fmt: skip
        amici = _amici(args, adata)
        if amici is not None:
            print(f"{n_cells:>7} {'AMICI':>13} {args.scale_epochs:>6} {amici['seconds']:8.1f} "
                  f"{amici['cells_per_s']:8.0f} {amici['peak_gib']:12.2f} "
                  f"{speed / amici['cells_per_s']:7.1f}x")  # fmt: skip
    if args.amici_python is None:
        print("AMICI not run (pass --amici-python with an environment that has amici-st).")


def main() -> None:
    """Run the planted-truth comparison and the throughput measurements."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-cells", type=int, default=6000)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--n-heads", type=int, default=8)
    parser.add_argument("--n-neighbors", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--scale", type=int, nargs="*", default=[6000, 60000])
    parser.add_argument("--scale-epochs", type=int, default=1)
    parser.add_argument("--amici-python", help="Python of an environment with amici-st")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    _planted(args)
    _throughput(args)


if __name__ == "__main__":
    main()

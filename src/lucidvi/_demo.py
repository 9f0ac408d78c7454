"""The ``lucidvi demo`` job: LinearVI and MixtureVI on bundled PBMC data, figures and a report."""

from __future__ import annotations

import time
from pathlib import Path

import matplotlib.pyplot as plt
import scanpy as sc
import torch
from sklearn.metrics import adjusted_rand_score

from lucidvi._demo_clustering import cluster_cells
from lucidvi._demo_panels import design_panels
from lucidvi._demo_spatial import spatial_interactions
from lucidvi._report import markdown_table, save_figure
from lucidvi.data import pbmc68k
from lucidvi.interpretation import (
    DimImportance,
    GeneLoadings,
    GeneProgramEnrichment,
    GenesPerDim,
)
from lucidvi.model import LinearVI
from lucidvi.pl import loadings_heatmap
from lucidvi.tl import top_loading_genes
from lucidvi.train import isolated_seed


def _step(message: str) -> None:
    print(f"[lucidvi demo] {message}", flush=True)


def _interpret_factors(model: LinearVI, adata, out: Path) -> str:
    """Order the factors, list their genes, test them for Hallmark programs; return markdown."""
    loadings = GeneLoadings.compute(model)
    importance = DimImportance.compute(loadings, adata.obsm["X_linearvi"])
    importance.save(out / "dim_importance.csv")
    elbow_png = save_figure(importance.plot_elbow().figure, out / "dim_importance.png")
    genes = GenesPerDim.compute(
        adata, loadings, dims=list(importance.selected), n_top=30, layer="counts"
    )
    genes.save(out / "genes_per_dim.csv")
    enrichment = GeneProgramEnrichment.compute(
        genes.gene_lists(), gene_sets="hallmark", background=adata.var_names
    )
    enrichment.save(out / "hallmark_enrichment.csv")
    table = enrichment.to_dataframe()
    best = table.sort_values("p_value_adj").iloc[0]
    dim = str(best["list"])[:-1]
    diverging = enrichment.plot_diverging(group_a=f"{dim}+", group_b=f"{dim}-", n_top=8)
    diverging_png = save_figure(diverging.figure, out / "hallmark_diverging.png")
    hits = table[table["p_value_adj"] < 0.1][["list", "term", "overlap", "p_value_adj"]]
    hits = hits.assign(p_value_adj=hits["p_value_adj"].map("{:.2g}".format))
    hits_text = markdown_table(hits) if len(hits) else "No Hallmark set reaches adjusted p < 0.1."
    shares = ", ".join(f"{d} {importance.ratio[d]:.0%}" for d in importance.selected)
    return f"""## Which factors matter, and what programs do they carry?

Standardised loadings (gene SDs per latent SD) order the factors by the share of expression
variance each accounts for: {importance.n_dims_at_cutoff} factors reach
{importance.cumulative_cutoff:.0%} ({shares}). Table: `dim_importance.csv`.

![dimension importance]({elbow_png})

The 30 top positive (`+`) and negative (`-`) genes of each of these factors
(`genes_per_dim.csv`), tested for MSigDB Hallmark sets against the {adata.n_vars} measured genes
(hypergeometric test, Benjamini-Hochberg within each list; `hallmark_enrichment.csv`):

{hits_text}

![Hallmark enrichment of {dim}]({diverging_png})
"""


def run_demo(out: str | Path = "lucidvi_demo", quick: bool = False, seed: int = 0) -> Path:
    """Run LinearVI, MixtureVI and panel design on PBMC, InteractionVI on planted niches.

    Parameters
    ----------
    out
        Output folder (created if needed).
    quick
        Train for fewer epochs (a smoke run of about a minute).
    seed
        Random seed (``scvi.settings.seed`` during the run; restored afterwards).

    Returns
    -------
    Path of the written ``report.md``.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with isolated_seed(seed):
        return _run_demo(out, quick, seed)


def _run_demo(out: Path, quick: bool, seed: int) -> Path:
    max_epochs, n_latent = (60, 10) if quick else (400, 10)

    _step("loading the bundled PBMC 68k subset (700 cells x 765 genes)")
    adata = pbmc68k()
    LinearVI.setup_anndata(adata, layer="counts")
    model = LinearVI(adata, n_latent=n_latent)

    _step(f"training LinearVI ({n_latent} factors, {max_epochs} epochs)")
    start = time.perf_counter()
    model.train(
        max_epochs=max_epochs, train_size=1.0, plan_kwargs={"lr": 3e-3}, enable_progress_bar=True
    )
    seconds = time.perf_counter() - start
    model.save(out / "model", overwrite=True)

    _step("latent UMAP")
    adata.obsm["X_linearvi"] = model.get_latent_representation()
    sc.pp.neighbors(adata, use_rep="X_linearvi", random_state=seed)
    sc.tl.umap(adata, random_state=seed)
    sc.tl.leiden(
        adata,
        key_added="leiden_linearvi",
        random_state=seed,
        flavor="igraph",
        n_iterations=2,
        directed=False,
    )
    fig, axes = plt.subplots(1, 2, figsize=(15, 5), gridspec_kw={"wspace": 0.75})
    sc.pl.umap(adata, color="cell_type", ax=axes[0], show=False, title="cell type (bulk_labels)")
    sc.pl.umap(
        adata,
        color="leiden_linearvi",
        ax=axes[1],
        show=False,
        title="Leiden on the LinearVI latent",
    )
    umap_png = save_figure(fig, out / "latent_umap.png")

    _step("loadings: top genes per factor and heatmap")
    loadings = model.get_loadings()
    loadings.to_csv(out / "loadings.csv")
    top = top_loading_genes(loadings, n_top=10)
    top.to_csv(out / "top_genes_per_factor.csv", index=False)
    heatmap = loadings_heatmap(loadings, n_top=3).figure
    heatmap_png = save_figure(heatmap, out / "loadings_heatmap.png")

    _step("factor interpretation: importance, genes per factor, Hallmark enrichment")
    interpretation = _interpret_factors(model, adata, out)

    _step("model-based clustering: MixtureVI (EM) against Leiden")
    clustering = cluster_cells(adata, out, seed)

    _step("gene panels: information about the transcriptome, and a selected panel")
    panels = design_panels(adata, out, quick, seed)

    _step("spatial interactions: InteractionVI on planted niches of real CBMC cells")
    spatial = spatial_interactions(out, quick, seed)

    history = model.history["elbo_train"]
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.plot(history.index, history.to_numpy().ravel())
    ax.set(xlabel="epoch", ylabel="ELBO loss per cell (train)", title="Training curve")
    curve_png = save_figure(fig, out / "training_curve.png")

    summary = top.groupby(["factor", "direction"])["gene"].apply(lambda g: ", ".join(g[:5]))
    summary = summary.unstack("direction").reindex(loadings.columns)
    summary = summary.rename_axis("factor").reset_index()
    summary = summary.rename(columns={"+": "top 5 positive genes", "-": "top 5 negative genes"})
    ari = adjusted_rand_score(adata.obs["cell_type"], adata.obs["leiden_linearvi"])
    report = out / "report.md"
    report.write_text(
        f"""# lucidvi demo: LinearVI on PBMC 68k (bundled)

Data: {adata.n_obs} cells x {adata.n_vars} genes, {adata.obs["cell_type"].nunique()} cell types
(`bulk_labels`), integer UMI counts recovered from scanpy's `pbmc68k_reduced`.

Model: LinearVI, {n_latent} factors, negative binomial likelihood, {max_epochs} epochs
({seconds:.1f} s on {torch.get_num_threads()} CPU threads). Final training ELBO loss per cell:
{float(history.to_numpy().ravel()[-1]):.1f}. Leiden clusters on the latent vs cell types:
ARI {ari:.2f}.

## Latent space

![latent UMAP]({umap_png})

## Which genes move along each factor?

Each factor's loading on a gene is the change of that gene's log expression (up to the
softmax normalisation) per unit of the factor. Full table: `top_genes_per_factor.csv`; all
loadings: `loadings.csv`; the trained model: `model/`.

{markdown_table(summary)}

![loadings heatmap]({heatmap_png})

{interpretation}
{clustering}
{panels}
{spatial}
## Training

![training curve]({curve_png})
"""
    )
    _step(f"wrote {report} and figures in {out}/")
    return report

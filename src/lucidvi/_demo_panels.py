"""The panel-design section of ``lucidvi demo``: information of gene panels, and a chosen one."""

from __future__ import annotations

import time
from pathlib import Path

import matplotlib.pyplot as plt
from anndata import AnnData

from lucidvi._registration import unregistered_copy
from lucidvi._report import markdown_table, save_figure
from lucidvi.interpretation import PanelInformation
from lucidvi.model import LinearVI

# the rankings the nested panels are cut from, as the report's columns
_ORDERS = ["mean_expression", "hvg", "greedy_information"]


def design_panels(adata: AnnData, out: Path, quick: bool, seed: int) -> str:
    """Train a gene-masked LinearVI, compare nested panels and return the report section.

    Parameters
    ----------
    adata
        The demo's cells with ``obs["cell_type"]`` and counts in ``layers["counts"]`` (a copy
        is registered).
    out
        Output folder.
    quick
        Fewer epochs and panel sizes.
    seed
        Random seed (the model's through scvi-tools' settings; the resampling's here).

    Returns
    -------
    The report section.
    """
    data = unregistered_copy(adata)
    LinearVI.setup_anndata(data, layer="counts")
    model = LinearVI(data, n_latent=10, gene_masking=(0.0, 0.95))
    max_epochs, sizes = (40, [25, 100]) if quick else (200, [25, 50, 100, 200])
    start = time.perf_counter()
    model.train(max_epochs=max_epochs, enable_progress_bar=False)
    seconds = time.perf_counter() - start

    result = PanelInformation.compute(
        model, sizes=sizes, order=_ORDERS, labels_key="cell_type", seed=seed
    )
    result.save(out / "panel_information.csv")
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    result.plot_information(ax=axes[0])
    result.plot_information(ax=axes[1], metric="knn_accuracy")
    fig.tight_layout()
    figure_png = save_figure(fig, out / "panel_information.png")

    table = result.to_dataframe()
    summary = table.pivot(index="n_genes", columns="group", values="mutual_information")
    accuracy = table.pivot(index="n_genes", columns="group", values="knn_accuracy")
    summary = summary[_ORDERS].round(2).astype(str) + " / " + accuracy[_ORDERS].round(3).astype(str)
    summary = summary.reset_index().rename(columns={"n_genes": "genes"})
    smallest = f"greedy_information {sizes[0]}"
    return f"""## Gene panels: how much of the transcriptome does a panel carry?

A LinearVI trained with random gene masking ({max_epochs} epochs, {seconds:.1f} s) embeds the
cells from any gene panel. For nested panels of the most expressed genes, the highly variable
genes (scanpy `seurat_v3`) and the panels chosen by `lucidvi.tl.select_panel` (greedy
information about the latent factors): the mutual information of the panel embedding with the
full transcriptome's (Gaussian estimate, nats) / the 5-fold 15-NN cell-type accuracy of the panel
embedding (all genes: {result.full_knn_accuracy:.3f}). Table: `panel_information.csv`.

{markdown_table(summary)}

![panel information]({figure_png})

The selected {sizes[0]}-gene panel: {", ".join(result.panels[smallest])}.
"""

import pandas as pd
import pytest

from lucidvi.cli import main
from lucidvi.interpretation import (
    ClusteringEvaluation,
    DimImportance,
    GeneProgramEnrichment,
    GenesPerDim,
    PanelInformation,
)


@pytest.mark.slow
def test_demo_quick_writes_report_and_figures(tmp_path):
    assert main(["demo", "--quick", "--out", str(tmp_path)]) == 0
    for name in (
        "report.md",
        "latent_umap.png",
        "loadings_heatmap.png",
        "training_curve.png",
        "top_genes_per_factor.csv",
        "loadings.csv",
        "dim_importance.png",
        "hallmark_diverging.png",
        "mixture_confusion.png",
        "mixture_umap.png",
        "mixture_expression.png",
        "mixture_markers.csv",
        "panel_information.png",
        "spatial_niches.png",
        "spatial_interpretation.png",
        "interactions.csv",
        "interaction_genes.csv",
        "niche_calibration.csv",
    ):
        assert (tmp_path / name).stat().st_size > 0, name
    top = pd.read_csv(tmp_path / "top_genes_per_factor.csv")
    assert set(top["factor"]) == {f"Z_{i}" for i in range(10)}
    assert "![latent UMAP](latent_umap.png)" in (tmp_path / "report.md").read_text()
    assert (tmp_path / "model" / "model.pt").exists()
    importance = DimImportance.load(tmp_path / "dim_importance.csv")
    genes = GenesPerDim.load(tmp_path / "genes_per_dim.csv")
    assert set(genes.table["dim"]) <= set(importance.selected)
    enrichment = GeneProgramEnrichment.load(tmp_path / "hallmark_enrichment.csv")
    assert set(enrichment.table["list"]) <= set(genes.gene_lists())
    assert "Which factors matter" in (tmp_path / "report.md").read_text()
    clusters = ClusteringEvaluation.load(tmp_path / "mixture_clusters.csv")
    assert clusters.table["cluster"].nunique() <= 10 and clusters.has_embedding
    assert 0.0 <= clusters.scores["ari"] <= 1.0
    assert "Model-based clustering with MixtureVI" in (tmp_path / "report.md").read_text()
    assert (tmp_path / "mixture_model" / "model.pt").exists()
    panels = PanelInformation.load(tmp_path / "panel_information.csv")
    assert set(panels.table["group"]) == {"mean_expression", "hvg", "greedy_information"}
    assert "Gene panels" in (tmp_path / "report.md").read_text()
    calibration = pd.read_csv(tmp_path / "niche_calibration.csv")
    assert len(calibration) == 11 and calibration["niche_scale"].between(0, 1).all()
    assert "Spatial interactions" in (tmp_path / "report.md").read_text()
    genes = pd.read_csv(tmp_path / "interaction_genes.csv", index_col=0)
    assert genes["observed_log2_fold_change"].notna().all()
    assert (genes.groupby("receiver_type").size() <= 100).all()

import pandas as pd

from lucidvi.cli import main


def test_demo_quick_writes_report_and_figures(tmp_path):
    assert main(["demo", "--quick", "--out", str(tmp_path)]) == 0
    for name in (
        "report.md",
        "latent_umap.png",
        "loadings_heatmap.png",
        "training_curve.png",
        "top_genes_per_factor.csv",
        "loadings.csv",
    ):
        assert (tmp_path / name).stat().st_size > 0, name
    top = pd.read_csv(tmp_path / "top_genes_per_factor.csv")
    assert set(top["factor"]) == {f"Z_{i}" for i in range(10)}
    assert "![latent UMAP](latent_umap.png)" in (tmp_path / "report.md").read_text()
    assert (tmp_path / "model" / "model.pt").exists()

"""Importing and running lucidvi leaves the interpreter's global settings as they were."""

import subprocess
import sys

import pytest


def _run(code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout.strip()


@pytest.mark.parametrize(
    "order",
    [
        ("lucidvi.tl", "lucidvi.interpretation"),
        ("lucidvi.interpretation", "lucidvi.tl"),
        ("lucidvi.metrics", "lucidvi.tl"),
    ],
)
def test_subpackages_import_in_any_order(order):
    """tl and interpretation imported each other: only lucidvi/__init__'s order made it work."""
    _run("import importlib\n" + "".join(f"importlib.import_module({m!r})\n" for m in order))


def test_importing_the_demo_keeps_the_matplotlib_backend():
    code = (
        "import matplotlib\n"
        "matplotlib.use('svg')\n"
        "import lucidvi, lucidvi._demo, lucidvi._demo_spatial\n"
        "print(matplotlib.get_backend())"
    )
    assert _run(code).lower() == "svg"


def _settings() -> dict:
    import logging

    import matplotlib
    import scvi
    import torch

    return {
        "scvi seed": scvi.settings.seed,
        "torch threads": torch.get_num_threads(),
        "float32 matmul": torch.get_float32_matmul_precision(),
        "backend": matplotlib.get_backend(),
        "rcParams": {k: str(v) for k, v in matplotlib.rcParams.items()},
        "log levels": {
            name: logging.getLogger(name).level for name in ("", "scvi", "lightning", "lucidvi")
        },
    }


def test_models_and_results_change_no_global_setting(tmp_path):
    """A full run of each model and of the interaction results leaves the settings alone."""
    import matplotlib.pyplot as plt
    import numpy as np

    import lucidvi
    from lucidvi.interpretation import (
        AttentionPatterns,
        ExplainedVariance,
        GeneLoadings,
        LengthScales,
        NeighborAblation,
    )

    before = _settings()
    linear = lucidvi.data.simulate_linear(n_cells=200, n_genes=40, n_factors=2, seed=0)
    lucidvi.model.LinearVI.setup_anndata(linear, layer="counts")
    model = lucidvi.model.LinearVI(linear, n_latent=2)
    model.train(max_epochs=2, enable_progress_bar=False)
    GeneLoadings.compute(model).plot_heatmap()
    mixture = lucidvi.data.simulate_nb_mixture(n=100, p=50, k=3, seed=0)
    lucidvi.model.MixtureVI.setup_anndata(mixture, layer="counts")
    for method in ("em", "amortized"):
        lucidvi.model.MixtureVI(mixture, n_clusters=3).train(
            method=method, max_epochs=2, seed=1, progress_bar=False
        )
    tissue = lucidvi.data.simulate_spatial_niches(
        lucidvi.data.cbmc(), "cell_type", [("B", "CD14+ Mono", 15.0)], n_cells=600, seed=0
    )
    lucidvi.model.InteractionVI.setup_anndata(
        tissue, labels_key="cell_type", layer="counts", n_neighbors=5
    )
    spatial = lucidvi.model.InteractionVI(tissue, n_heads=2, n_latent=4)
    spatial.train(max_epochs=2, enable_progress_bar=False)
    cells = np.arange(tissue.n_obs)
    ExplainedVariance.compute(spatial, indices=cells, n_permutations=5, seed=0).plot_barplot()
    AttentionPatterns.compute(spatial, indices=cells).plot_summary()
    NeighborAblation.compute(spatial, indices=cells).plot_heatmap()
    LengthScales.compute(spatial, n_bootstrap=5, seed=0)
    spatial.save(tmp_path / "spatial")
    lucidvi.model.InteractionVI.load(tmp_path / "spatial", adata=tissue)
    plt.close("all")
    after = _settings()
    changed = {k: (before[k], after[k]) for k in before if before[k] != after[k]}
    assert not changed, changed

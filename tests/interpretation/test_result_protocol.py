"""Every interpretation result follows one protocol: checked fields, table, files, W&B, plots.

The tests are parametrised over ``lucidvi.interpretation.__all__``: a result added there without
an instance in the ``results`` fixture fails them.
"""

import dataclasses
import glob
import inspect
import os
import re
from typing import Any, get_type_hints

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.axes import Axes

import lucidvi
from lucidvi.interpretation import (
    AttentionPatterns,
    ClusteringEvaluation,
    DimImportance,
    ExplainedVariance,
    GeneLoadings,
    GeneProgramEnrichment,
    GeneRanks,
    GenesPerDim,
    InteractionReach,
    LatentReport,
    LengthScales,
    LigandReceptorPairs,
    NeighborAblation,
    PanelInformation,
)
from lucidvi.interpretation._result import TableResult
from lucidvi.metrics import log_normalize_counts

matplotlib.use("Agg")

NAMES = lucidvi.interpretation.__all__
SUFFIXES = [".parquet", ".csv"]
PL_REFERENCE = re.compile(r":func:`lucidvi\.pl\.(\w+)`")


def _latent_results(planted) -> dict[str, TableResult]:
    loadings = GeneLoadings.compute(adata=planted, z_key="true_factors", layer="counts")
    expression = log_normalize_counts(planted.layers["counts"]).toarray()
    mean = np.tile(expression.mean(0), (planted.n_obs, 1))
    genes = GenesPerDim.compute(planted, loadings, dims=[2, 0], n_top=4, layer="counts")
    blocks = {f"block {i}": list(planted.var_names[50 * i : 50 * (i + 1)]) for i in range(4)}
    return {
        "GeneLoadings": loadings,
        "LatentReport": LatentReport.compute(planted, "true_factors"),
        "DimImportance": DimImportance.compute(loadings, planted.obsm["true_factors"], mode="diag"),
        "GenesPerDim": genes,
        "GeneRanks": GeneRanks.compute(planted, 0.5 * (expression + mean), mean, layer="counts"),
        "GeneProgramEnrichment": GeneProgramEnrichment.compute(
            genes.gene_lists(), blocks, background=planted.var_names
        ),
    }


def _clustering(small_adata) -> ClusteringEvaluation:
    adata = small_adata.copy()
    factors = adata.obsm["true_factors"]
    adata.obsm["X_umap"] = factors[:, :2]
    share = 1 / (1 + np.exp(-factors[:, 1]))
    probabilities = pd.DataFrame({0: 1 - share, 1: share}, index=adata.obs_names)
    clusters = (share > 0.5).astype(int)
    return ClusteringEvaluation.compute(clusters, adata, "cell_type", probabilities=probabilities)


def _expressed_pairs(model, sender: str, receiver: str) -> pd.DataFrame:
    """A user's resource on the panel: the 3 genes most senders x the 3 most receivers express.

    The names (``gene_012``) hold ``_``, so the table gives each pair's subunits itself.
    """
    adata = model.adata
    types = adata.obs["cell_type"].to_numpy()
    top = {}
    for cell_type in (sender, receiver):
        fraction = np.asarray((adata.layers["counts"][types == cell_type] > 0).mean(axis=0))
        top[cell_type] = list(adata.var_names[np.argsort(-fraction.ravel())[:6]])
    ligands = top[sender][:3]
    receptors = [gene for gene in top[receiver] if gene not in ligands][:3]
    pairs = pd.DataFrame([(lig, rec) for lig in ligands for rec in receptors])
    pairs.columns = ["ligand", "receptor"]
    return pairs.assign(
        ligand_subunits=[[gene] for gene in pairs["ligand"]],
        receptor_subunits=[[gene] for gene in pairs["receptor"]],
    )


def _spatial_results(model) -> dict[str, TableResult]:
    pairs = _expressed_pairs(model, "B", "CD14+ Mono")
    targets = {receptor: list(model.adata.var_names[:20]) for receptor in pairs["receptor"]}
    return {
        "LigandReceptorPairs": LigandReceptorPairs.compute(
            model, sender_type="B", receiver_type="CD14+ Mono", resource=pairs, targets=targets
        ),
        "ExplainedVariance": ExplainedVariance.compute(model, n_permutations=19, seed=0),
        "AttentionPatterns": AttentionPatterns.compute(model),
        "NeighborAblation": NeighborAblation.compute(model, "CD14+ Mono"),
        "LengthScales": LengthScales.compute(model, n_bootstrap=10, seed=0),
        "InteractionReach": InteractionReach.compute(model, "CD14+ Mono", n_bootstrap=10, seed=0),
    }


@pytest.fixture(scope="module")
def results(planted, small_adata, masked_model, spatial_model) -> dict[str, TableResult]:
    """One instance of every result, from the session's data and models, cheap settings."""
    genes = list(masked_model.adata.var_names)
    panels = PanelInformation.compute(
        masked_model,
        panels={"first 10": genes[:10], "last 30": genes[-30:]},
        labels_key="cell_type",
        indices=np.arange(300),
        n_bootstrap=10,
    )
    return {
        **_latent_results(planted),
        "ClusteringEvaluation": _clustering(small_adata),
        "PanelInformation": panels,
        **_spatial_results(spatial_model),
    }


def _result(results, name: str) -> TableResult:
    assert name in results, f"{name} is in lucidvi.interpretation.__all__ but not in the fixture"
    return results[name]


def _plot_methods(cls: type) -> list[str]:
    return sorted(name for name in dir(cls) if name.startswith("plot_"))


def _required_plot_arguments(result: TableResult, method: str) -> dict[str, Any]:
    """What a plot needs besides ``ax``: the list or the pair it draws."""
    if isinstance(result, GeneProgramEnrichment):
        if method == "plot_bars":
            return {"list_name": result.list_names[0]}
        return dict(zip(("group_a", "group_b"), result.list_names[:2], strict=True))
    if method == "plot_volcano":
        return {"sender_type": "B", "receiver_type": "CD14+ Mono"}
    return {}


PLOTS = [
    (name, method)
    for name in NAMES
    for method in _plot_methods(getattr(lucidvi.interpretation, name))
]


@pytest.mark.parametrize("name", NAMES)
def test_is_a_frozen_dataclass_with_a_typed_compute(results, name):
    result = _result(results, name)
    cls = type(result)
    assert cls.__name__ == name and isinstance(result, TableResult)
    assert dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen
    field = dataclasses.fields(cls)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(result, field, None)
    assert isinstance(inspect.getattr_static(cls, "compute"), classmethod)
    signature = inspect.signature(cls.compute)
    unannotated = [p.name for p in signature.parameters.values() if p.annotation is p.empty]
    assert unannotated == [] and signature.return_annotation is not signature.empty
    assert cls.compute.__doc__ and "%(" not in cls.compute.__doc__
    assert _plot_methods(cls), f"{name} has no plot_* method"


@pytest.mark.parametrize("name", NAMES)
def test_to_dataframe_is_a_tidy_table(results, name):
    table = _result(results, name).to_dataframe()
    assert isinstance(table, pd.DataFrame) and len(table) > 0
    assert isinstance(table.index, pd.RangeIndex) and table.columns.is_unique


@pytest.mark.parametrize("suffix", SUFFIXES)
@pytest.mark.parametrize("name", NAMES)
def test_save_and_load_lose_nothing(results, name, suffix, tmp_path):
    result = _result(results, name)
    loaded = type(result).load(result.save(tmp_path / f"result{suffix}"))
    assert type(loaded) is type(result)
    pd.testing.assert_frame_equal(loaded.to_dataframe(), result.to_dataframe(), check_dtype=False)
    assert loaded._parameters() == result._parameters()
    titles = [(key, ax.get_title()) for key, ax in result._figures()]
    assert titles == [(key, ax.get_title()) for key, ax in loaded._figures()]
    plt.close("all")


@pytest.mark.parametrize("name", NAMES)
def test_log_to_wandb_offline_records_the_table_and_every_plot(
    results, name, tmp_path, monkeypatch
):
    import wandb

    result = _result(results, name)
    n_figures = len(list(result._figures()))
    plt.close("all")
    assert n_figures >= 1
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    run = wandb.init(mode="offline", dir=tmp_path, project="lucidvi-test")
    try:
        result.log_to_wandb()  # the active run
        run_dir = run.dir
    finally:
        run.finish()
    media = os.path.join(run_dir, "media")
    tables = glob.glob(os.path.join(media, "table", name, "**", "*.table.json"), recursive=True)
    images = glob.glob(os.path.join(media, "images", name, "**", "*.png"), recursive=True)
    assert len(tables) == 1 and len(images) == n_figures
    assert plt.get_fignums() == []  # logged figures are closed


@pytest.mark.parametrize("name", NAMES)
def test_post_init_checks_every_field_against_its_type(results, name):
    result = _result(results, name)
    hints = get_type_hints(type(result))
    for field in dataclasses.fields(result):
        if hints[field.name] is Any:
            continue
        with pytest.raises(TypeError, match=rf"{name}\.{field.name} must be"):
            dataclasses.replace(result, **{field.name: object()})
    frames = [f.name for f in dataclasses.fields(result) if hints[f.name] is pd.DataFrame]
    if frames:
        wrong = getattr(result, frames[0]).to_numpy().tolist()
        with pytest.raises(TypeError, match="must be DataFrame, got list"):
            dataclasses.replace(result, **{frames[0]: wrong})


@pytest.mark.parametrize(("name", "method"), PLOTS)
def test_plot_method_forwards_to_one_pl_function(results, name, method):
    result = _result(results, name)
    plot = getattr(result, method)
    parameters = inspect.signature(plot).parameters
    assert parameters["ax"].kind is inspect.Parameter.KEYWORD_ONLY
    assert parameters["ax"].default is None
    assert list(parameters.values())[-1].kind is inspect.Parameter.VAR_KEYWORD
    assert all(p.kind in (p.KEYWORD_ONLY, p.VAR_KEYWORD) for p in parameters.values())
    targets = set(PL_REFERENCE.findall(plot.__doc__))
    assert len(targets) == 1 and "whose parameters it takes" in " ".join(plot.__doc__.split())
    (target,) = targets
    assert target in lucidvi.pl.__all__
    pl_function = getattr(lucidvi.pl, target)
    pl_parameters = list(inspect.signature(pl_function).parameters.values())
    assert all(p.kind is p.KEYWORD_ONLY for p in pl_parameters[1:])  # the result comes first
    assert {p.name for p in parameters.values()} - {"kwargs"} <= {p.name for p in pl_parameters}

    required = _required_plot_arguments(result, method)
    assert isinstance(plot(**required), Axes)
    _, ax = plt.subplots()
    assert plot(ax=ax, **required) is ax
    assert ax.has_data() or ax.texts, "nothing drawn on the given Axes"
    with pytest.raises(TypeError, match=rf"{target}\(\) got an unexpected keyword argument"):
        plot(not_a_parameter=1, **required)
    plt.close("all")


def test_types_literals_and_containers_are_checked(results):
    loadings = results["GeneLoadings"]
    with pytest.raises(ValueError, match=r"source must be one of \['decoder', 'regression'\]"):
        dataclasses.replace(loadings, source="pca")
    importance = results["DimImportance"]
    with pytest.raises(TypeError, match="n_dims_at_cutoff must be int, got bool"):
        dataclasses.replace(importance, n_dims_at_cutoff=True)
    with pytest.raises(TypeError, match="order must be"):
        dataclasses.replace(importance, order=(*importance.order[:-1], 3))
    assert dataclasses.replace(importance, cumulative_cutoff=1).cumulative_cutoff == 1  # int: ok
    ranks = results["GeneRanks"]
    with pytest.raises(TypeError, match="names must be"):
        dataclasses.replace(ranks, names=("local", "global", "third"))
    enrichment = results["GeneProgramEnrichment"]
    with pytest.raises(TypeError, match="n_tested must be"):
        dataclasses.replace(enrichment, n_tested=dict.fromkeys(enrichment.list_names, 1.5))
    ablation = results["ExplainedVariance"]
    assert dataclasses.replace(ablation, seed=None).seed is None  # int | None
    with pytest.raises(TypeError, match="seed must be"):
        dataclasses.replace(ablation, seed="0")


def test_load_checks_the_type_and_the_suffix(results, tmp_path):
    path = results["LatentReport"].save(tmp_path / "report.csv")
    with pytest.raises(ValueError, match="not a DimImportance"):
        DimImportance.load(path)
    pd.DataFrame({"a": [1]}).to_csv(tmp_path / "plain.csv", index=False)
    with pytest.raises(ValueError, match="no lucidvi result"):
        LatentReport.load(tmp_path / "plain.csv")
    with pytest.raises(ValueError, match=".parquet or .csv"):
        results["LatentReport"].save(tmp_path / "report.xlsx")


def test_csv_keeps_names_that_look_like_numbers(results, tmp_path):
    result = results["NeighborAblation"]
    table = result.table.assign(receiver_type="01", gene="1e3")
    renamed = dataclasses.replace(result, table=table)
    loaded = type(result).load(renamed.save(tmp_path / "numbers.csv"))
    assert set(loaded.table["receiver_type"]) == {"01"}
    assert set(loaded.table["gene"]) == {"1e3"}


def test_log_to_wandb_without_a_run_raises(results):
    import wandb

    assert wandb.run is None
    with pytest.raises(RuntimeError, match="wandb.init"):
        results["LatentReport"].log_to_wandb()

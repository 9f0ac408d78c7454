"""PanelInformation: mutual information of gene panels with the full transcriptome."""

import matplotlib
import numpy as np
import pandas as pd
import pytest

from lucidvi.interpretation import PanelInformation
from lucidvi.model import LinearVI

matplotlib.use("Agg")

SIZES = [5, 20, 40]
ORDERS = ["mean_expression", "hvg", "greedy_information"]


@pytest.fixture(scope="module")
def nested(masked_model):
    return PanelInformation.compute(
        masked_model, sizes=SIZES, order=ORDERS, labels_key="cell_type", n_bootstrap=100
    )


def test_nested_panels_table(nested, masked_model):
    table = nested.to_dataframe()
    assert len(table) == len(SIZES) * len(ORDERS)
    assert list(table.groupby("group", sort=False)["n_genes"].apply(list)) == [SIZES] * 3
    assert (table["ci_low"] <= table["mutual_information"]).all()
    assert (table["mutual_information"] <= table["ci_high"]).all()
    assert table["knn_accuracy"].between(0, 1).all() and 0 < nested.full_knn_accuracy <= 1
    for _, rows in table.groupby("group"):
        panels = [nested.panels[name] for name in rows["panel"]]
        assert all(
            small == large[: len(small)]
            for small, large in zip(panels[:-1], panels[1:], strict=True)
        )
    assert nested.n_cells == masked_model.adata.n_obs


def test_information_rises_from_the_smallest_to_the_largest_panel(nested):
    table = nested.to_dataframe().set_index("panel")
    for order in ORDERS:
        smallest, largest = table.loc[f"{order} 5"], table.loc[f"{order} 40"]
        # the largest panel's resampling interval lies above the smallest panel's estimate
        assert largest["ci_low"] > smallest["mutual_information"]


def test_greedy_panels_carry_more_information_than_mean_expression(nested):
    table = nested.to_dataframe().set_index("panel")
    greedy, usual = table.loc["greedy_information 5"], table.loc["mean_expression 5"]
    assert greedy["ci_low"] > usual["mutual_information"]


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_save_and_load_lose_nothing(nested, tmp_path, suffix):
    loaded = PanelInformation.load(nested.save(tmp_path / f"panels{suffix}"))
    pd.testing.assert_frame_equal(loaded.to_dataframe(), nested.to_dataframe(), check_dtype=False)
    assert loaded.panels == nested.panels and loaded._parameters() == nested._parameters()


def test_plots_show_each_group(nested):
    ax = nested.plot_information()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ORDERS
    ax = nested.plot_information(metric="knn_accuracy")
    assert "all genes" in [t.get_text() for t in ax.get_legend().get_texts()]
    matplotlib.pyplot.close("all")


def test_given_panels_infonce_and_refit(masked_model):
    genes = list(masked_model.adata.var_names)
    panels = {"first": genes[:10], "last": genes[-30:]}
    infonce = PanelInformation.compute(
        masked_model, panels=panels, method="infonce", n_bootstrap=0, indices=np.arange(300)
    )
    table = infonce.to_dataframe()
    assert list(table["group"]) == ["given", "given"] and infonce.n_cells == 300
    assert (table["mutual_information"] <= table["upper_bound"]).all()
    assert np.allclose(table["upper_bound"], np.log(300))
    refit = PanelInformation.compute(
        masked_model, panels={"last": genes[-30:]}, embedding="refit", n_bootstrap=0,
        refit_kwargs={"max_epochs": 5},
    )  # fmt: skip
    assert refit.embedding == "refit" and np.isfinite(refit.table["mutual_information"]).all()
    assert "_scvi_uuid" in masked_model.adata.uns  # the model's own data stays registered


def test_bad_requests_say_what_to_fix(masked_model, small_adata):
    with pytest.raises(ValueError, match="sizes"):
        PanelInformation.compute(masked_model, sizes=[10, 500])
    with pytest.raises(ValueError, match="only 80 genes"):
        PanelInformation.compute(masked_model)  # default sizes all exceed 80 genes
    with pytest.raises(ValueError, match="either panels or sizes"):
        PanelInformation.compute(masked_model, panels={"a": ["gene_0"]}, sizes=[5])
    with pytest.raises(ValueError, match="order"):
        PanelInformation.compute(masked_model, sizes=[5], order="alphabetical")
    with pytest.raises(ValueError, match="critic='learned'"):
        PanelInformation.compute(masked_model, sizes=[5], method="infonce", embedding="refit")
    adata = small_adata.copy()
    LinearVI.setup_anndata(adata, layer="counts")
    unmasked = LinearVI(adata, n_latent=2)
    unmasked.train(max_epochs=1, enable_progress_bar=False)
    with pytest.raises(ValueError, match="embedding='refit'"):
        PanelInformation.compute(unmasked, sizes=[5])

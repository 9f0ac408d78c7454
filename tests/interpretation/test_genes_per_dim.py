import numpy as np
import pytest

from lucidvi.interpretation import GeneLoadings, GenesPerDim


@pytest.fixture(scope="module")
def planted_loadings(planted):
    return GeneLoadings.compute(adata=planted, z_key="true_factors", layer="counts")


def test_top_genes_recover_the_planted_blocks(planted, planted_loadings):
    blocks = planted.uns["simulation"]["gene_blocks"]
    n_top = min(len(b[key]) for b in blocks.values() for key in ("positive", "negative"))
    result = GenesPerDim.compute(planted, planted_loadings, n_top=n_top, layer="counts", min_frac=0)
    lists = result.gene_lists()
    for dim, block in blocks.items():
        for direction, key in (("+", "positive"), ("-", "negative")):
            precision = np.isin(lists[dim + direction], block[key]).mean()
            assert precision >= 0.8, (dim, direction, precision)


def test_filters_and_ranking_options(planted, planted_loadings):
    base = dict(adata=planted, loadings=planted_loadings, layer="counts", n_top=5)
    strict = GenesPerDim.compute(**base, min_frac=0.9)
    assert (strict.table["frac_expressed"] >= 0.9).all()
    sd_filtered = GenesPerDim.compute(**base, min_frac=0, min_sd=0.5)
    assert (sd_filtered.table["sd"] >= 0.5).all()
    by_sd = GenesPerDim.compute(**base, min_frac=0, rank_by="loading_x_sd")
    np.testing.assert_allclose(by_sd.table["score"], by_sd.table["loading"] * by_sd.table["sd"])
    specific = GenesPerDim.compute(**base, min_frac=0, enforce_specificity=True, specificity_min=3)
    assert (specific.table["specificity"] >= 3).all()
    residual = GenesPerDim.compute(**base, min_frac=0, residualize=True, dims=["Z_1", 0])
    assert list(residual.heatmap_values.columns) == ["Z_1", "Z_0"]
    assert set(residual.table["dim"]) == {"Z_0", "Z_1"}
    for frame in (strict, by_sd, specific, residual):
        ranks = frame.table.groupby(["dim", "direction"])["rank"]
        assert ranks.max().max() <= 5 and (ranks.min() == 1).all()
    positive = by_sd.table[by_sd.table["direction"] == "+"]
    assert (positive["score"] > 0).all()


def test_dimension_errors(planted, planted_loadings):
    with pytest.raises(IndexError, match="out of range"):
        GenesPerDim.compute(planted, planted_loadings, dims=[4], layer="counts")
    with pytest.raises(KeyError, match="Z_9"):
        GenesPerDim.compute(planted, planted_loadings, dims=["Z_9"], layer="counts")
    with pytest.raises(ValueError, match="empty"):
        GenesPerDim.compute(planted, planted_loadings, dims=[], layer="counts")
    with pytest.raises(ValueError, match="n_top"):
        GenesPerDim.compute(planted, planted_loadings, n_top=0, layer="counts")
    renamed = planted_loadings.loadings.rename(index=lambda g: g + "_x")
    with pytest.raises(ValueError, match="not in adata.var_names"):
        GenesPerDim.compute(planted, renamed, layer="counts")


def test_no_gene_passing_the_filters_gives_an_empty_table(planted, planted_loadings):
    result = GenesPerDim.compute(planted, planted_loadings, layer="counts", min_sd=1e9)
    assert result.table.empty and result.heatmap_values.empty
    assert result.gene_lists() == {}
    assert result.gene_lists(include_empty=True)["Z_0+"] == []

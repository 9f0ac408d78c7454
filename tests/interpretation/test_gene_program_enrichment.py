import glob
import gzip
import os
import sys
import warnings

import gseapy
import matplotlib
import numpy as np
import pandas as pd
import pytest
import requests
from scipy.stats import hypergeom

import lucidvi
from lucidvi.interpretation import GeneProgramEnrichment

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def hallmark():
    return lucidvi.data.gene_sets("hallmark")


@pytest.fixture(scope="module")
def universe(hallmark):
    return sorted(set().union(*map(set, hallmark.values())))


def _draw(genes, n, seed):
    return [str(gene) for gene in np.random.default_rng(seed).choice(genes, n, replace=False)]


def _bh(p, m):
    """Benjamini-Hochberg written out: q_(i) = min_{j >= i} p_(j) m / j, p padded to m tests."""
    p = np.concatenate([np.asarray(p, dtype=float), np.ones(m - len(p))])
    order = np.argsort(p)
    scaled = p[order] * m / np.arange(1, m + 1)
    q = np.minimum(np.minimum.accumulate(scaled[::-1])[::-1], 1.0)
    out = np.empty(m)
    out[order] = q
    return out


def _toy_sets():
    return {
        "A": [f"a{i}" for i in range(10)],
        "B": [f"b{i}" for i in range(10)],
    }


@pytest.mark.parametrize(
    ("term", "seed"),
    [
        ("HALLMARK_E2F_TARGETS", 0),
        ("HALLMARK_INTERFERON_GAMMA_RESPONSE", 1),
        ("HALLMARK_HYPOXIA", 2),
    ],
)
def test_planted_set_ranks_first(hallmark, universe, term, seed):
    genes = _draw(hallmark[term], 30, seed)
    res = GeneProgramEnrichment.compute({"planted": genes}, "hallmark", background=universe)
    top = res.top("planted", 1).iloc[0]
    assert top["term"] == term
    assert top["p_value_adj"] < 1e-3
    assert top["overlap"] == 30 and top["list_size"] == 30 and top["gene_ratio"] == 1.0
    # p is the upper tail of the hypergeometric distribution of the overlap
    expected = hypergeom.sf(29, len(universe), len(hallmark[term]), 30)
    np.testing.assert_allclose(top["p_value"], expected, rtol=1e-10)
    assert top["genes"].split(";") == [g for g in genes if g in set(hallmark[term])]


def test_adjusted_p_is_bh_over_every_tested_term(hallmark, universe):
    genes = _draw(hallmark["HALLMARK_G2M_CHECKPOINT"], 20, 3) + _draw(universe, 20, 4)
    res = GeneProgramEnrichment.compute({"mix": genes}, hallmark)
    table = res.top("mix", 100)
    assert res.n_tested == {"mix": 50}
    assert len(table) < 50  # some terms share no gene: they count in the correction as p = 1
    expected = _bh(table["p_value"], 50)[: len(table)]
    np.testing.assert_allclose(table["p_value_adj"], expected, rtol=1e-12)
    assert table["p_value"].is_monotonic_increasing


def test_random_lists_are_calibrated(universe):
    # Under the global null BH at 0.05 bounds P(any adjusted p < 0.05) by 0.05 (the one-sided
    # hypergeometric test is discrete, hence conservative): ~10 of 200 lists at most expected,
    # 20 allowed. A valid p-value has P(p < 0.05) <= 0.05, so at most 5% of the 200 x 50 tests.
    lists = {f"random_{i}": _draw(universe, 30, 100 + i) for i in range(200)}
    res = GeneProgramEnrichment.compute(lists, "hallmark")
    table = res.to_dataframe()
    lists_with_hits = table.loc[table["p_value_adj"] < 0.05, "list"].nunique()
    assert lists_with_hits <= 20
    assert (table["p_value"] < 0.05).sum() <= 0.05 * 200 * 50
    assert not (res.top("random_0", 50)["p_value_adj"] < 0.05).any()


def test_matches_gseapy_enrich(hallmark):
    genes = _draw(hallmark["HALLMARK_E2F_TARGETS"], 15, 5) + _draw(
        hallmark["HALLMARK_APOPTOSIS"], 15, 6
    )
    ours = GeneProgramEnrichment.compute({"x": genes}, hallmark).table.set_index("term")
    theirs = gseapy.enrich(genes, hallmark, outdir=None, no_plot=True).res2d.set_index("Term")
    assert set(ours.index) == set(theirs.index)
    theirs = theirs.loc[ours.index]
    np.testing.assert_allclose(ours["p_value"], theirs["P-value"], rtol=1e-12)
    np.testing.assert_allclose(ours["odds_ratio"], theirs["Odds Ratio"], rtol=1e-12)
    overlap = (ours["overlap"].astype(str) + "/" + ours["term_size"].astype(str)).to_numpy()
    assert list(overlap) == list(theirs["Overlap"])
    # gseapy corrects over the terms with a hit only, we over all 50: never smaller
    assert (ours["p_value_adj"].to_numpy() >= theirs["Adjusted P-value"].to_numpy() - 1e-15).all()


@pytest.mark.parametrize(
    ("background", "universe_size", "list_size", "term_size"),
    [(None, 20, 5, 10), ("list", 100, 5, 10), (1000, 1000, 6, 10)],
)
def test_background_defines_the_universe(background, universe_size, list_size, term_size):
    sets = _toy_sets()
    if background == "list":
        background = [*sets["A"], *sets["B"][:8], *[f"o{i}" for i in range(82)]]
    genes = ["a0", "a1", "a2", "a3", "a4", "x_unannotated", "a0"]  # duplicate counted once
    res = GeneProgramEnrichment.compute({"l": genes}, sets, background=background)
    (row,) = res.table.itertuples()
    assert (row.term, row.overlap, row.term_size, row.list_size) == ("A", 5, term_size, list_size)
    assert row.gene_ratio == pytest.approx(5 / list_size)
    expected = hypergeom.sf(4, universe_size, term_size, list_size)
    assert row.p_value == pytest.approx(expected, rel=1e-10)
    # Haldane-Anscombe corrected odds ratio of the 2 x 2 table (gseapy's definition)
    a, b, c = 5, term_size - 5, list_size - 5
    d = universe_size - a - b - c
    assert row.odds_ratio == pytest.approx((a + 0.5) * (d + 0.5) / ((b + 0.5) * (c + 0.5)))
    assert res.n_tested == {"l": 2}


def test_background_list_restricts_the_sets():
    sets = _toy_sets()
    background = [*sets["A"][:4], *sets["B"], "o1"]  # a4..a9 unmeasured
    res = GeneProgramEnrichment.compute({"l": ["a0", "a1", "a5"]}, sets, background=background)
    (row,) = res.table.itertuples()
    assert (row.overlap, row.term_size, row.list_size, row.genes) == (2, 4, 2, "a0;a1")


def test_bad_background_raises():
    sets = _toy_sets()
    with pytest.raises(ValueError, match="smaller"):
        GeneProgramEnrichment.compute({"l": ["a0"]}, sets, background=15)
    with pytest.raises(TypeError, match="list of genes"):
        GeneProgramEnrichment.compute({"l": ["a0"]}, sets, background="hsapiens_gene_ensembl")
    with pytest.raises(ValueError, match="shares no gene"):
        GeneProgramEnrichment.compute({"l": ["a0"]}, sets, background=["z1", "z2"])


def test_dict_and_gmt_inputs_agree(hallmark, tmp_path):
    lists = {
        "e2f": _draw(hallmark["HALLMARK_E2F_TARGETS"], 20, 7),
        "p53": _draw(hallmark["HALLMARK_P53_PATHWAY"], 25, 8),
    }
    lines = "".join(f"{term}\tna\t" + "\t".join(genes) + "\n" for term, genes in hallmark.items())
    gmt = tmp_path / "sets.gmt"
    gmt.write_text(lines)
    with gzip.open(tmp_path / "sets.gmt.gz", "wt") as handle:
        handle.write(lines)
    from_dict = GeneProgramEnrichment.compute(lists, dict(hallmark))
    assert from_dict.gene_sets_name == "custom"
    for source in (gmt, str(gmt), str(tmp_path / "sets.gmt.gz"), "hallmark"):
        other = GeneProgramEnrichment.compute(lists, source)
        pd.testing.assert_frame_equal(other.to_dataframe(), from_dict.to_dataframe())
    assert GeneProgramEnrichment.compute(lists, gmt).gene_sets_name == "sets.gmt"
    assert list(from_dict.table["list"].unique()) == ["e2f", "p53"]  # input order kept


def test_missing_gmt_file_raises_without_network(tmp_path, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("the network must not be used")

    monkeypatch.setattr(gseapy, "get_library", no_network)
    with pytest.raises(FileNotFoundError, match="missing.gmt"):
        GeneProgramEnrichment.compute({"l": ["A"]}, str(tmp_path / "missing.gmt"))


def test_bad_gene_lists_raise():
    sets = _toy_sets()
    with pytest.raises(ValueError, match="gene_lists is empty"):
        GeneProgramEnrichment.compute({}, sets)
    with pytest.raises(ValueError, match="'b' is empty"):
        GeneProgramEnrichment.compute({"a": ["a0"], "b": []}, sets)
    with pytest.raises(TypeError, match="list of gene names"):
        GeneProgramEnrichment.compute({"a": "a0"}, sets)
    with pytest.raises(TypeError, match="dict"):
        GeneProgramEnrichment.compute(["a0", "a1"], sets)


def test_genes_absent_from_every_set_give_no_rows_and_warn(hallmark):
    lists = {"e2f": _draw(hallmark["HALLMARK_E2F_TARGETS"], 10, 9), "mouse": ["Mki67", "Top2a"]}
    with pytest.warns(UserWarning, match=r"'mouse'.*upper-case"):
        res = GeneProgramEnrichment.compute(lists, "hallmark")
    assert res.list_names == ("e2f", "mouse")
    assert res.top("mouse", 10).empty
    assert set(res.table["list"]) == {"e2f"}
    with pytest.warns(UserWarning, match="no row") as record:
        GeneProgramEnrichment.compute({"none": ["NOT_A_GENE"]}, "hallmark")
    assert "upper-case" not in str(record[0].message)
    assert record[0].filename == __file__  # stacklevel points at the caller


def test_matching_is_case_sensitive(hallmark):
    genes = _draw(hallmark["HALLMARK_E2F_TARGETS"], 10, 10)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        upper = GeneProgramEnrichment.compute({"l": genes}, "hallmark")
    with pytest.warns(UserWarning):
        lower = GeneProgramEnrichment.compute({"l": [g.lower() for g in genes]}, "hallmark")
    assert len(upper.table) > 0 and len(lower.table) == 0


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_save_load_roundtrip(hallmark, tmp_path, suffix):
    lists = {"e2f": _draw(hallmark["HALLMARK_E2F_TARGETS"], 20, 11), "none": ["NOT_A_GENE"]}
    with pytest.warns(UserWarning):
        res = GeneProgramEnrichment.compute(lists, "hallmark")
    loaded = GeneProgramEnrichment.load(res.save(tmp_path / f"res{suffix}"))
    pd.testing.assert_frame_equal(loaded.to_dataframe(), res.to_dataframe())
    assert loaded.gene_sets_name == "hallmark"
    assert loaded.list_names == ("e2f", "none") and loaded.n_tested == res.n_tested
    with pytest.warns(UserWarning):
        empty = GeneProgramEnrichment.compute({"none": ["NOT_A_GENE"]}, "hallmark")
    reloaded = GeneProgramEnrichment.load(empty.save(tmp_path / f"empty{suffix}"))
    pd.testing.assert_frame_equal(reloaded.to_dataframe(), empty.to_dataframe())


def test_enrichr_library_without_network_raises_clear_error(monkeypatch):
    def offline(*args, **kwargs):
        raise requests.exceptions.ConnectionError("Name or service not known")

    monkeypatch.setattr(gseapy, "get_library", offline)
    monkeypatch.setattr(gseapy, "enrichr", offline)
    with pytest.raises(ConnectionError, match=r"'hallmark'.*\.gmt path for offline use"):
        GeneProgramEnrichment.compute({"l": ["CD3E"]}, "GO_Biological_Process_2023")


def test_enrichr_library_is_tested_offline_once_downloaded(monkeypatch):
    calls = []

    def download(name, organism="Human", min_size=0, max_size=2000):
        calls.append((name, organism, min_size, max_size))
        return _toy_sets()

    monkeypatch.setattr(gseapy, "get_library", download)
    res = GeneProgramEnrichment.compute({"l": ["a0", "a1", "a2"]}, "Some_Library_2024")
    assert calls == [("Some_Library_2024", "Human", 0, sys.maxsize)]  # no size filter
    assert res.gene_sets_name == "Some_Library_2024"
    assert res.top("l", 1)["term"].item() == "A"


def test_top_and_validation(hallmark):
    res = GeneProgramEnrichment.compute(
        {"l": _draw(hallmark["HALLMARK_HYPOXIA"], 20, 12)}, hallmark
    )
    assert len(res.top("l", 3)) == 3
    with pytest.raises(ValueError, match="Unknown list"):
        res.top("nope")
    with pytest.raises(ValueError, match="columns"):
        GeneProgramEnrichment(res.table.drop(columns="genes"), "x", ("l",), {"l": 50})
    with pytest.raises(ValueError, match="list_names"):
        GeneProgramEnrichment(res.table, "x", ("other",), {"other": 50})


def test_log_to_wandb_offline(hallmark, tmp_path, monkeypatch):
    import wandb

    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    lists = {
        "e2f": _draw(hallmark["HALLMARK_E2F_TARGETS"], 20, 13),
        "myc": _draw(hallmark["HALLMARK_MYC_TARGETS_V1"], 20, 14),
    }
    res = GeneProgramEnrichment.compute(lists, "hallmark")
    run = wandb.init(mode="offline", dir=tmp_path, project="lucidvi-test")
    try:
        res.log_to_wandb(run, key="enrichment")
        run_dir = run.dir
    finally:
        run.finish()
    tables = glob.glob(
        os.path.join(run_dir, "media", "table", "enrichment", "**", "*.table.json"), recursive=True
    )
    assert len(tables) == 1
    images = glob.glob(os.path.join(run_dir, "media", "images", "**", "*.png"), recursive=True)
    assert len(images) == 2  # one bar chart per list

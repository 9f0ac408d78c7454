"""The bundled ligand-receptor pairs, users' tables, liana's resources and the receptor targets."""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import re
import sys
from importlib.resources import files

import pandas as pd
import pytest

from lucidvi.data import gene_sets, ligand_receptor_pairs, receptor_targets

COLUMNS = ["ligand", "receptor", "interaction_type", "ligand_subunits", "receptor_subunits"]
# the provenance record: pairs after the 3 repeated human rows are dropped
N_PAIRS = {"human": 1677, "mouse": 1410}


@pytest.mark.parametrize("organism", ["human", "mouse"])
def test_bundled_tables_are_tidy_with_complexes_split_into_subunits(organism):
    pairs = ligand_receptor_pairs(organism)
    assert list(pairs.columns) == COLUMNS
    assert len(pairs) == N_PAIRS[organism]
    assert list(pairs.index) == list(range(len(pairs)))
    assert not pairs.duplicated(subset=["ligand", "receptor"]).any()
    assert set(pairs["interaction_type"]) == {"Secreted Signaling", "Cell-Cell Contact"}
    for column in ("ligand", "receptor"):
        joined = pairs[f"{column}_subunits"].map("_".join)
        assert (joined == pairs[column]).all()
        assert all(isinstance(s, tuple) and all(s) for s in pairs[f"{column}_subunits"])
    integrin = pairs[
        pairs["receptor"] == {"human": "ITGB1_ITGA10", "mouse": "Itgb1_Itga10"}[organism]
    ]
    assert len(integrin) > 0
    assert set(integrin["receptor_subunits"]) == {
        {"human": ("ITGB1", "ITGA10"), "mouse": ("Itgb1", "Itga10")}[organism]
    }
    genes = {g for s in pairs["ligand_subunits"] for g in s}
    case = {"human": r"[A-Z0-9][A-Z0-9.\-]*(orf[0-9]+)?", "mouse": r"[A-Za-z0-9.\-]+"}[organism]
    assert all(re.fullmatch(case, gene) for gene in genes)
    if organism == "mouse":  # mouse symbols are not upper case (as human ones are)
        assert sum(gene != gene.upper() for gene in genes) > 0.9 * len(genes)


def test_human_pairs_hold_known_complexes():
    pairs = ligand_receptor_pairs("human").set_index(["ligand", "receptor"])
    assert pairs.loc[("IFNG", "IFNGR1_IFNGR2"), "receptor_subunits"] == ("IFNGR1", "IFNGR2")
    assert pairs.loc[("TNF", "TNFRSF1A"), "interaction_type"] == "Secreted Signaling"
    assert pairs.loc[("DLL1", "NOTCH1"), "interaction_type"] == "Cell-Cell Contact"
    assert pairs.loc[("INHBA_INHBB", "ACVR1_ACVR2A"), "ligand_subunits"] == ("INHBA", "INHBB")


def test_shipped_files_match_their_provenance_records():
    folder = files("lucidvi.data").joinpath("files")
    record = folder.joinpath("PROVENANCE.md").read_text()
    for organism in ("human", "mouse"):
        name = f"cellphonedb_v4_{organism}.csv.gz"
        data = folder.joinpath(name).read_bytes()
        section = record.split(f"## `{name}`")[1].split("\n## ")[0]
        assert f"- sha256: `{hashlib.sha256(data).hexdigest()}`" in section
        assert "MIT" in section and "commot` 0.0.3" in section
        assert gzip.decompress(data).decode().startswith("ligand,receptor,interaction_type\n")
    assert "CellChat" in record.split("## ")[0]  # the GPL-3 tables are named as not shipped


def test_user_table_is_checked_stripped_and_deduplicated():
    mine = pd.DataFrame(
        {
            "ligand": [" Tnf", "Tnf", "Ifng", "Tnf"],
            "receptor": ["Tnfrsf1a", "Tnfrsf1a ", "Ifngr1_Ifngr2", "Tnfrsf1b"],
            "score": [1.0, 2.0, 3.0, 4.0],
        },
        index=[10, 11, 12, 13],
    )
    pairs = ligand_receptor_pairs(resource=mine)
    assert list(pairs.columns) == COLUMNS
    assert pairs[["ligand", "receptor"]].values.tolist() == [
        ["Tnf", "Tnfrsf1a"],
        ["Ifng", "Ifngr1_Ifngr2"],
        ["Tnf", "Tnfrsf1b"],
    ]
    assert pairs["receptor_subunits"][1] == ("Ifngr1", "Ifngr2")
    assert pairs["interaction_type"].isna().all()
    typed = mine.assign(interaction_type=["contact", "contact", None, "secreted"])
    types = ligand_receptor_pairs(resource=typed)["interaction_type"].tolist()
    assert types[0] == "contact" and pd.isna(types[1]) and types[2] == "secreted"


def test_user_table_may_give_the_subunits_of_names_with_underscores():
    mine = pd.DataFrame(
        {
            "ligand": ["gene_001", "gene_002_gene_003"],
            "receptor": ["gene_004", "gene_005"],
            "ligand_subunits": [["gene_001"], ("gene_002", "gene_003")],
            "receptor_subunits": [["gene_004"], ["gene_005"]],
        }
    )
    pairs = ligand_receptor_pairs(resource=mine)
    assert pairs["ligand_subunits"].tolist() == [("gene_001",), ("gene_002", "gene_003")]
    assert pairs["receptor_subunits"].tolist() == [("gene_004",), ("gene_005",)]
    split = ligand_receptor_pairs(resource=mine[["ligand", "receptor"]])
    assert split["ligand_subunits"][0] == ("gene", "001")  # without them: split on "_"
    with pytest.raises(TypeError, match="sequences of gene names"):
        ligand_receptor_pairs(resource=mine.assign(ligand_subunits=["gene_001", "gene_002"]))
    with pytest.raises(ValueError, match="empty subunit"):
        ligand_receptor_pairs(resource=mine.assign(receptor_subunits=[[], ["gene_005"]]))


@pytest.mark.parametrize(
    ("table", "match"),
    [
        (pd.DataFrame({"source": ["A"], "target": ["B"]}), "no column 'ligand' or 'receptor'"),
        (pd.DataFrame({"ligand": ["A", None], "receptor": ["B", "C"]}), r"1 row\(s\).*rows \[1\]"),
        (pd.DataFrame({"ligand": ["A"], "receptor": [""]}), "missing or empty"),
        (pd.DataFrame({"ligand": ["A_"], "receptor": ["B"]}), "empty subunit"),
    ],
)
def test_bad_user_tables_are_refused(table, match):
    with pytest.raises(ValueError, match=match):
        ligand_receptor_pairs(resource=table)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="organism must be one of"):
        ligand_receptor_pairs("zebrafish")
    with pytest.raises(ValueError, match="Unknown resource 'cellchat'"):
        ligand_receptor_pairs(resource="cellchat")
    with pytest.raises(TypeError, match="got dict"):
        ligand_receptor_pairs(resource={"ligand": ["A"], "receptor": ["B"]})
    with pytest.raises(ValueError, match="organism must be one of"):
        receptor_targets("rat")


def test_liana_resource_without_liana_names_the_package_to_install(monkeypatch):
    for module in ("liana", "liana.resource"):
        monkeypatch.setitem(sys.modules, module, None)  # as if liana were not installed
    with pytest.raises(ImportError, match="pip install liana"):
        ligand_receptor_pairs(resource="liana:consensus")


# liana is in the test extra of the Python 3.11 stack only: liana 1.10 needs pandas < 3
@pytest.mark.skipif(importlib.util.find_spec("liana") is None, reason="liana needs pandas < 3")
def test_liana_resource_is_read_through_liana():
    from liana.resource import select_resource

    source = select_resource("consensus")
    pairs = ligand_receptor_pairs(resource="liana:consensus")
    assert list(pairs.columns) == COLUMNS
    expected = source.drop_duplicates(subset=["ligand", "receptor"])
    assert pairs[["ligand", "receptor"]].values.tolist() == (
        expected[["ligand", "receptor"]].values.tolist()
    )


def test_receptor_targets_are_the_mapped_hallmark_sets():
    human = receptor_targets("human")
    assert list(human.columns) == ["receptor", "gene_set", "target"]
    hallmark = gene_sets("hallmark")
    for receptor, name in [
        ("IFNGR1", "HALLMARK_INTERFERON_GAMMA_RESPONSE"),
        ("TNFRSF1A", "HALLMARK_TNFA_SIGNALING_VIA_NFKB"),
        ("NOTCH3", "HALLMARK_NOTCH_SIGNALING"),
        ("FZD7", "HALLMARK_WNT_BETA_CATENIN_SIGNALING"),
    ]:
        rows = human[human["receptor"] == receptor]
        assert set(rows["gene_set"]) == {name}
        assert rows["target"].tolist() == hallmark[name]
    assert "IL2RG" not in set(human["receptor"])  # shared by cytokines of other pathways
    # every mapped receptor a resource can name: the human CellPhoneDB receptors it covers
    receptors = {g for s in ligand_receptor_pairs("human")["receptor_subunits"] for g in s}
    assert {"IFNGR1", "TNFRSF1A", "IL6ST", "TGFBR2", "NOTCH1", "PTCH1"} <= receptors


def test_mouse_targets_are_the_human_ones_in_mouse_case():
    human, mouse = receptor_targets("human"), receptor_targets("mouse")
    assert len(mouse) == len(human)
    assert (mouse["gene_set"] == human["gene_set"]).all()
    assert (mouse["target"] == [g[0] + g[1:].lower() for g in human["target"]]).all()
    assert set(mouse.loc[human["receptor"] == "IL6R", "receptor"]) == {"Il6ra"}
    # the mouse receptors named the way the mouse CellPhoneDB table names them
    receptors = {g for s in ligand_receptor_pairs("mouse")["receptor_subunits"] for g in s}
    assert {"Ifngr1", "Tnfrsf1a", "Il6ra", "Il6st", "Tgfbr1", "Notch1"} <= receptors

"""LigandReceptorPairs: a planted TNF -> TNFRSF1A interaction ranks first; inputs are checked."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import scvi

import lucidvi
from lucidvi.interpretation import LigandReceptorPairs

SENDER, RECEIVER = "NK", "CD14+ Mono"
PLANTED = ("TNF", "TNFRSF1A")
RESPONSE = "HALLMARK_TNFA_SIGNALING_VIA_NFKB"
N_TARGETS = 15
# CellPhoneDB pairs named on the panel beside the planted one: their receptors have Hallmark
# targets (each named on 15 unchanged genes) or none (the last two)
DECOYS = [
    ("DLL1", "NOTCH1"),
    ("JAG1", "NOTCH2"),
    ("IL6", "IL6R_IL6ST"),
    ("IFNG", "IFNGR1_IFNGR2"),
    ("TGFB1", "TGFBR1_TGFBR2"),
    ("LGALS9", "CD44"),
    ("MIF", "CD74"),
]


def _fraction(adata, cell_type: str) -> np.ndarray:
    """Share of the type's cells with a positive count, per gene."""
    counts = adata.layers["counts"][(adata.obs["cell_type"] == cell_type).to_numpy()]
    return np.asarray((counts > 0).mean(axis=0)).ravel()


def _boost(adata, rng) -> np.ndarray:
    """Raise 15 monocyte genes in the near monocytes to about 4 times; return their columns."""
    counts = adata.layers["counts"].toarray()
    mono = (adata.obs["cell_type"] == RECEIVER).to_numpy()
    near = (adata.obs["substate"] == "near").to_numpy()
    shifted = set(adata.uns["spatial_niches"]["genes"]["gene"])  # the simulator's sub-states
    expressed = _fraction(adata, RECEIVER) > 0.05
    free = [j for j, gene in enumerate(adata.var_names) if gene not in shifted and expressed[j]]
    targets = rng.choice(free, N_TARGETS, replace=False)
    far_mean = counts[mono & ~near][:, targets].mean(axis=0)
    # Poisson counts with mean 3 x the far mean, +1 for genes rarely seen: about 4-fold
    counts[np.ix_(near, targets)] += rng.poisson(3 * far_mean + 1, (near.sum(), N_TARGETS))
    adata.X = sp.csr_matrix(counts.astype(np.int32))
    adata.layers["counts"] = adata.X.copy()
    return targets


def _symbols(adata, targets: np.ndarray, sender: str, rng) -> tuple[np.ndarray, list[str]]:
    """Name genes after the planted pair, its targets and the decoys; return names and targets.

    ``TNF`` and the decoy ligands go on the genes most ``sender`` cells express, ``TNFRSF1A`` and
    the decoy receptors on the genes most monocytes express, among the genes that the
    simulator's sub-states do not change; ``targets`` are named after genes of the TNF response
    that no other mapped set or pair names; each decoy receptor with Hallmark targets gets as
    many of its targets on other unchanged genes. Other genes keep their names.
    """
    hallmark = lucidvi.data.gene_sets("hallmark")
    mapped = lucidvi.data.receptor_targets("human")
    resource = lucidvi.data.ligand_receptor_pairs("human")
    # genes of any pair or mapped receptor: never a target name (no pair is named by accident)
    named = {g for column in ("ligand_subunits", "receptor_subunits") for s in resource[column]
             for g in s} | set(mapped["receptor"])  # fmt: skip
    shifted = set(adata.uns["spatial_niches"]["genes"]["gene"])
    names = np.asarray(adata.var_names, dtype=object).copy()
    unused = [j for j, gene in enumerate(names) if gene not in shifted and j not in set(targets)]
    fraction = {sender: _fraction(adata, sender), RECEIVER: _fraction(adata, RECEIVER)}
    for ligand, receptor in [PLANTED, *DECOYS]:
        for genes, expressing in ((ligand, sender), (receptor, RECEIVER)):
            for gene in genes.split("_"):  # the most expressed unused gene of the type
                j = max(unused, key=lambda j: fraction[expressing][j])
                names[j] = gene
                unused.remove(j)
    others = set(mapped.loc[mapped["gene_set"] != RESPONSE, "target"]) | named
    response = [g for g in hallmark[RESPONSE] if g not in others][: len(targets)]
    names[targets] = response
    for gene_set in mapped.loc[mapped["gene_set"] != RESPONSE, "gene_set"].unique():
        if not set(mapped.loc[mapped["gene_set"] == gene_set, "receptor"]) & set(names):
            continue
        symbols = [g for g in hallmark[gene_set] if g not in set(hallmark[RESPONSE]) | named]
        symbols = [g for g in symbols if g not in set(names)][: len(targets)]
        chosen = rng.choice(unused, len(symbols), replace=False)
        names[chosen] = symbols
        unused = [j for j in unused if j not in set(chosen)]
    assert len(set(names)) == len(names)
    return names, response


@pytest.fixture(scope="module")
def planted_pair():
    """InteractionVI on NK cells that change nearby monocytes through TNF -> TNFRSF1A.

    Real CBMC cells (the 150 most expressed genes) on ``simulate_spatial_niches``' layout: the
    monocytes within 8 units of an NK cell ("near") get 15 genes at about 4 times their
    expression, the planted targets. Genes are named in ``var["symbol"]`` (``var_names`` stay
    ``gene_...``): ``TNF`` on the gene most NK cells express, ``TNFRSF1A`` on an unchanged
    monocyte gene, the 15 targets after genes of the TNF response only; decoy pairs the same
    way, the decoy receptors' Hallmark targets on 15 unchanged genes each. Every type keeps
    its niche (``calibrate=False``) and 3 epochs learn a change this large: the test reads the
    ranking, not the calibration or the training.
    """
    source = lucidvi.data.cbmc()
    top = np.argsort(-np.asarray(source.layers["counts"].sum(axis=0)).ravel())[:150]
    source = source[:, np.sort(top)].copy()
    adata = lucidvi.data.simulate_spatial_niches(
        source, "cell_type", [(SENDER, RECEIVER, 8.0)], n_cells=1200, seed=0
    )
    rng = np.random.default_rng(0)
    targets = _boost(adata, rng)
    adata.var["symbol"], response = _symbols(adata, targets, SENDER, rng)
    scvi.settings.seed = 0
    lucidvi.model.InteractionVI.setup_anndata(
        adata, labels_key="cell_type", layer="counts", n_neighbors=8
    )
    model = lucidvi.model.InteractionVI(adata, n_heads=4, n_latent=16)
    model.train(max_epochs=3, batch_size=128, calibrate=False, enable_progress_bar=False)
    return model, response


@pytest.fixture(scope="module")
def result(planted_pair):
    model, _ = planted_pair
    return LigandReceptorPairs.compute(
        model, sender_type=SENDER, receiver_type=RECEIVER, gene_symbols="symbol"
    )


def test_the_planted_pair_ranks_first(planted_pair, result):
    _, response = planted_pair
    table = result.table
    first = table.iloc[0]
    assert (first["ligand"], first["receptor"], first["rank"]) == (*PLANTED, 1)
    # its targets are the 15 genes with the largest planted change: no random set of genes
    # reaches their mean evidence, and the smallest p-value survives Bonferroni over the table
    assert first["p_value"] == pytest.approx(1 / (result.n_permutations + 1))
    assert first["p_value"] * len(table) < result.alpha and first["significant"]
    assert set(first["top_genes"].split(";")) <= set(response)
    assert first["target_score"] > first["receptor_score"]  # the receptor itself is unchanged
    pairs = set(zip(table["ligand"], table["receptor"], strict=True))
    assert set(DECOYS) <= pairs  # every decoy was a candidate and ranked below
    assert (table["rank"] == np.arange(1, len(table) + 1)).all()
    assert table["p_value"].is_monotonic_increasing


def test_fractions_targets_and_columns_follow_the_data(planted_pair, result):
    model, _ = planted_pair
    adata = model.adata
    symbols = adata.var["symbol"].to_numpy()
    counts = adata.layers["counts"]
    types = adata.obs["cell_type"].to_numpy()

    def fraction(gene, cell_type):
        column = counts[types == cell_type][:, list(symbols).index(gene)]
        return column.getnnz() / column.shape[0]

    first = result.table.iloc[0]
    assert first["ligand_fraction"] == pytest.approx(fraction("TNF", SENDER))
    assert first["receptor_fraction"] == pytest.approx(fraction("TNFRSF1A", RECEIVER))
    mapped = lucidvi.data.receptor_targets("human")
    expected = set(mapped.loc[mapped["receptor"] == "TNFRSF1A", "target"]) & set(symbols)
    assert first["n_targets"] == len(expected - {"TNF", "TNFRSF1A"})
    table = result.table
    assert (table["ligand_fraction"] >= 0.1).all() and (table["receptor_fraction"] >= 0.1).all()
    assert (table["q_value"] >= table["p_value"]).all()
    assert (table["significant"] == (table["q_value"] < result.alpha)).all()
    assert (table["sender_type"] == SENDER).all() and (table["receiver_type"] == RECEIVER).all()
    no_targets = table[table["n_targets"] == 0]
    assert set(zip(no_targets["ligand"], no_targets["receptor"], strict=True)) >= {
        ("LGALS9", "CD44"),
        ("MIF", "CD74"),
    }
    assert no_targets["target_score"].isna().all()
    np.testing.assert_allclose(no_targets["score"], no_targets["receptor_score"])
    assert result.resource == "cellphonedb (human)" and result.targets == "hallmark"
    assert result.n_permutations == max(1000, int(np.ceil(len(table) / result.alpha)))


def test_user_targets_and_tables_move_the_evidence_to_their_receptor(planted_pair):
    model, response = planted_pair
    common = {"sender_type": SENDER, "receiver_type": RECEIVER, "gene_symbols": "symbol"}
    mapping = LigandReceptorPairs.compute(model, **common, targets={"NOTCH1": response})
    table = pd.DataFrame({"receptor": "NOTCH1", "target": response})
    as_table = LigandReceptorPairs.compute(model, **common, targets=table)
    pd.testing.assert_frame_equal(mapping.table, as_table.table)
    assert mapping.targets == "custom"
    first = mapping.table.iloc[0]
    assert first["receptor"] == "NOTCH1" and first["n_targets"] == N_TARGETS
    assert (mapping.table.loc[mapping.table["receptor"] != "NOTCH1", "n_targets"] == 0).all()
    # a (ligand, receptor) key gives the targets to that pair only
    by_pair = LigandReceptorPairs.compute(model, **common, targets={PLANTED: response})
    assert by_pair.table["n_targets"].astype(bool).sum() == 1
    assert tuple(by_pair.table.iloc[0][["ligand", "receptor"]]) == PLANTED
    # a user's resource: the pairs it lists, and nothing else
    mine = pd.DataFrame({"ligand": ["TNF", "IFNG"], "receptor": ["TNFRSF1A", "IFNGR1_IFNGR2"]})
    own = LigandReceptorPairs.compute(model, **common, resource=mine)
    assert own.resource == "custom" and len(own.table) == 2
    assert tuple(own.table.iloc[0][["ligand", "receptor"]]) == PLANTED
    receptor_only = LigandReceptorPairs.compute(model, **common, targets=None)
    assert (receptor_only.table["n_targets"] == 0).all() and receptor_only.targets == "none"


def test_mouse_symbols_read_the_mouse_tables(planted_pair, result):
    model, _ = planted_pair
    adata = model.adata.copy()
    adata.var["mouse"] = [gene[:1] + gene[1:].lower() for gene in adata.var["symbol"]]
    held_out = np.setdiff1d(np.arange(adata.n_obs), model.train_indices)
    mouse = LigandReceptorPairs.compute(
        model, sender_type=SENDER, receiver_type=RECEIVER, adata=adata, indices=held_out,
        gene_symbols="mouse",
    )  # fmt: skip
    assert mouse.resource == "cellphonedb (mouse)"
    first = mouse.table.iloc[0]
    assert (first["ligand"], first["receptor"], first["rank"]) == ("Tnf", "Tnfrsf1a", 1)
    assert first["n_targets"] == result.table.iloc[0]["n_targets"]  # Hallmark, in mouse case


def test_bad_inputs_get_clear_errors(planted_pair, niche_dropped):
    model, _ = planted_pair
    pair = {"sender_type": SENDER, "receiver_type": RECEIVER}
    with pytest.raises(ValueError, match=r"receiver_type: unknown cell types \['Monocyte'\]"):
        LigandReceptorPairs.compute(model, sender_type=SENDER, receiver_type="Monocyte")
    with pytest.raises(ValueError, match="Cannot tell the organism"):
        LigandReceptorPairs.compute(model, **pair)  # var_names are gene_000, ...
    with pytest.raises(ValueError, match=r"No pair of 1677 in cellphonedb \(human\)"):
        LigandReceptorPairs.compute(model, **pair, organism="human")
    adata = model.adata.copy()
    adata.var["ensembl"] = [f"ENSG{i:011d}" for i in range(adata.n_vars)]
    with pytest.raises(ValueError, match="look like Ensembl IDs: pass gene_symbols"):
        LigandReceptorPairs.compute(
            model, **pair, adata=adata, gene_symbols="ensembl", organism="human"
        )
    with pytest.raises(ValueError, match="gene_symbols='name' is not a column"):
        LigandReceptorPairs.compute(model, **pair, gene_symbols="name")
    with niche_dropped(model, RECEIVER), pytest.raises(ValueError, match="keeps no niche"):
        LigandReceptorPairs.compute(model, **pair, gene_symbols="symbol")
    with pytest.raises(ValueError, match="min_ligand_fraction must lie in"):
        LigandReceptorPairs.compute(model, **pair, gene_symbols="symbol", min_ligand_fraction=2)
    with pytest.raises(ValueError, match="alternative must be"):
        LigandReceptorPairs.compute(model, **pair, gene_symbols="symbol", alternative="less")
    with pytest.raises(ValueError, match="targets must be 'hallmark'"):
        LigandReceptorPairs.compute(model, **pair, gene_symbols="symbol", targets="nichenet")
    with pytest.raises(ValueError, match="needs a 'target' column"):
        bad = pd.DataFrame({"receptor": ["NOTCH1"], "gene": ["HES1"]})
        LigandReceptorPairs.compute(model, **pair, gene_symbols="symbol", targets=bad)
    with pytest.raises(TypeError, match="positional arguments"):
        LigandReceptorPairs.compute(model, SENDER, RECEIVER)  # which is which: keywords only
    untrained = lucidvi.model.InteractionVI(model.adata, n_heads=2, n_latent=4)
    with pytest.raises(RuntimeError, match="untrained model"):
        LigandReceptorPairs.compute(untrained, **pair, gene_symbols="symbol")


@pytest.mark.slow
def test_the_simulators_own_substates_rank_the_planted_pair_first(planted_niche):
    """B -> CD14+ Mono as ``simulate_spatial_niches`` plants it, trained to convergence.

    The near monocytes are real cells of another sub-state, nothing boosted; the genes higher in
    it (the simulator's planted genes with a positive fold change) are named TNF-response genes.
    """
    model = planted_niche
    adata = model.adata.copy()  # the session's model data stay as they are
    genes = adata.uns["spatial_niches"]["genes"]
    targets = adata.var_names.get_indexer(genes.loc[genes["log2_fold_change"] > 0, "gene"])
    adata.var["symbol"], response = _symbols(adata, targets, "B", np.random.default_rng(0))
    held_out = np.setdiff1d(np.arange(adata.n_obs), model.train_indices)
    result = LigandReceptorPairs.compute(
        model,
        sender_type="B",
        receiver_type=RECEIVER,
        adata=adata,
        indices=held_out,
        gene_symbols="symbol",
    )
    first = result.table.iloc[0]
    assert (first["ligand"], first["receptor"], first["rank"]) == (*PLANTED, 1)
    assert first["significant"]
    assert set(first["top_genes"].split(";")) & set(response)

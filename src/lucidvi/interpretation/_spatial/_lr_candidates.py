"""Ligand-receptor pairs a panel can test: resource, targets and expression by cell type."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from anndata import AnnData
from scvi import REGISTRY_KEYS

from lucidvi._matrix_rows import default_block_rows, read_rows
from lucidvi.data import ligand_receptor_pairs, receptor_targets

if TYPE_CHECKING:
    from lucidvi.model import InteractionVI

Organism = Literal["human", "mouse"]
# a receptor gene, a receptor complex ("A_B") or a (ligand, receptor) pair -> target genes
Targets = Literal["hallmark"] | Mapping[str | tuple[str, str], Iterable[str]] | pd.DataFrame
_ENSEMBL = re.compile(r"^ENS[A-Z]*G\d{6,}")


def panel_symbols(adata: AnnData, gene_symbols: str | None) -> np.ndarray:
    """Gene symbol of each gene of the panel: ``var_names``, or the column ``gene_symbols``."""
    if gene_symbols is None:
        return np.asarray(adata.var_names, dtype=object).astype(str)
    if gene_symbols not in adata.var.columns:
        raise ValueError(
            f"gene_symbols={gene_symbols!r} is not a column of adata.var; the columns are "
            f"{list(adata.var.columns)}."
        )
    return adata.var[gene_symbols].astype(str).to_numpy()


def guess_organism(symbols: np.ndarray) -> Organism:
    """``"human"`` or ``"mouse"``: whose CellPhoneDB genes the panel shares more of.

    Raises
    ------
    ValueError
        If the panel shares no gene with either (e.g. Ensembl IDs instead of symbols) or as
        many with both.
    """
    panel = set(symbols)
    shared = {
        organism: len(panel & _resource_genes(ligand_receptor_pairs(organism)))
        for organism in ("human", "mouse")
    }
    if shared["human"] == shared["mouse"]:
        raise ValueError(
            f"Cannot tell the organism from the gene names (they share {shared['human']} "
            f"genes with human and with mouse CellPhoneDB){_symbol_hint(symbols)} Pass "
            "organism='human' or 'mouse'."
        )
    return "human" if shared["human"] > shared["mouse"] else "mouse"


def resolve_pairs(
    resource: str | pd.DataFrame, organism: Organism, symbols: np.ndarray
) -> tuple[pd.DataFrame, str]:
    """Keep the resource's pairs whose every subunit is on the panel; name the resource.

    Raises
    ------
    ValueError
        If no pair of the resource has all its subunits on the panel.
    """
    pairs = ligand_receptor_pairs(organism, resource)
    if isinstance(resource, pd.DataFrame):
        name = "custom"
    else:
        name = f"{resource} ({organism})" if resource == "cellphonedb" else resource
    panel = set(symbols)
    on_panel = np.array(
        [
            set(ligand) <= panel and set(receptor) <= panel
            for ligand, receptor in zip(
                pairs["ligand_subunits"], pairs["receptor_subunits"], strict=True
            )
        ],
        dtype=bool,
    )
    if not on_panel.any():
        shared = len(panel & _resource_genes(pairs))
        raise ValueError(
            f"No pair of {len(pairs)} in {name} has its ligand and receptor (every subunit) "
            f"on the panel of {len(symbols)} genes ({shared} of its genes are on it)."
            + _symbol_hint(symbols)
        )
    return pairs[on_panel].reset_index(drop=True), name


def _resource_genes(pairs: pd.DataFrame) -> set[str]:
    return {
        g for column in ("ligand_subunits", "receptor_subunits") for s in pairs[column] for g in s
    }


def _symbol_hint(symbols: np.ndarray) -> str:
    if np.mean([bool(_ENSEMBL.match(s)) for s in symbols]) > 0.5:
        return (
            ". The gene names look like Ensembl IDs: pass gene_symbols=<the adata.var column "
            "of gene symbols>."
        )
    return ". Are the gene names symbols of the resource's organism?"


@dataclass(frozen=True)
class TargetLookup:
    """Target genes by receptor (gene or complex), by ligand and by ``(ligand, receptor)``."""

    by_receptor: dict[str, set[str]]
    by_ligand: dict[str, set[str]]
    by_pair: dict[tuple[str, str], set[str]]

    def of(self, ligand: str, receptor: str, ligands: tuple, receptors: tuple) -> set[str]:
        """Targets of one pair: of the pair, the receptor or any subunit, the ligand or any."""
        found = set(self.by_pair.get((ligand, receptor), ()))
        for key in (receptor, *receptors):
            found |= self.by_receptor.get(key, set())
        for key in (ligand, *ligands):
            found |= self.by_ligand.get(key, set())
        return found


def resolve_targets(targets: Targets | None, organism: Organism) -> tuple[TargetLookup, str]:
    """Turn the ``targets`` argument into a :class:`TargetLookup` and a name for it.

    ``"hallmark"``: :func:`lucidvi.data.receptor_targets` of the organism. A mapping: string
    keys are receptor genes or complexes, tuple keys ``(ligand, receptor)`` pairs. A DataFrame:
    a ``target`` column and a ``receptor`` column, a ``ligand`` column or both (then pairs).
    ``None``: no targets.
    """
    by_receptor, by_ligand = defaultdict(set), defaultdict(set)
    by_pair: dict[tuple[str, str], set[str]] = defaultdict(set)
    if targets is None:
        return TargetLookup({}, {}, {}), "none"
    if isinstance(targets, str):
        if targets != "hallmark":
            raise ValueError(
                f"targets must be 'hallmark', a mapping, a DataFrame or None, got {targets!r}."
            )
        targets, name = receptor_targets(organism)[["receptor", "target"]], "hallmark"
    else:
        name = "custom"
    if isinstance(targets, pd.DataFrame):
        keys = [c for c in ("ligand", "receptor") if c in targets.columns]
        if "target" not in targets.columns or not keys:
            raise ValueError(
                "A targets table needs a 'target' column and a 'receptor' and/or 'ligand' "
                f"column, got {list(targets.columns)}."
            )
        store = {"receptor": by_receptor, "ligand": by_ligand}.get("".join(keys), by_pair)
        rows = targets.dropna(subset=[*keys, "target"])[[*keys, "target"]].astype(str)
        for *key, target in rows.itertuples(index=False):
            store[key[0] if len(key) == 1 else tuple(key)].add(target)
    elif isinstance(targets, Mapping):
        for key, genes in targets.items():
            if isinstance(genes, str):
                raise TypeError(f"The targets of {key!r} must be a list of genes, not a string.")
            if isinstance(key, tuple) and len(key) == 2:
                by_pair[(str(key[0]), str(key[1]))] |= {str(g) for g in genes}
            elif isinstance(key, str):
                by_receptor[key] |= {str(g) for g in genes}
            else:
                raise TypeError(
                    f"A targets key must be a receptor (str) or a (ligand, receptor) tuple, "
                    f"got {key!r}."
                )
    else:
        raise TypeError(
            "targets must be 'hallmark', a mapping, a DataFrame or None, got "
            f"{type(targets).__name__}."
        )
    return TargetLookup(dict(by_receptor), dict(by_ligand), dict(by_pair)), name


def expressed_fractions(
    model: InteractionVI, adata: AnnData, types: list[str]
) -> dict[str, np.ndarray]:
    """Per cell type, the share of its cells (all of ``adata``) with a positive value per gene.

    Parameters
    ----------
    model
        The model, whose registered expression is read (block by block).
    adata
        Registered data.
    types
        Cell types.

    Returns
    -------
    Cell type -> one fraction per gene.
    """
    manager = model.get_anndata_manager(adata, required=True)
    matrix = manager.get_from_registry(REGISTRY_KEYS.X_KEY)
    codes = np.asarray(manager.get_from_registry(REGISTRY_KEYS.LABELS_KEY)).ravel()
    step = default_block_rows(matrix.shape[1])
    fractions = {}
    for cell_type in types:
        rows = np.flatnonzero(codes == model.labels.index(cell_type))
        positive = np.zeros(matrix.shape[1])
        for start in range(0, len(rows), step):
            block = read_rows(matrix, rows[start : start + step])
            positive += np.asarray((block > 0).sum(axis=0), dtype=np.float64).ravel()
        fractions[cell_type] = positive / max(len(rows), 1)
    return fractions


def expressed_candidates(
    pairs: pd.DataFrame,
    lookup: TargetLookup,
    column: dict[str, int],
    sender_fraction: np.ndarray,
    receiver_fraction: np.ndarray,
    min_ligand: float,
    min_receptor: float,
) -> list[dict[str, Any]]:
    """List the pairs the senders and receivers express, with the panel columns of their genes.

    Parameters
    ----------
    pairs
        Pairs with every subunit on the panel (:func:`resolve_pairs`).
    lookup
        Their known targets.
    column
        Panel column of each gene symbol.
    sender_fraction, receiver_fraction
        Share of the senders and of the receivers expressing each gene.
    min_ligand, min_receptor
        Least share of the senders expressing every ligand subunit, and of the receivers
        every receptor subunit.

    Returns
    -------
    One dict per pair kept: ``ligand``, ``receptor``, ``interaction_type``,
    ``ligand_fraction``, ``receptor_fraction``, ``receptor_genes`` and ``target_genes``
    (panel columns; the ligand's subunits left out of both, the receptor's out of the
    targets).
    """
    found = []
    for row in pairs.itertuples(index=False):
        ligand = [column[g] for g in row.ligand_subunits]
        receptor = [column[g] for g in row.receptor_subunits]
        ligand_fraction = float(sender_fraction[ligand].min())
        receptor_fraction = float(receiver_fraction[receptor].min())
        if ligand_fraction < min_ligand or receptor_fraction < min_receptor:
            continue
        receptor_genes = sorted(set(receptor) - set(ligand))
        targets = lookup.of(row.ligand, row.receptor, row.ligand_subunits, row.receptor_subunits)
        target_genes = sorted(
            {column[t] for t in targets if t in column} - set(receptor) - set(ligand)
        )
        if not receptor_genes and not target_genes:
            continue
        found.append(
            {
                "ligand": row.ligand,
                "receptor": row.receptor,
                "interaction_type": row.interaction_type,
                "ligand_fraction": ligand_fraction,
                "receptor_fraction": receptor_fraction,
                "receptor_genes": np.asarray(receptor_genes, dtype=np.int64),
                "target_genes": np.asarray(target_genes, dtype=np.int64),
            }
        )
    return found

"""Gene sets and the over-representation test behind :class:`GeneProgramEnrichment`."""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

# the bundled collections (lucidvi.data.gene_sets); any other name is an Enrichr library
BUNDLED_GENE_SETS = ("hallmark", "cell_cycle")
# the columns of the enrichment table and their dtypes, in order
ENRICHMENT_COLUMNS: dict[str, str] = {
    "list": "object",
    "term": "object",
    "overlap": "int64",
    "term_size": "int64",
    "list_size": "int64",
    "gene_ratio": "float64",
    "p_value": "float64",
    "p_value_adj": "float64",
    "odds_ratio": "float64",
    "genes": "object",
}


def resolve_gene_sets(
    gene_sets: Literal["hallmark", "cell_cycle"] | str | os.PathLike | Mapping[str, Iterable[str]],
) -> tuple[dict[str, list[str]], str]:
    """Turn the ``gene_sets`` argument of :meth:`GeneProgramEnrichment.compute` into a dict.

    Parameters
    ----------
    gene_sets
        ``"hallmark"`` or ``"cell_cycle"`` (bundled, see :func:`lucidvi.data.gene_sets`), a
        dict of set name to genes, a path to a ``.gmt``/``.gmt.gz`` file, or the name of an
        Enrichr library (downloaded with :func:`gseapy.get_library`, needs the network).

    Returns
    -------
    ``(sets, name)``: set name to genes, and a name for the collection (``"custom"`` for a dict,
    the file name for a GMT file).

    Raises
    ------
    FileNotFoundError
        If a string or path ending in ``.gmt``/``.gmt.gz`` does not exist.
    ConnectionError
        If an Enrichr library cannot be downloaded because the service is unreachable.
    """
    from lucidvi.data import gene_sets as bundled_gene_sets
    from lucidvi.data import read_gmt

    if isinstance(gene_sets, Mapping):
        sets = {str(term): [str(gene) for gene in genes] for term, genes in gene_sets.items()}
        return sets, "custom"
    if isinstance(gene_sets, os.PathLike) or str(gene_sets).endswith((".gmt", ".gmt.gz")):
        path = Path(gene_sets)
        if not path.is_file():
            raise FileNotFoundError(f"Gene-set file {str(path)!r} does not exist.")
        return read_gmt(path), path.name
    if not isinstance(gene_sets, str):
        raise TypeError(
            "gene_sets must be 'hallmark', 'cell_cycle', a dict of set name to genes, a .gmt "
            f"path or an Enrichr library name, got {type(gene_sets).__name__}."
        )
    if gene_sets in BUNDLED_GENE_SETS:
        return bundled_gene_sets(gene_sets), gene_sets
    return _download_enrichr_library(gene_sets), gene_sets


def _download_enrichr_library(name: str) -> dict[str, list[str]]:
    import gseapy
    import requests

    offline = "pass 'hallmark', 'cell_cycle', a dict of gene sets or a .gmt path for offline use"
    try:
        # no size filter: get_library drops sets of more than 2,000 genes by default
        sets = gseapy.get_library(name, organism="Human", min_size=0, max_size=sys.maxsize)
    except requests.exceptions.RequestException as error:
        raise ConnectionError(
            f"Could not reach the Enrichr web service to download the library {name!r} "
            f"({type(error).__name__}); {offline}."
        ) from error
    except Exception as error:  # unknown names: ValueError; failed downloads: bare Exception
        raise ValueError(
            f"Could not get the Enrichr library {name!r} ({error}); see "
            f"gseapy.get_library_name() for the names, or {offline}."
        ) from error
    return {term: list(genes) for term, genes in sets.items()}


def enrich_gene_list(
    genes: list[str], gene_sets: Mapping[str, list[str]], universe: set[str] | int
) -> tuple[pd.DataFrame, int]:
    """Hypergeometric over-representation test of one gene list against every gene set.

    Parameters
    ----------
    genes
        Unique genes of the list.
    gene_sets
        Set name to genes, already restricted to the universe when it is a set of genes.
    universe
        The genes that could have been in the list, or their number.

    Returns
    -------
    ``(table, n_tested)``: one row per term sharing at least one gene with the list (columns as
    in :class:`GeneProgramEnrichment`, without ``list``), and the number of terms tested.
    """
    from gseapy.stats import calc_pvalues
    from scipy.stats import false_discovery_control

    testable = {term: members for term, members in gene_sets.items() if members}
    query = [gene for gene in genes if gene in universe] if isinstance(universe, set) else genes
    columns = [name for name in ENRICHMENT_COLUMNS if name != "list"]
    hits = list(calc_pvalues(query=set(query), gene_sets=testable, background=universe))
    if not hits:
        empty = pd.DataFrame({name: pd.Series(dtype=ENRICHMENT_COLUMNS[name]) for name in columns})
        return empty, len(testable)
    terms, p_values, odds_ratios, overlaps, term_sizes, overlap_genes = hits
    p_values = np.asarray(p_values, dtype=np.float64)
    # BH over every testable term: terms without overlap have p = 1 but were tested too.
    padded = np.concatenate([p_values, np.ones(len(testable) - len(p_values))])
    p_adjusted = false_discovery_control(padded, method="bh")[: len(p_values)]
    rank = {gene: i for i, gene in enumerate(query)}
    table = pd.DataFrame(
        {
            "term": list(terms),
            "overlap": np.asarray(overlaps, dtype=np.int64),
            "term_size": np.asarray(term_sizes, dtype=np.int64),
            "list_size": np.full(len(terms), len(query), dtype=np.int64),
            "gene_ratio": np.asarray(overlaps, dtype=np.float64) / len(query),
            "p_value": p_values,
            "p_value_adj": np.maximum(p_adjusted, p_values),
            "odds_ratio": np.asarray(odds_ratios, dtype=np.float64),
            "genes": [";".join(sorted(hit, key=rank.__getitem__)) for hit in overlap_genes],
        }
    )
    return table, len(testable)


def validate_gene_lists(gene_lists: Mapping[str, Iterable[str]]) -> dict[str, list[str]]:
    if not isinstance(gene_lists, Mapping):
        raise TypeError(f"gene_lists must be a dict of name to genes, got {type(gene_lists)}.")
    if len(gene_lists) == 0:
        raise ValueError("gene_lists is empty: pass at least one named list of genes.")
    lists: dict[str, list[str]] = {}
    for name, genes in gene_lists.items():
        if isinstance(genes, str) or not isinstance(genes, Iterable):
            raise TypeError(f"Gene list {name!r} must be a list of gene names, got {genes!r}.")
        unique = list(dict.fromkeys(str(gene) for gene in genes))
        if not unique:
            raise ValueError(f"Gene list {name!r} is empty.")
        if str(name) in lists:
            raise ValueError(f"Gene list name {str(name)!r} appears twice.")
        lists[str(name)] = unique
    return lists


def gene_universe(
    background: Iterable[str] | int | None, gene_sets: Mapping[str, list[str]]
) -> set[str] | int:
    if background is None:
        return set().union(*map(set, gene_sets.values()))
    if isinstance(background, bool):
        raise TypeError("background must be None, a list of genes or an int, not a bool.")
    if isinstance(background, int | np.integer):
        if background < 1:
            raise ValueError(f"background must be a positive number of genes, got {background}.")
        return int(background)
    if isinstance(background, str) or not isinstance(background, Iterable):
        raise TypeError(
            "background must be None, a list of genes (e.g. adata.var_names) or an int, "
            f"got {background!r}."
        )
    universe = {str(gene) for gene in background}
    if not universe & set().union(*map(set, gene_sets.values())):
        raise ValueError(
            "background shares no gene with the gene sets (symbols are matched as given)."
        )
    return universe


def warn_no_overlap(list_name: str, genes: list[str], annotated: set[str]) -> None:
    hint = ""
    if annotated.intersection(gene.upper() for gene in genes):
        hint = " Gene symbols are matched as given: upper-case them to match these sets."
    warnings.warn(
        f"No gene of the list {list_name!r} is in any gene set (within the background); "
        f"the list gets no row in the table.{hint}",
        UserWarning,
        stacklevel=3,
    )

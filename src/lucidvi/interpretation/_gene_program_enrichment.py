"""Over-representation of gene sets in gene lists, e.g. the top genes of each latent factor."""

from __future__ import annotations

import logging
import os
import sys
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from ._result import TableResult

if TYPE_CHECKING:
    from collections.abc import Iterator

    from matplotlib.axes import Axes

logger = logging.getLogger(__name__)

_BUNDLED = ("hallmark", "cell_cycle")
_COLUMNS: dict[str, str] = {
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
    if gene_sets in _BUNDLED:
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
    columns = [name for name in _COLUMNS if name != "list"]
    hits = list(calc_pvalues(query=set(query), gene_sets=testable, background=universe))
    if not hits:
        empty = pd.DataFrame({name: pd.Series(dtype=_COLUMNS[name]) for name in columns})
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


def _validate_gene_lists(gene_lists: Mapping[str, Iterable[str]]) -> dict[str, list[str]]:
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


def _universe(
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


@dataclass(frozen=True, eq=False)
class GeneProgramEnrichment(TableResult):
    """Over-representation of gene sets in named gene lists (hypergeometric test).

    Typical lists are the genes loading most positively and most negatively on each latent
    factor; the result says which known programmes (e.g. MSigDB Hallmark sets) each list
    recovers.

    Attributes
    ----------
    table
        Tidy table, one row per list and term sharing at least one gene with the list, sorted by
        list (input order) then ``p_value``: ``list``, ``term``, ``overlap`` (genes of the list in
        the term), ``term_size`` (genes of the term in the universe), ``list_size`` (genes of the
        list in the universe), ``gene_ratio`` (``overlap / list_size``), ``p_value``,
        ``p_value_adj`` (Benjamini-Hochberg within each list), ``odds_ratio`` and ``genes``
        (the overlapping genes, ``;``-joined, in list order).
    gene_sets_name
        Name of the gene-set collection (``"custom"`` for a dict, the file name for a GMT).
    list_names
        Names of the gene lists, in input order, including lists without any row.
    n_tested
        Number of terms tested for each list (the number of terms in the Benjamini-Hochberg
        correction).
    """

    table: pd.DataFrame
    gene_sets_name: str
    list_names: tuple[str, ...]
    n_tested: dict[str, int]

    def __post_init__(self):
        if list(self.table.columns) != list(_COLUMNS):
            raise ValueError(f"table must have the columns {list(_COLUMNS)}.")
        if len(set(self.list_names)) != len(self.list_names):
            raise ValueError("list_names must be unique.")
        unknown = set(self.table["list"]) - set(self.list_names)
        if unknown:
            raise ValueError(f"table has lists missing from list_names: {sorted(unknown)}.")
        if set(self.n_tested) != set(self.list_names):
            raise ValueError("n_tested must have one entry per list name.")
        p, p_adj = self.table["p_value"].to_numpy(), self.table["p_value_adj"].to_numpy()
        if np.any((p < 0) | (p > 1) | (p_adj < p) | (p_adj > 1)):
            raise ValueError("p-values must satisfy 0 <= p_value <= p_value_adj <= 1.")
        overlap = self.table["overlap"].to_numpy()
        if np.any((overlap < 1) | (overlap > self.table[["term_size", "list_size"]].min(axis=1))):
            raise ValueError("overlap must be at least 1 and at most term_size and list_size.")

    @classmethod
    def compute(
        cls,
        gene_lists: Mapping[str, Iterable[str]],
        gene_sets: Literal["hallmark", "cell_cycle"]
        | str
        | os.PathLike
        | Mapping[str, Iterable[str]] = "hallmark",
        background: Iterable[str] | int | None = None,
    ) -> GeneProgramEnrichment:
        """Test every gene list for over-representation of every gene set.

        Each list is tested against each term with the one-sided hypergeometric test of
        :func:`gseapy.stats.calc_pvalues` (the test of :func:`gseapy.enrich`), offline.

        Parameters
        ----------
        gene_lists
            List name to genes, e.g. ``{"Z_0+": [...], "Z_0-": [...]}``. Duplicated genes are
            counted once. Gene symbols are matched exactly as given (case-sensitive: the bundled
            sets hold human symbols, so mouse ``Cd3e`` does not match ``CD3E``).
        gene_sets
            ``"hallmark"`` or ``"cell_cycle"`` (bundled, offline), a dict of set name to genes,
            a path to a ``.gmt``/``.gmt.gz`` file, or any other string as the name of an Enrichr
            library (e.g. ``"GO_Biological_Process_2023"``), which is downloaded from the Enrichr
            web service and then tested offline like the others.
        background
            The universe of genes that could have been in the lists. Recommended: the genes the
            lists were chosen from, e.g. ``adata.var_names`` (see Notes). ``None`` uses every
            gene of every gene set (gseapy's default); an int gives only the universe's size.

        Returns
        -------
        The enrichment of every list.

        Raises
        ------
        ValueError
            If ``gene_lists`` or one of its lists is empty, or ``background`` does not fit.
        ConnectionError
            If an Enrichr library name is given and the web service cannot be reached.

        Warns
        -----
        UserWarning
            For a list none of whose genes is in any gene set (within the universe); that list
            gets no row in the table.

        Notes
        -----
        With a gene universe (``None`` or a list), genes of the lists outside it are dropped and
        the gene sets are restricted to it, so ``list_size`` and ``term_size`` count genes in the
        universe. Pass ``background=adata.var_names`` (or the genes the lists were ranked from):
        the right null is "a list drawn at random from the measured genes", and with ``None``
        the universe includes genes that were never measured while excluding measured genes
        outside every set, so any term over-represented among the measured genes (say immune
        sets in a panel of blood cells) would look enriched in every list. With an int ``N``,
        the lists are kept whole and the sets unrestricted; ``N`` must be at least the number of
        distinct genes in the sets and the list.

        ``odds_ratio`` is gseapy's, with a Haldane-Anscombe correction (0.5 added to every cell
        of the 2 x 2 table). ``p_value_adj`` is Benjamini-Hochberg within each list over all
        ``n_tested`` terms sharing a gene with the universe; gseapy's own ``Adjusted P-value``
        corrects only over the terms with at least one overlapping gene and is therefore smaller
        (anti-conservative). Unlike :func:`gseapy.enrich`, genes are never upper-cased and
        numeric names are not turned into Entrez IDs.

        Examples
        --------
        >>> top = GeneLoadings.compute(model).loadings["Z_0"].sort_values()
        >>> lists = {"Z_0+": top.index[-50:], "Z_0-": top.index[:50]}
        >>> res = GeneProgramEnrichment.compute(lists, "hallmark", background=model.adata.var_names)
        >>> res.top("Z_0+", 5)
        >>> res.plot_diverging("Z_0+", "Z_0-")
        """
        from scvi.utils import track

        lists = _validate_gene_lists(gene_lists)
        sets, name = resolve_gene_sets(gene_sets)
        if not sets:
            raise ValueError("gene_sets holds no gene set.")
        universe = _universe(background, sets)
        if isinstance(universe, set):
            sets = {
                term: [gene for gene in genes if gene in universe] for term, genes in sets.items()
            }
        annotated = set().union(*map(set, sets.values()))
        tables, n_tested = [], {}
        for list_name, genes in track(
            lists.items(), description="Enrichment", disable=len(lists) < 2
        ):
            if isinstance(universe, int) and universe < len(annotated | set(genes)):
                raise ValueError(
                    f"background={universe} is smaller than the {len(annotated | set(genes))} "
                    f"distinct genes in the gene sets and the list {list_name!r}."
                )
            if isinstance(universe, set) and not universe.issuperset(genes):
                outside = sum(gene not in universe for gene in genes)
                logger.info(
                    "%d of %d genes of %r are outside the background.",
                    outside,
                    len(genes),
                    list_name,
                )
            if not annotated.intersection(genes):
                _warn_no_overlap(list_name, genes, annotated)
            table, n_tested[list_name] = enrich_gene_list(genes, sets, universe)
            tables.append(table.assign(list=list_name))
        table = pd.concat(tables, ignore_index=True)[list(_COLUMNS)].astype(_COLUMNS)
        order = {list_name: i for i, list_name in enumerate(lists)}
        table = table.sort_values(
            ["list", "p_value", "term"], key=lambda c: c.map(order) if c.name == "list" else c
        ).reset_index(drop=True)
        return cls(table=table, gene_sets_name=name, list_names=tuple(lists), n_tested=n_tested)

    def to_dataframe(self) -> pd.DataFrame:
        """Return the tidy table (a copy); see the class description for the columns."""
        return self.table.copy()

    def top(self, list_name: str, n: int = 10) -> pd.DataFrame:
        """Return the ``n`` most significant terms of one list.

        Parameters
        ----------
        list_name
            One of :attr:`list_names`.
        n
            Number of terms.

        Returns
        -------
        Rows of :attr:`table` for that list, smallest ``p_value`` first (fewer than ``n`` when
        fewer terms overlap the list).
        """
        if list_name not in self.list_names:
            raise ValueError(f"Unknown list {list_name!r}; available: {list(self.list_names)}.")
        if n < 1:
            raise ValueError(f"n must be at least 1, got {n}.")
        rows = self.table[self.table["list"] == list_name]
        return rows.head(n).reset_index(drop=True)

    def _parameters(self) -> dict[str, Any]:
        return {
            "gene_sets_name": self.gene_sets_name,
            "list_names": list(self.list_names),
            "n_tested": {name: int(n) for name, n in self.n_tested.items()},
        }

    @classmethod
    def _from_table(cls, table: pd.DataFrame, parameters: dict[str, Any]) -> GeneProgramEnrichment:
        table = table[list(_COLUMNS)].astype(_COLUMNS)
        for column in ("list", "term", "genes"):
            table[column] = table[column].astype(str).astype(object)
        return cls(
            table=table.reset_index(drop=True),
            gene_sets_name=parameters["gene_sets_name"],
            list_names=tuple(parameters["list_names"]),
            n_tested=dict(parameters["n_tested"]),
        )

    def plot_bars(
        self, list_name: str | None = None, n_top: int = 10, ax: Axes | None = None
    ) -> Axes:
        """Horizontal bars of ``-log10`` adjusted p of one list's most significant terms.

        Parameters
        ----------
        list_name
            The gene list; may be left out when the result holds a single list.
        n_top
            Number of terms.
        ax
            Axes to draw into (a new figure when ``None``).

        Returns
        -------
        The Axes; see :func:`lucidvi.pl.enrichment_bars`.
        """
        from lucidvi.pl._enrichment import enrichment_bars

        return enrichment_bars(self, list_name=list_name, n_top=n_top, ax=ax)

    def plot_diverging(
        self, group_a: str, group_b: str, n_top: int = 10, ax: Axes | None = None
    ) -> Axes:
        """Compare two lists (e.g. a factor's positive and negative genes) term by term.

        Parameters
        ----------
        group_a
            List drawn to the right (positive ``-log10`` adjusted p).
        group_b
            List drawn to the left.
        n_top
            Terms taken from each list.
        ax
            Axes to draw into (a new figure when ``None``).

        Returns
        -------
        The Axes; see :func:`lucidvi.pl.enrichment_diverging`.
        """
        from lucidvi.pl._enrichment import enrichment_diverging

        return enrichment_diverging(self, group_a, group_b, n_top=n_top, ax=ax)

    def _figures(self) -> Iterator[tuple[str, Axes]]:
        for list_name in self.list_names:
            if (self.table["list"] == list_name).any():
                yield f"bars/{list_name}", self.plot_bars(list_name)


def _warn_no_overlap(list_name: str, genes: list[str], annotated: set[str]) -> None:
    hint = ""
    if annotated.intersection(gene.upper() for gene in genes):
        hint = " Gene symbols are matched as given: upper-case them to match these sets."
    warnings.warn(
        f"No gene of the list {list_name!r} is in any gene set (within the background); "
        f"the list gets no row in the table.{hint}",
        UserWarning,
        stacklevel=3,
    )

"""Over-representation of gene sets in gene lists, e.g. the top genes of each latent factor."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from lucidvi._docstrings import lucidvi_dsp

from .._result import TableResult, plot_method
from ._gene_sets import (
    ENRICHMENT_COLUMNS,
    enrich_gene_list,
    gene_universe,
    resolve_gene_sets,
    validate_gene_lists,
    warn_no_overlap,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

    from matplotlib.axes import Axes

logger = logging.getLogger(__name__)


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

    def _validate(self) -> None:
        if list(self.table.columns) != list(ENRICHMENT_COLUMNS):
            raise ValueError(f"table must have the columns {list(ENRICHMENT_COLUMNS)}.")
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
        >>> res.plot_diverging(group_a="Z_0+", group_b="Z_0-")
        """
        from scvi.utils import track

        lists = validate_gene_lists(gene_lists)
        sets, name = resolve_gene_sets(gene_sets)
        if not sets:
            raise ValueError("gene_sets holds no gene set.")
        universe = gene_universe(background, sets)
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
                warn_no_overlap(list_name, genes, annotated)
            table, n_tested[list_name] = enrich_gene_list(genes, sets, universe)
            tables.append(table.assign(list=list_name))
        table = pd.concat(tables, ignore_index=True)[list(ENRICHMENT_COLUMNS)].astype(
            ENRICHMENT_COLUMNS
        )
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
        table = table[list(ENRICHMENT_COLUMNS)].astype(ENRICHMENT_COLUMNS)
        for column in ("list", "term", "genes"):
            table[column] = table[column].astype(str).astype(object)
        return cls(
            table=table.reset_index(drop=True),
            gene_sets_name=parameters["gene_sets_name"],
            list_names=tuple(parameters["list_names"]),
            n_tested=dict(parameters["n_tested"]),
        )

    plot_bars = plot_method(
        "enrichment_bars",
        "Horizontal bars of ``-log10`` adjusted p of one list's most significant terms.",
        options="(``list_name``, which may be left out when the result holds a single list; "
        "``n_top``)",
    )

    @lucidvi_dsp.dedent
    def plot_diverging(
        self, *, group_a: str, group_b: str, ax: Axes | None = None, **kwargs: Any
    ) -> Axes:
        """Compare two lists (e.g. a factor's positive and negative genes) term by term.

        Drawn by :func:`lucidvi.pl.enrichment_diverging`, whose parameters it takes.

        Parameters
        ----------
        group_a
            List drawn to the right (positive ``-log10`` adjusted p).
        group_b
            List drawn to the left.
        %(ax)s
        %(plot_kwargs)s

        Returns
        -------
        The Axes.
        """
        from lucidvi.pl import enrichment_diverging

        return enrichment_diverging(self, group_a=group_a, group_b=group_b, ax=ax, **kwargs)

    def _figures(self) -> Iterator[tuple[str, Axes]]:
        for list_name in self.list_names:
            if (self.table["list"] == list_name).any():
                yield f"bars/{list_name}", self.plot_bars(list_name=list_name)

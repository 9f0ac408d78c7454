"""Curated ligand-receptor pairs: the bundled CellPhoneDB v4 tables, liana's, or the user's."""

from __future__ import annotations

import gzip
import logging
from importlib.resources import as_file, files
from typing import Literal

import pandas as pd

logger = logging.getLogger(__name__)

Organism = Literal["human", "mouse"]
ORGANISMS: tuple[str, ...] = ("human", "mouse")
#: The columns of :func:`ligand_receptor_pairs`, in order.
PAIR_COLUMNS = ["ligand", "receptor", "interaction_type", "ligand_subunits", "receptor_subunits"]
SUBUNIT_SEPARATOR = "_"  # CellPhoneDB, CellChat and liana write complexes as "A_B"
_LIANA_PREFIX = "liana:"


def ligand_receptor_pairs(
    organism: Organism = "human", resource: str | pd.DataFrame = "cellphonedb"
) -> pd.DataFrame:
    """Load a curated table of ligand-receptor pairs, one row per pair.

    Parameters
    ----------
    organism
        ``"human"`` or ``"mouse"``: which bundled CellPhoneDB table to read (ignored for the
        other resources, whose genes are what they are).
    resource
        ``"cellphonedb"``: CellPhoneDB v4.0 [#garcia]_ [#efremova]_ (MIT), bundled with
        lucidvi (1,677 human and 1,410 mouse pairs; see ``files/PROVENANCE.md``).
        ``"liana:<name>"``: the resource ``<name>`` of liana [#dimitrov]_
        (:func:`liana.resource.select_resource`, e.g. ``"liana:consensus"`` or
        ``"liana:mouseconsensus"``); liana is optional and not installed with lucidvi.
        A DataFrame: your own table, with string columns ``ligand`` and ``receptor`` and
        optionally ``interaction_type``, and ``ligand_subunits`` and ``receptor_subunits``
        (sequences of genes, for gene names that contain ``_``; by default the names are split
        on ``_``); other columns are dropped.

    Returns
    -------
    DataFrame
        Columns ``ligand`` and ``receptor`` (gene symbols; the subunits of a complex joined by
        ``_``, as in CellPhoneDB, CellChat and liana, e.g. ``"ITGB1_ITGA10"``),
        ``interaction_type`` (CellPhoneDB: ``"Secreted Signaling"`` or ``"Cell-Cell
        Contact"``; missing when the resource has none), ``ligand_subunits`` and
        ``receptor_subunits`` (tuples of gene symbols). Repeated pairs are dropped (the first
        kept), the order is the resource's, and the index runs from 0.

    Raises
    ------
    ValueError
        For an unknown organism or resource, or a table without ``ligand`` and ``receptor``
        columns, or with missing or empty entries in them.
    ImportError
        For a ``"liana:"`` resource when liana is not installed.

    Notes
    -----
    CellPhoneDB stands for small-molecule ligands by the enzymes that make them (``CYP19A1``
    for oestradiol, ``PTGR1`` for leukotriene B4): "the ligand is expressed" then means that
    the senders express the enzyme. A complex counts as expressed only when each of its
    subunits is.

    References
    ----------
    .. [#garcia] Garcia-Alonso L. et al. (2022) Single-cell roadmap of human gonadal
       development. *Nature* 607, 540-547.
    .. [#efremova] Efremova M. et al. (2020) CellPhoneDB: inferring cell-cell communication
       from combined expression of multi-subunit ligand-receptor complexes. *Nature Protocols*
       15, 1484-1506.
    .. [#dimitrov] Dimitrov D. et al. (2022) Comparison of methods and resources for cell-cell
       communication inference from single-cell RNA-Seq data. *Nature Communications* 13, 3224.

    Examples
    --------
    >>> import lucidvi.data
    >>> pairs = lucidvi.data.ligand_receptor_pairs("human")
    >>> pairs.columns.tolist()
    ['ligand', 'receptor', 'interaction_type', 'ligand_subunits', 'receptor_subunits']
    >>> pairs.query("ligand == 'IFNG'")["receptor_subunits"].tolist()
    [('IFNGR1', 'IFNGR2')]
    >>> import pandas as pd
    >>> mine = pd.DataFrame({"ligand": ["Tnf"], "receptor": ["Tnfrsf1a"]})
    >>> lucidvi.data.ligand_receptor_pairs(resource=mine).shape
    (1, 5)
    """
    if organism not in ORGANISMS:
        raise ValueError(f"organism must be one of {list(ORGANISMS)}, got {organism!r}.")
    if isinstance(resource, pd.DataFrame):
        return _tidy(resource, "the table")
    if not isinstance(resource, str):
        raise TypeError(
            "resource must be 'cellphonedb', 'liana:<name>' or a DataFrame with ligand and "
            f"receptor columns, got {type(resource).__name__}."
        )
    if resource == "cellphonedb":
        path = files("lucidvi.data").joinpath("files", f"cellphonedb_v4_{organism}.csv.gz")
        with as_file(path) as local, gzip.open(local, "rt", encoding="utf-8") as handle:
            table = pd.read_csv(handle, dtype=str, keep_default_na=False)
        return _tidy(table, "CellPhoneDB")
    if resource.startswith(_LIANA_PREFIX):
        return _tidy(_liana_resource(resource[len(_LIANA_PREFIX) :]), resource)
    raise ValueError(
        f"Unknown resource {resource!r}: use 'cellphonedb', 'liana:<name>' (with liana "
        "installed) or a DataFrame with ligand and receptor columns."
    )


def _liana_resource(name: str) -> pd.DataFrame:
    try:
        from liana.resource import select_resource
    except ImportError as error:
        raise ImportError(
            f"The resource 'liana:{name}' needs liana: pip install liana (liana requires "
            "pandas < 3). The bundled 'cellphonedb' resource needs nothing else."
        ) from error
    return select_resource(name)


def _tidy(table: pd.DataFrame, name: str) -> pd.DataFrame:
    """Check a table of pairs and add the subunit columns (see :func:`ligand_receptor_pairs`)."""
    missing = [c for c in ("ligand", "receptor") if c not in table.columns]
    if missing:
        raise ValueError(
            f"{name} has no column {' or '.join(map(repr, missing))}; a table of pairs needs "
            f"string columns 'ligand' and 'receptor', got {list(table.columns)}."
        )
    out = pd.DataFrame(
        {
            "ligand": table["ligand"].astype("string").str.strip(),
            "receptor": table["receptor"].astype("string").str.strip(),
        }
    )
    empty = (out.isna() | (out == "")).any(axis=1).to_numpy()
    subunits = {c: _subunits(table, out[c], c) for c in out}
    empty |= [any(not g for g in genes) for genes in subunits["ligand"]]
    empty |= [any(not g for g in genes) for genes in subunits["receptor"]]
    if empty.any():
        rows = table.index[empty][:5].tolist()
        raise ValueError(
            f"{name} has {int(empty.sum())} row(s) with a missing or empty ligand or receptor "
            f"(or an empty subunit), e.g. rows {rows}; drop them first."
        )
    out = out.astype(object)
    out["interaction_type"] = (
        [None if pd.isna(value) else str(value) for value in table["interaction_type"]]
        if "interaction_type" in table.columns
        else None
    )
    out["ligand_subunits"] = [tuple(genes) for genes in subunits["ligand"]]
    out["receptor_subunits"] = [tuple(genes) for genes in subunits["receptor"]]
    repeated = out.duplicated(subset=["ligand", "receptor"]).to_numpy()
    if repeated.any():
        logger.info("%s: dropped %d repeated ligand-receptor rows", name, int(repeated.sum()))
    return out[~repeated].reset_index(drop=True)[PAIR_COLUMNS]


def _subunits(table: pd.DataFrame, names: pd.Series, column: str) -> list[list[str]]:
    """Each row's subunits: the table's ``<column>_subunits`` when given, else split on ``_``."""
    given = f"{column}_subunits"
    if given not in table.columns:
        return [[] if pd.isna(name) else name.split(SUBUNIT_SEPARATOR) for name in names]
    subunits = []
    for value in table[given]:
        if isinstance(value, str) or not hasattr(value, "__iter__"):
            raise TypeError(f"{given} must hold sequences of gene names, got {value!r}.")
        subunits.append([str(gene).strip() for gene in value] or [""])
    return subunits

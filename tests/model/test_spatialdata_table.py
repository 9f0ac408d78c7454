"""InteractionVI registers a SpatialData table: centroids from shapes, a sample per element."""

import geopandas as gpd
import numpy as np
import pytest
from shapely.geometry import Point
from spatialdata import SpatialData
from spatialdata.models import ShapesModel, TableModel

from lucidvi._registration import unregistered_copy
from lucidvi.model import InteractionVI


def _sdata(cells, with_coordinates: bool) -> SpatialData:
    """Two sections of circles; the table's rows in another order than the shapes'."""
    table = unregistered_copy(cells)
    coordinates = table.obsm.pop("spatial")
    half = table.n_obs // 2
    table.obs["region"] = np.where(np.arange(table.n_obs) < half, "left", "right")
    table.obs["cell_id"] = np.r_[np.arange(half), np.arange(table.n_obs - half)] + 100
    shapes = {}
    for name, rows in (("left", slice(0, half)), ("right", slice(half, None))):
        ids = table.obs["cell_id"].to_numpy()[rows]
        order = np.random.default_rng(0).permutation(len(ids))
        points = [Point(*xy) for xy in coordinates[rows][order]]
        frame = gpd.GeoDataFrame({"geometry": points, "radius": 1.0}, index=ids[order])
        shapes[name] = ShapesModel.parse(frame)
    if with_coordinates:
        table.obsm["spatial"] = coordinates
    table = TableModel.parse(
        table, region=["left", "right"], region_key="region", instance_key="cell_id"
    )
    return SpatialData(shapes=shapes, tables={"table": table}), coordinates


def test_centroids_are_matched_to_rows_and_elements_are_samples(two_section_tissue):
    sdata, coordinates = _sdata(two_section_tissue, with_coordinates=False)
    table = InteractionVI.setup_spatialdata(sdata, labels_key="cell_type", layer="counts")
    assert table is sdata.tables["table"]
    np.testing.assert_allclose(table.obsm["spatial"], coordinates)
    assert table.uns["lucidvi_neighbors"]["sample_key"] == "region"
    neighbours = table.obsm["lucidvi_neighbor_index"]
    rows = np.nonzero(neighbours >= 0)[0]
    region = table.obs["region"].to_numpy()
    assert (region[neighbours[neighbours >= 0]] == region[rows]).all()
    model = InteractionVI(table, n_heads=2, n_latent=8)
    model.train(max_epochs=1, batch_size=128, enable_progress_bar=False, calibrate=False)
    assert model.get_niche_embedding().shape[0] == table.n_obs


def test_stored_coordinates_are_kept_and_bad_tables_say_what_to_fix(two_section_tissue):
    sdata, coordinates = _sdata(two_section_tissue, with_coordinates=True)
    shifted = coordinates + 1.0
    sdata.tables["table"].obsm["spatial"] = shifted
    table = InteractionVI.setup_spatialdata(sdata, labels_key="cell_type", layer="counts")
    np.testing.assert_allclose(table.obsm["spatial"], shifted)
    with pytest.raises(ValueError, match="no table 'cells'"):
        InteractionVI.setup_spatialdata(sdata, labels_key="cell_type", table_key="cells")
    sdata, _ = _sdata(two_section_tissue, with_coordinates=False)
    sdata.tables["table"].obs["cell_id"] = sdata.tables["table"].obs["cell_id"] + 10_000
    with pytest.raises(ValueError, match="name instances that 'left' lacks"):
        InteractionVI.setup_spatialdata(sdata, labels_key="cell_type", layer="counts")

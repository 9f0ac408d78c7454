"""Registering a :class:`spatialdata.SpatialData` table, with its cells' centroids."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from anndata import AnnData

if TYPE_CHECKING:
    from spatialdata import SpatialData


def table_with_centroids(
    sdata: SpatialData,
    table_key: str,
    spatial_key: str,
    coordinate_system: str,
) -> tuple[AnnData, str]:
    """Return a SpatialData table whose ``obsm[spatial_key]`` holds each cell's centroid.

    When the table has no ``obsm[spatial_key]``, the centroid of each annotated instance
    (shape or label) is computed with :func:`spatialdata.get_centroids` in
    ``coordinate_system`` and written there, matched to the rows through the table's
    instance key; nothing else of the table changes.

    Parameters
    ----------
    sdata
        The SpatialData object.
    table_key
        Key of the table in ``sdata.tables``.
    spatial_key
        ``obsm`` key of the coordinates.
    coordinate_system
        Coordinate system of the centroids.

    Returns
    -------
    ``(table, region_key)``: the table itself (not a copy) and its ``obs`` column naming the
    annotated element of each row.
    """
    try:
        import spatialdata
        from spatialdata.models import get_table_keys
    except ImportError as error:  # pragma: no cover - spatialdata is installed in the tests
        raise ImportError(
            "Registering a SpatialData table needs spatialdata: pip install 'lucidvi[spatial]'."
        ) from error
    if table_key not in sdata.tables:
        raise ValueError(f"sdata has no table {table_key!r} (tables: {list(sdata.tables)}).")
    table = sdata.tables[table_key]
    regions, region_key, instance_key = get_table_keys(table)
    if spatial_key in table.obsm:
        return table, region_key
    centroids = np.full((table.n_obs, 2), np.nan)
    for region in [regions] if isinstance(regions, str) else list(regions):
        if region not in sdata:
            raise ValueError(f"The table annotates {region!r}, which sdata does not hold.")
        rows = np.flatnonzero((table.obs[region_key] == region).to_numpy())
        points = spatialdata.get_centroids(sdata[region], coordinate_system=coordinate_system)
        points = points[["x", "y"]].compute()
        instances = table.obs[instance_key].to_numpy()[rows]
        missing = ~np.isin(instances, points.index.to_numpy())
        if missing.any():
            raise ValueError(
                f"{int(missing.sum())} rows of table {table_key!r} name instances that "
                f"{region!r} lacks, e.g. {list(instances[missing][:3])}."
            )
        centroids[rows] = points.loc[instances].to_numpy()
    if np.isnan(centroids).any():
        raise ValueError(
            f"Rows of table {table_key!r} annotate no element of sdata; no centroid for them."
        )
    table.obsm[spatial_key] = centroids
    return table, region_key


class SpatialDataSetupMixin:
    """Registration of a :class:`spatialdata.SpatialData` table, for InteractionVI."""

    @classmethod
    def setup_spatialdata(
        cls,
        sdata: SpatialData,
        labels_key: str,
        table_key: str = "table",
        spatial_key: str = "spatial",
        coordinate_system: str = "global",
        sample_key: str | None = None,
        **kwargs,
    ) -> AnnData:
        """Register the table of a :class:`spatialdata.SpatialData` object.

        When the table has no ``obsm[spatial_key]``, each cell's coordinates are the centroid
        of the shape or label it annotates (:func:`spatialdata.get_centroids` in
        ``coordinate_system``), written to ``obsm[spatial_key]`` as squidpy does. A table that
        annotates several elements (e.g. one per section) has each element as a sample unless
        ``sample_key`` says otherwise. Then :meth:`setup_anndata` registers the table.

        Parameters
        ----------
        sdata
            The SpatialData object (needs ``pip install 'lucidvi[spatial]'``).
        labels_key
            ``obs`` column of the table with the cell types.
        table_key
            Key of the table in ``sdata.tables``.
        spatial_key
            ``obsm`` key of the coordinates (read, or written from the centroids).
        coordinate_system
            Coordinate system of the centroids.
        sample_key
            ``obs`` column of samples; by default the table's region key when it annotates
            more than one element.
        **kwargs
            Passed to :meth:`setup_anndata` (e.g. ``layer``, ``n_neighbors``,
            ``neighbors_key``).

        Returns
        -------
        The registered table, to pass to the model: ``InteractionVI(table)``.
        """
        table, region_key = table_with_centroids(sdata, table_key, spatial_key, coordinate_system)
        if sample_key is None and table.obs[region_key].nunique() > 1:
            sample_key = region_key
        cls.setup_anndata(
            table, labels_key=labels_key, spatial_key=spatial_key, sample_key=sample_key, **kwargs
        )
        return table

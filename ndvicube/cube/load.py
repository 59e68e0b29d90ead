"""The masked index cube of an area: lazy (time, y, x) float32 variables, one step per solar day.

One variable per requested spectral index (:mod:`ndvicube.cube.indices`; NDVI by default). Reading
goes through odc-stac (``odc.stac.load``) with Dask, like the origin notebook, but with two
deliberate differences:

* only the assets the indices need are read, plus SCL (for NDVI: red, nir, scl - never green or
  blue);
* items are grouped by solar day *and* by the scaling of every reflectance asset read, and each
  group is scaled with its own ``raster:bands`` scale/offset before groups of one day are
  merged. Raw digital numbers of items with different offsets (a scene reprocessed at another
  baseline) are never fused.

Within a group odc-stac fuses overlapping tiles of one pass pixel by pixel, first valid value
wins - exactly the notebook's ``groupby="solar_day"``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pystac
from odc.geo.geobox import GeoBox

from ndvicube import geo
from ndvicube.cube.spec import CubeSpec
from ndvicube.cube.tiles import tile_window
from ndvicube.search.items import BandScaling, band_scaling, solar_day, sort_items

if TYPE_CHECKING:  # odc-stac's load path only: the cube engine uses this module's grids and groups
    import xarray as xr


def reader_driver(reader: str) -> Any:
    """The odc-stac reader driver of ``compute.reader`` (``range`` or ``gdal``)."""
    from ndvicube.read.gdal_reader import RetryingRioDriver
    from ndvicube.read.remote_driver import RemoteRioDriver

    return {"range": RemoteRioDriver, "gdal": RetryingRioDriver}[reader]()


@dataclass(frozen=True)
class SceneGroup:
    """Items of one solar day that share a scaling: odc-stac fuses them into one slice."""

    day: dt.date
    scalings: tuple[tuple[str, BandScaling], ...]
    """(asset, scaling) of every reflectance asset read."""
    scl_nodata: float | None
    item_ids: tuple[str, ...]

    def scaling(self, asset: str) -> BandScaling:
        """The scale, offset and nodata of one reflectance asset of this group's items."""
        return dict(self.scalings)[asset]


def area_geobox(spec: CubeSpec) -> GeoBox:
    """The area's whole pixel grid (:func:`ndvicube.geo.area_geobox`)."""
    return geo.area_geobox(spec.bbox, spec.crs, spec.resolution)


def cube_geobox(spec: CubeSpec) -> GeoBox:
    """The grid this cube covers: the area's, or the chunk-aligned window of ``spec.tile``."""
    full = area_geobox(spec)
    if spec.tile is None:
        return full
    return full[tile_window(spec.tile, full.shape.yx, spec.cube.spatial_chunk)]


def group_scenes(
    items: Sequence[pystac.Item], lon: float, bands: Sequence[str] = ("red", "nir")
) -> list[SceneGroup]:
    """Group items by (solar day at ``lon``, scaling of ``bands``), ordered by day, first item."""
    groups: dict[tuple, list[pystac.Item]] = {}
    for item in sort_items(items):
        scalings = tuple((band, band_scaling(item, band)) for band in bands)
        scl = band_scaling(item, "scl", require_scale=False)
        groups.setdefault((solar_day(item, lon), scalings, scl.nodata), []).append(item)
    return [
        SceneGroup(day, scalings, scl_nodata, tuple(i.id for i in members))
        for (day, scalings, scl_nodata), members in groups.items()
    ]


def cube_longitude(spec: CubeSpec) -> float:
    """Longitude of the area's centre: where solar days are reckoned (the same for every tile)."""
    return float(area_geobox(spec).extent.centroid.to_crs("EPSG:4326").points[0][0])


def load_cube(items: Sequence[pystac.Item], spec: CubeSpec, *, reader: str = "range") -> xr.Dataset:
    """Lazy masked indices, each (time, y, x) float32, NaN where masked; time = solar day.

    One variable per index of ``spec``, named by :func:`ndvicube.cube.indices.column`; the
    ``scenes`` coordinate counts the items merged into each solar day. Nothing is read until the
    cube is computed (or written with :mod:`ndvicube.cube.store`). ``reader``: ``range`` reads
    remote COGs with :mod:`ndvicube.read.remote` (async-geotiff; fewest requests and bytes),
    ``gdal`` reads everything through GDAL; both give the same values.
    """
    import odc.stac

    geobox, crop = read_geobox(spec)
    groups = group_scenes(items, cube_longitude(spec), spec.bands)
    group_of = {item_id: n for n, g in enumerate(groups) for item_id in g.item_ids}
    raw = odc.stac.load(
        sort_items(items),
        bands=list(spec.assets),
        geobox=geobox,
        groupby=lambda item, _parsed, _idx: group_of[item.id],
        chunks={"time": 1, "y": spec.cube.spatial_chunk, "x": spec.cube.spatial_chunk},
        resampling="nearest",
        fail_on_error=True,
        driver=reader_driver(reader),
    )
    masked = _masked_indices(raw, groups, spec)
    if crop is not None:
        masked = masked.isel(y=crop[0], x=crop[1])
    return _one_step_per_day(masked)


def load_ndvi(
    items: Sequence[pystac.Item], spec: CubeSpec, *, reader: str = "range"
) -> xr.DataArray:
    """The ``ndvi`` variable of :func:`load_cube` (``spec`` must ask for NDVI, the default)."""
    return load_cube(items, spec, reader=reader)["ndvi"]


def read_geobox(spec: CubeSpec) -> tuple[GeoBox, tuple[slice, slice] | None]:
    """The grid to read, and how to crop it to the cube's (None: no crop).

    A tile with an SCL buffer reads ``buffer_px`` more pixels on every side that lies inside the
    area, so clouds just across a tile border mask its pixels as they would in a whole-area
    build; the margin is cropped after masking.
    """
    if spec.tile is None or spec.buffer_px == 0:
        return cube_geobox(spec), None
    full, r = area_geobox(spec), spec.buffer_px
    ys, xs = tile_window(spec.tile, full.shape.yx, spec.cube.spatial_chunk)
    py = slice(max(ys.start - r, 0), min(ys.stop + r, full.shape.y))
    px = slice(max(xs.start - r, 0), min(xs.stop + r, full.shape.x))
    crop = (
        slice(ys.start - py.start, ys.stop - py.start),
        slice(xs.start - px.start, xs.stop - px.start),
    )
    return full[py, px], crop


def _masked_indices(raw: xr.Dataset, groups: Sequence[SceneGroup], spec: CubeSpec) -> xr.Dataset:
    """Scale each group with its own metadata, mask, and compute every index (float32)."""
    import xarray as xr

    from ndvicube.cube.indices import compute_indices
    from ndvicube.cube.mask import clear_mask
    from ndvicube.cube.radiometry import to_reflectance

    reflectance = {
        band: to_reflectance(
            raw[band], _along_time(groups, band, "scale"), _along_time(groups, band, "offset")
        )
        for band in spec.bands
    }
    valid = clear_mask(
        raw["scl"],
        [(raw[band], _along_time(groups, band, "nodata")) for band in spec.bands],
        scl_classes=spec.cloud_mask.scl_classes,
        buffer_px=spec.buffer_px,
        cloud=raw.get("cloud"),
        max_cloud_probability=spec.cloud_mask.max_probability,
    )
    indices = compute_indices(reflectance, spec.indices)
    cube = xr.Dataset(
        {name: value.where(valid).assign_attrs(value.attrs) for name, value in indices.items()}
    )
    days = np.array([np.datetime64(g.day, "ns") for g in groups])
    scenes = ("time", np.array([len(g.item_ids) for g in groups], dtype="int32"))
    return cube.assign_coords(time=days, scenes=scenes)


def _along_time(groups: Sequence[SceneGroup], band: str, field: str) -> xr.DataArray:
    """One scaling field per time slice (NaN for a missing nodata: compares unequal to all)."""
    import xarray as xr

    values = [getattr(g.scaling(band), field) for g in groups]
    return xr.DataArray([np.nan if v is None else v for v in values], dims="time")


def _one_step_per_day(cube: xr.Dataset) -> xr.Dataset:
    """Merge slices of one solar day (only when their scalings differed): first clear wins."""
    if cube.indexes["time"].is_unique:
        return cube
    scenes = cube["scenes"].groupby("time").sum()
    merged = cube.drop_vars("scenes").groupby("time").first(skipna=True)
    merged = merged.assign_coords(scenes=("time", scenes.values))
    return merged.transpose("time", "y", "x").astype("float32")

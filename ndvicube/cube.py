"""The masked NDVI cube of an area: a lazy (time, y, x) float32 array, one step per solar day.

Reading goes through odc-stac (``odc.stac.load``) with Dask, like the origin notebook, but with
two deliberate differences:

* only the assets NDVI needs are read (red, nir, scl - never green or blue);
* items are grouped by solar day *and* by their red/nir scaling, and each group is scaled with
  its own ``raster:bands`` scale/offset before groups of one day are merged. Raw digital numbers
  of items with different offsets (a scene reprocessed at another baseline) are never fused.

Within a group odc-stac fuses overlapping tiles of one pass pixel by pixel, first valid value
wins - exactly the notebook's ``groupby="solar_day"``.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pystac
import xarray as xr
from odc.geo.geobox import GeoBox

from ndvicube import geo
from ndvicube.geo import BBox
from ndvicube.items import BandScaling, band_scaling, solar_day, sort_items
from ndvicube.mask import DEFAULT_SCL_CLASSES, clear_mask
from ndvicube.radiometry import ndvi, to_reflectance
from ndvicube.reads import RetryingRioDriver
from ndvicube.tiles import Tile, tile_window

#: Asset keys read for NDVI (Earth Search common names).
NDVI_ASSETS: tuple[str, str, str] = ("red", "nir", "scl")


@dataclass(frozen=True)
class CubeSpec:
    """The grid and mask of a cube."""

    bbox: BBox
    """Area box, lon_min, lat_min, lon_max, lat_max (EPSG:4326)."""
    crs: str
    """Cube CRS, e.g. ``EPSG:32644`` (the UTM zone of the area's centre)."""
    resolution: float = 10.0
    """Pixel size in CRS units (metres)."""
    scl_classes: tuple[int, ...] = DEFAULT_SCL_CLASSES
    """SCL classes masked as cloud/shadow/cirrus."""
    spatial_chunk: int = 256
    """Pixels per side of a read task (and of a Zarr chunk)."""
    tile: Tile | None = None
    """Only this tile of the area's grid (a tile job), or the whole grid."""
    scl_buffer_m: float = 0.0
    """Masked SCL classes are grown by this many metres (0: the notebook's mask)."""
    max_cloud_probability: int | None = None
    """Also mask pixels whose ``cloud`` asset (probability, %) is above this; None: not read."""

    @property
    def assets(self) -> tuple[str, ...]:
        """The assets read: red, nir, scl, and the cloud probability when it is used."""
        return NDVI_ASSETS + (("cloud",) if self.max_cloud_probability is not None else ())

    @property
    def buffer_px(self) -> int:
        """The SCL buffer in whole cube pixels (rounded up)."""
        return math.ceil(self.scl_buffer_m / self.resolution - 1e-9)


@dataclass(frozen=True)
class SceneGroup:
    """Items of one solar day that share a scaling: odc-stac fuses them into one slice."""

    day: dt.date
    red: BandScaling
    nir: BandScaling
    scl_nodata: float | None
    item_ids: tuple[str, ...]


def area_geobox(spec: CubeSpec) -> GeoBox:
    """The area's whole pixel grid (:func:`ndvicube.geo.area_geobox`)."""
    return geo.area_geobox(spec.bbox, spec.crs, spec.resolution)


def cube_geobox(spec: CubeSpec) -> GeoBox:
    """The grid this cube covers: the area's, or the chunk-aligned window of ``spec.tile``."""
    full = area_geobox(spec)
    if spec.tile is None:
        return full
    return full[tile_window(spec.tile, full.shape.yx, spec.spatial_chunk)]


def group_scenes(items: Sequence[pystac.Item], lon: float) -> list[SceneGroup]:
    """Group items by (solar day at ``lon``, red/nir scaling), ordered by day then first item."""
    groups: dict[tuple, list[pystac.Item]] = {}
    for item in sort_items(items):
        red, nir = band_scaling(item, "red"), band_scaling(item, "nir")
        scl = band_scaling(item, "scl", require_scale=False)
        groups.setdefault((solar_day(item, lon), red, nir, scl.nodata), []).append(item)
    return [
        SceneGroup(day, red, nir, scl_nodata, tuple(i.id for i in members))
        for (day, red, nir, scl_nodata), members in groups.items()
    ]


def cube_longitude(spec: CubeSpec) -> float:
    """Longitude of the area's centre: where solar days are reckoned (the same for every tile)."""
    return float(area_geobox(spec).extent.centroid.to_crs("EPSG:4326").points[0][0])


def load_ndvi(items: Sequence[pystac.Item], spec: CubeSpec) -> xr.DataArray:
    """Lazy masked NDVI, dims (time, y, x), float32, NaN where masked; time = solar day.

    The ``scenes`` coordinate counts the items merged into each solar day.

    Nothing is read until the array is computed (or written with :mod:`ndvicube.store`).
    """
    import odc.stac

    geobox, crop = _read_window(spec)
    groups = group_scenes(items, cube_longitude(spec))
    group_of = {item_id: n for n, g in enumerate(groups) for item_id in g.item_ids}
    raw = odc.stac.load(
        sort_items(items),
        bands=list(spec.assets),
        geobox=geobox,
        groupby=lambda item, _parsed, _idx: group_of[item.id],
        chunks={"time": 1, "y": spec.spatial_chunk, "x": spec.spatial_chunk},
        resampling="nearest",
        fail_on_error=True,
        driver=RetryingRioDriver(),
    )
    masked = _masked_ndvi(raw, groups, spec)
    if crop is not None:
        masked = masked.isel(y=crop[0], x=crop[1])
    return _one_step_per_day(masked)


def _read_window(spec: CubeSpec) -> tuple[GeoBox, tuple[slice, slice] | None]:
    """The grid to read, and how to crop it to the cube's (None: no crop).

    A tile with an SCL buffer reads ``buffer_px`` more pixels on every side that lies inside the
    area, so clouds just across a tile border mask its pixels as they would in a whole-area
    build; the margin is cropped after masking.
    """
    if spec.tile is None or spec.buffer_px == 0:
        return cube_geobox(spec), None
    full, r = area_geobox(spec), spec.buffer_px
    ys, xs = tile_window(spec.tile, full.shape.yx, spec.spatial_chunk)
    py = slice(max(ys.start - r, 0), min(ys.stop + r, full.shape.y))
    px = slice(max(xs.start - r, 0), min(xs.stop + r, full.shape.x))
    crop = (
        slice(ys.start - py.start, ys.stop - py.start),
        slice(xs.start - px.start, xs.stop - px.start),
    )
    return full[py, px], crop


def _masked_ndvi(raw: xr.Dataset, groups: Sequence[SceneGroup], spec: CubeSpec) -> xr.DataArray:
    """Scale each group with its own metadata, mask, and compute NDVI (float32)."""
    red = to_reflectance(
        raw["red"], _along_time(groups, "red", "scale"), _along_time(groups, "red", "offset")
    )
    nir = to_reflectance(
        raw["nir"], _along_time(groups, "nir", "scale"), _along_time(groups, "nir", "offset")
    )
    valid = clear_mask(
        raw["red"],
        raw["nir"],
        raw["scl"],
        red_nodata=_along_time(groups, "red", "nodata"),
        nir_nodata=_along_time(groups, "nir", "nodata"),
        scl_classes=spec.scl_classes,
        buffer_px=spec.buffer_px,
        cloud=raw.get("cloud"),
        max_cloud_probability=spec.max_cloud_probability,
    )
    result = ndvi(red, nir).where(valid).astype("float32")
    days = np.array([np.datetime64(g.day, "ns") for g in groups])
    scenes = ("time", np.array([len(g.item_ids) for g in groups], dtype="int32"))
    return result.assign_coords(time=days, scenes=scenes).rename("ndvi")


def _along_time(groups: Sequence[SceneGroup], band: str, field: str) -> xr.DataArray:
    """One scaling field per time slice (NaN for a missing nodata: compares unequal to all)."""
    values = [getattr(getattr(g, band), field) for g in groups]
    return xr.DataArray([np.nan if v is None else v for v in values], dims="time")


def _one_step_per_day(cube: xr.DataArray) -> xr.DataArray:
    """Merge slices of one solar day (only when their scalings differed): first clear wins."""
    if cube.indexes["time"].is_unique:
        return cube
    scenes = cube["scenes"].groupby("time").sum()
    merged = cube.drop_vars("scenes").groupby("time").first(skipna=True)
    merged = merged.assign_coords(scenes=("time", scenes.values))
    return merged.transpose("time", "y", "x").astype("float32")

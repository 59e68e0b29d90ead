"""The cube store's metadata and coordinates, written with zarr alone, byte for byte what
xarray and rioxarray write for the engine's template (:func:`ndvicube.cube.engine.template`
through :func:`ndvicube.cube.store.write_store`).

Why: the cube job needs xarray only for those few files, and importing it, rioxarray (with
rasterio) and dask.array for them costs more than a second on this machine (docs/performance.md,
"The cube job's imports"). What they write is small and fixed by the store's layout
(:mod:`ndvicube.cube.store`):

* the group: ``.zgroup``; ``.zattrs``, each provenance value as JSON text;
* ``x``, ``y``: pixel centres (odc-geo's coordinates of the grid, float64), their units,
  resolution and CRS (odc-geo's attributes);
* ``time``: days since 1970-01-01 (int64, proleptic Gregorian); ``scenes`` per day (int32,
  chunked as the index variables along time; the engine writes its values first,
  :func:`ndvicube.cube.engine.write_scenes`);
* ``spatial_ref``: the CF grid mapping rioxarray writes (pyproj's ``to_cf()`` of the CRS,
  GDAL's WKT as ``crs_wkt`` and ``spatial_ref``, and the geotransform as rioxarray recomputes
  it from the coordinates);
* one float32 (time, y, x) array per index, NaN fill, chunked (time_chunk, spatial_chunk,
  spatial_chunk), no chunk written, with ``long_name``, ``units``, ``grid_mapping``, GDAL's
  ``_CRS`` and xarray's ``coordinates``.

Every array is created by zarr with xarray's arguments (its defaults for the compressor and the
chunks of the coordinates), so the bytes agree by construction; ``tests/test_imports.py``
compares every metadata and coordinate file with xarray's. A grid this does not cover (a
geographic CRS, a rotated grid, a cube one pixel wide, a CRS whose axes are not east then
north, where xarray, rioxarray and GDAL have rules of their own) is written by xarray as before
(:func:`covers`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from odc.geo.geobox import GeoBox

#: The dimensions of an index variable, and xarray's attribute naming each array's.
DIMS = ("time", "y", "x")
DIMENSION_KEY = "_ARRAY_DIMENSIONS"
#: How ``time`` is encoded (as :func:`ndvicube.cube.store._georeferenced` asks xarray to).
TIME_UNITS, CALENDAR = "days since 1970-01-01", "proleptic_gregorian"


@dataclass(frozen=True)
class CubeLayout:
    """What a cube store's metadata says: its grid, days, index variables and chunking."""

    geobox: GeoBox
    """The grid read (the cube's, or a tile's with its SCL buffer margin)."""
    crop: tuple[slice, slice]
    """The cube's grid inside :attr:`geobox` (its coordinates are the grid's, sliced)."""
    days: Sequence[str]
    """The solar days (ISO dates), in order."""
    variables: Mapping[str, str]
    """Index variable name -> its ``long_name``."""
    crs: str
    """The CRS as the config gives it (``EPSG:32644``)."""
    time_chunk: int
    spatial_chunk: int

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(len(range(self.geobox.shape.yx[i])[self.crop[i]]) for i in (0, 1))


def covers(geobox: GeoBox, crop: tuple[slice, slice]) -> bool:
    """Whether the store of ``geobox`` cropped to ``crop`` is written here: a projected,
    axis-aligned grid at least two pixels each way (rioxarray recomputes the geotransform from
    the coordinates, which it cannot for one pixel)."""
    shape = [len(range(n)[c]) for n, c in zip(geobox.shape.yx, crop, strict=True)]
    return (
        geobox.crs is not None
        and geobox.crs.projected
        and geobox.axis_aligned
        and tuple(geobox.dimensions) == ("y", "x")
        and min(shape) >= 2
        and gdal_wkt(str(geobox.crs)) is not None
    )


def gdal_wkt(crs: str) -> str | None:
    """The WKT GDAL (rasterio's ``CRS.to_wkt()``) gives ``crs``, from pyproj: PROJ's
    ``WKT1_GDAL``, the same text where the axes are east then north (UTM, Web Mercator,
    Lambert-93, British National Grid, Albers...). Where they are not (LAEA Europe's north then
    east, polar stereographic grids) GDAL adds axes PROJ leaves out: None, xarray writes it."""
    from pyproj import CRS
    from pyproj.exceptions import CRSError

    pyproj_crs = CRS.from_user_input(crs)
    if [a.direction for a in pyproj_crs.axis_info] != ["east", "north"]:
        return None
    try:
        return pyproj_crs.to_wkt("WKT1_GDAL")
    except CRSError:
        return None


def write_cube_store(
    layout: CubeLayout,
    path: str | Path,
    *,
    attrs: Mapping[str, Any],
    fill: Callable[[Path | str], None],
    final_attrs: Callable[[], Mapping[str, Any]] | None = None,
) -> Path | str:
    """:func:`ndvicube.cube.store.write_store` of the cube engine's store, its metadata
    written by :func:`write_metadata` (the same bytes, without importing xarray);
    ``fill(location)`` writes its chunks."""
    from ndvicube.cube.store import write_with

    def metadata(store: Any, mode: str) -> None:
        write_metadata(store, layout, attrs, mode=mode)

    return write_with(metadata, path, fill, final_attrs)


def write_metadata(store: Any, layout: CubeLayout, attrs: Mapping[str, Any], *, mode: str) -> None:
    """The group, its attributes (``attrs``, JSON-encoded), coordinates and empty index
    arrays of ``layout`` in the Zarr ``store`` (``mode``: zarr's ``w`` or ``w-``)."""
    import zarr

    group = zarr.open_group(store, mode=mode, zarr_format=2)
    group.attrs.put({k: json.dumps(v, sort_keys=True) for k, v in attrs.items()})
    wkt, grid_mapping = _grid_mapping(layout)
    for name, coord in _spatial_coords(layout).items():
        _array(group, name, coord["values"], (name,), coord["attrs"])
    days = np.array([np.datetime64(d, "D").astype("int64") for d in layout.days], dtype="int64")
    _array(group, "time", days, ("time",), {"units": TIME_UNITS, "calendar": CALENDAR})
    scenes = np.zeros(len(layout.days), dtype="int32")  # (its values: the engine's first write)
    _array(group, "scenes", scenes, ("time",), {}, chunks=(layout.time_chunk,), write=False)
    _array(group, "spatial_ref", np.array(0, dtype="int64"), (), grid_mapping)
    tc, sc = layout.time_chunk, layout.spatial_chunk
    shape = (len(layout.days), *layout.shape)
    for name, long_name in layout.variables.items():
        attrs_v = {
            "long_name": long_name,
            "units": "1",
            "grid_mapping": "spatial_ref",
            "_CRS": {"wkt": wkt},
            "coordinates": "scenes spatial_ref",  # xarray's: the coordinates along its dims
        }
        array = group.create(
            name, shape=shape, dtype=np.dtype("float32"), fill_value=np.float32(np.nan),
            chunks=(tc, sc, sc), overwrite=True, config={},
        )  # fmt: skip
        array.attrs.put(attrs_v | {DIMENSION_KEY: list(DIMS)})


def _array(
    group,
    name: str,
    values: np.ndarray,
    dims: tuple,
    attrs: dict,
    chunks: Any = "auto",
    *,
    write: bool = True,
) -> None:
    """One array with xarray's arguments (NaN fill for floats, else none; zarr's chunks unless
    given), its attributes, then (``write``) its values."""
    fill = values.dtype.type(np.nan) if values.dtype.kind == "f" else None
    array = group.create(
        name, shape=values.shape, dtype=values.dtype, fill_value=fill, chunks=chunks,
        overwrite=True, config={},
    )  # fmt: skip
    array.attrs.put(attrs | {DIMENSION_KEY: list(dims)})
    if write:
        array[...] = values


def _spatial_coords(layout: CubeLayout) -> dict[str, dict]:
    """``y`` and ``x``: odc-geo's pixel centres and attributes (its ``xr_coords``)."""
    gb = layout.geobox
    return {
        dim: {
            "values": coord.values[crop],
            "attrs": {"units": coord.units, "resolution": coord.resolution, "crs": str(gb.crs)},
        }
        for dim, coord, crop in zip(("y", "x"), gb.coordinates.values(), layout.crop, strict=True)
    }


def _grid_mapping(layout: CubeLayout) -> tuple[str, dict[str, Any]]:
    """GDAL's WKT of the CRS and ``spatial_ref``'s attributes, as rioxarray's ``write_crs``
    and ``write_transform`` set them."""
    from pyproj import CRS

    wkt = gdal_wkt(layout.crs)  # what GDAL (rasterio) exports
    assert wkt is not None, "covers() said xarray writes it"
    attrs = CRS.from_wkt(wkt).to_cf()  # rioxarray: pyproj's CF of rasterio's CRS
    attrs["spatial_ref"] = wkt
    attrs["crs_wkt"] = wkt
    attrs["GeoTransform"] = " ".join(str(v) for v in _transform(layout).to_gdal())
    return wkt, attrs


def _transform(layout: CubeLayout):
    """The grid's affine as rioxarray recomputes it from the coordinates (``recalc=True``):
    resolution from the first and last centres, origin half a pixel before the first."""
    from affine import Affine

    coords = _spatial_coords(layout)
    ys, xs = coords["y"]["values"], coords["x"]["values"]
    left, right, top, bottom = float(xs[0]), float(xs[-1]), float(ys[0]), float(ys[-1])
    res_x, res_y = (right - left) / (len(xs) - 1), (bottom - top) / (len(ys) - 1)
    left -= res_x / 2.0
    top -= res_y / 2.0
    return Affine.translation(left, top) * Affine.scale(res_x, res_y)

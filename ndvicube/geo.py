"""Coordinate helpers: points and boxes in degrees, UTM zones, lon/lat to cube coordinates.

Kept apart from the cube code so the config validation can size areas without importing the
raster stack.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from pyproj import CRS, Transformer

if TYPE_CHECKING:
    from odc.geo.geobox import GeoBox

#: lon_min, lat_min, lon_max, lat_max in EPSG:4326 degrees.
BBox = tuple[float, float, float, float]


@dataclass(frozen=True)
class Point:
    """A location whose series is extracted (:mod:`ndvicube.timeseries.points`)."""

    id: str
    """Unique within its area; used as a file name (``plots/{id}.png``)."""
    lon: float
    """Longitude in degrees (EPSG:4326)."""
    lat: float
    """Latitude in degrees (EPSG:4326)."""


#: Svalbard (72-84 N, 0-42 E): the UTM exceptions' zones, by the longitude each one ends at.
#: Zones 32, 34 and 36 are not used there; 31, 33, 35 and 37 are widened to 9 or 12 degrees.
SVALBARD_ZONES = ((9.0, 31), (21.0, 33), (33.0, 35), (42.0, 37))


def utm_zone(lon: float, lat: float) -> int:
    """The UTM zone number (1-60) of (lon, lat), with the standard exceptions.

    Western Norway (56-64 N, 3-12 E) is zone 32, not 31, and Svalbard (72-84 N, 0-42 E) uses
    zones 31, 33, 35 and 37 only. Sentinel-2's tiles follow them (Bergen, 5.3 E 60.4 N, is tile
    32VKN), so a cube gridded by the plain 6-degree formula would warp every scene there.
    """
    if 56 <= lat < 64 and 3 <= lon < 12:
        return 32
    if 72 <= lat <= 84 and 0 <= lon < SVALBARD_ZONES[-1][0]:
        return next(zone for east, zone in SVALBARD_ZONES if lon < east)
    return min(int((lon + 180) // 6) + 1, 60)


def utm_crs_for(lon: float, lat: float) -> str:
    """The WGS 84 / UTM zone CRS containing (lon, lat), as ``EPSG:326zz`` or ``EPSG:327zz``.

    Sentinel-2 tiles are stored in UTM, so a cube in the zone of its centre reads its pixels
    without resampling whenever the tiles are in that zone too (the usual case; the Norway and
    Svalbard exceptions included, :func:`utm_zone`). Every grid of ndvicube is chosen here.

    >>> utm_crs_for(5.3, 60.4), utm_crs_for(82.6, 27.2), utm_crs_for(-70.6, -33.4)
    ('EPSG:32632', 'EPSG:32644', 'EPSG:32719')
    """
    zone = utm_zone(lon, lat)
    return f"EPSG:{32600 + zone if lat >= 0 else 32700 + zone}"


def bbox_around(lon: float, lat: float, half_side_m: float) -> BBox:
    """The lon/lat envelope of a square of ``2 * half_side_m`` metres centred on (lon, lat).

    The square is laid out in the local UTM zone, so ``buffer_km: 1`` means 1 km on the ground
    at any latitude (a box in degrees would shrink east-west away from the equator).
    """
    crs = utm_crs_for(lon, lat)
    to_utm = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    x, y = to_utm.transform(lon, lat)
    xs = [x - half_side_m, x + half_side_m]
    ys = [y - half_side_m, y + half_side_m]
    corners_x, corners_y = np.meshgrid(xs, ys)
    lons, lats = Transformer.from_crs(crs, "EPSG:4326", always_xy=True).transform(
        corners_x.ravel(), corners_y.ravel()
    )
    return (float(min(lons)), float(min(lats)), float(max(lons)), float(max(lats)))


def lonlat_to_crs(
    lons: Sequence[float] | np.ndarray, lats: Sequence[float] | np.ndarray, crs: str | CRS
) -> tuple[np.ndarray, np.ndarray]:
    """Project longitudes/latitudes (EPSG:4326) to x/y in ``crs``, vectorised."""
    to_crs = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    x, y = to_crs.transform(np.asarray(lons, dtype="float64"), np.asarray(lats, dtype="float64"))
    return np.asarray(x), np.asarray(y)


def area_geobox(bbox: BBox, crs: str, resolution: float) -> GeoBox:
    """An area's pixel grid: its box in ``crs``, snapped to whole pixels.

    Pixel edges fall on multiples of the resolution (odc-geo's default anchor), which is how
    Sentinel-2 tiles are gridded, so 10 m bands are read without resampling. odc-geo is imported
    here, not at module level, so config validation pays for it only when it needs a grid.
    """
    from odc.geo.geobox import GeoBox
    from odc.geo.geom import box as geo_box

    extent = geo_box(*bbox, crs="EPSG:4326").to_crs(crs)
    return GeoBox.from_bbox(extent.boundingbox, crs=crs, resolution=resolution)

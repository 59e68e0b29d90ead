"""The lon/lat box of a field set: where its usable polygons and its points are.

An area given by its fields (``polygons:`` and/or ``points:``, no ``bbox``) gets the grid a
``bbox`` of these bounds would get, so a field set and that dense box hold the same pixels. The
polygons counted are those screening would keep before any search (repaired ones repaired;
empty, invalid and repeated ones left out), reprojected vertex by vertex to EPSG:4326 - not the
file's bounding box reprojected, which a rotated UTM box would make larger than the fields.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ndvicube.errors import ConfigError
from ndvicube.geo import BBox, Point


def field_set_bbox(
    polygons: str | Path | None, points: Sequence[Point], *, where: str = "fields file"
) -> BBox:
    """lon_min, lat_min, lon_max, lat_max (EPSG:4326) of the usable polygons of ``polygons``
    (a fields file, or None) and of ``points``.

    Raises :class:`ConfigError` when there is nothing to bound: no point, and a file without
    one usable polygon (or one that cannot be read: no ``id`` column, no CRS...). ``where``
    names the config key in messages.
    """
    lons, lats = [p.lon for p in points], [p.lat for p in points]
    bounds = None if polygons is None else _polygons_bounds(polygons, where, bool(points))
    if bounds is not None:
        lons += [bounds[0], bounds[2]]
        lats += [bounds[1], bounds[3]]
    if not lons:
        raise ConfigError(
            f"Invalid config at {where}: the field set has neither fields nor points."
        )
    return (float(min(lons)), float(min(lats)), float(max(lons)), float(max(lats)))


def _polygons_bounds(path: str | Path, where: str, has_points: bool) -> BBox | None:
    """Bounds in degrees of the polygons screening keeps (None if none and there are points)."""
    from ndvicube.fields.checks import screen_fields
    from ndvicube.fields.read import read_fields

    fields = read_fields(path, where=f"config at {where}")
    screened = screen_fields(fields)
    if screened.accepted.empty and not has_points:
        raise ConfigError(
            f"Invalid config at {where}: {str(path)!r} has no usable polygon "
            f"({screened.summary()}), so the field set has nothing to cover. Each field needs "
            "a non-empty polygon or multipolygon and an id of its own; fix the file, or give "
            "the area points or a bbox."
        )
    if screened.accepted.empty:
        return None
    lon_min, lat_min, lon_max, lat_max = screened.accepted.to_crs("EPSG:4326").total_bounds
    return (float(lon_min), float(lat_min), float(lon_max), float(lat_max))

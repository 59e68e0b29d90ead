"""The lon/lat box of a field set: where its usable polygons and its points are, and whether a
machine can hold its grid.

An area given by its fields (``polygons:`` and/or ``points:``, no ``bbox``) gets the grid a
``bbox`` of these bounds would get, so a field set and that dense box hold the same pixels. The
polygons counted are those screening would keep before any search (repaired ones repaired;
empty, invalid, repeated and too large ones left out), reprojected vertex by vertex to
EPSG:4326 - not the file's bounding box reprojected, which a rotated UTM box would make larger
than the fields.

One field far from the others makes the box, and so the search and the grid, as large as the
gap: a parcel at 10 E among parcels at 82.6 E gave a grid of 750,015 x 271,169 pixels, and the
cube job reached 21.9 GB before it was killed. So a box wider than a UTM zone (6 degrees of
longitude: the grid is one UTM zone's) or a grid of more than ``fields.max_grid_pixels`` pixels
is refused when the config is read, naming the fields (ids and rows) whose removal makes it fit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ndvicube.errors import ConfigError
from ndvicube.geo import BBox, Point

#: Longitude a field set may span: the width of a UTM zone, whose grid it gets.
UTM_ZONE_WIDTH = 6.0
#: Outlying fields named in a message (the others are counted).
NAMED = 10


@dataclass(frozen=True)
class FieldLimits:
    """The ``fields`` section: how large a field and a field set's grid may be."""

    max_field_km2: float = 100.0
    """A field larger than this (km², on the ellipsoid) is rejected as ``too large``."""
    max_grid_pixels: float = 1.5e8
    """A field set whose grid has more pixels than this is refused before any read."""


@dataclass(frozen=True)
class Members:
    """Where each usable field and point of a field set lies (EPSG:4326)."""

    names: tuple[str, ...]
    """How each is named in messages: ``'north_12' (row 7)`` or ``point 'well_3'``."""
    bounds: np.ndarray
    """(members, 4) lon_min, lat_min, lon_max, lat_max of each."""

    def bbox(self, keep: np.ndarray | None = None) -> BBox:
        """The box of all members (or of those ``keep`` marks)."""
        b = self.bounds if keep is None else self.bounds[keep]
        return (float(b[:, 0].min()), float(b[:, 1].min()), float(b[:, 2].max()),
                float(b[:, 3].max()))  # fmt: skip


def field_set_bbox(
    polygons: str | Path | None,
    points: Sequence[Point],
    *,
    where: str = "fields file",
    limits: FieldLimits | None = None,
    resolution: float = 10.0,
) -> BBox:
    """lon_min, lat_min, lon_max, lat_max (EPSG:4326) of the usable polygons of ``polygons``
    (a fields file, or None) and of ``points``.

    Raises :class:`ConfigError` when there is nothing to bound (no point, and a file without
    one usable polygon, or one that cannot be read: no ``id`` column, no CRS...), or when the
    box is wider than a UTM zone or its grid at ``resolution`` has more pixels than
    ``limits.max_grid_pixels``: the message names the fields that make it so. ``where`` names
    the config key in messages.
    """
    limits = limits or FieldLimits()
    members = _members(polygons, points, where, limits)
    bbox = members.bbox()
    check_extent(members, bbox, where=where, limits=limits, resolution=resolution)
    return bbox


def _members(
    polygons: str | Path | None, points: Sequence[Point], where: str, limits: FieldLimits
) -> Members:
    """The usable polygons' and the points' bounds, with their names."""
    names = [f"point {p.id!r}" for p in points]
    bounds = [(p.lon, p.lat, p.lon, p.lat) for p in points]
    if polygons is not None:
        screened = _usable_fields(polygons, where, bool(points), limits)
        fields = screened.accepted
        if not fields.empty:
            from ndvicube.fields.checks import field_label

            rows = screened.accepted_rows
            names = [field_label(i, r) for i, r in zip(fields["id"], rows, strict=True)] + names
            bounds = [*fields.to_crs("EPSG:4326").bounds.to_numpy().tolist(), *bounds]
    if not bounds:
        raise ConfigError(
            f"Invalid config at {where}: the field set has neither fields nor points."
        )
    return Members(tuple(names), np.asarray(bounds, dtype="float64"))


def _usable_fields(path: str | Path, where: str, has_points: bool, limits: FieldLimits):
    """The screening of the file before any search (its accepted fields are those counted)."""
    from ndvicube.fields.checks import screen_fields
    from ndvicube.fields.read import read_fields

    fields = read_fields(path, where=f"config at {where}")
    screened = screen_fields(fields, max_field_km2=limits.max_field_km2)
    if screened.accepted.empty and not has_points:
        raise ConfigError(
            f"Invalid config at {where}: {str(path)!r} has no usable polygon "
            f"({screened.summary()}), so the field set has nothing to cover. Each field needs "
            "a non-empty polygon or multipolygon of at most fields.max_field_km2 "
            f"({limits.max_field_km2:g} km²) and an id of its own; fix the file, or give the "
            "area points or a bbox."
        )
    return screened


def check_extent(
    members: Members, bbox: BBox, *, where: str, limits: FieldLimits, resolution: float
) -> None:
    """Refuse a box wider than a UTM zone or a grid larger than ``limits.max_grid_pixels``,
    naming the members whose removal makes it fit (or, when no few do, the outermost ones)."""
    span = bbox[2] - bbox[0]
    if span <= UTM_ZONE_WIDTH and _approx_pixels(bbox, resolution) <= 0.9 * limits.max_grid_pixels:
        return  # clearly within: no grid made (the estimate is within a few %)
    from ndvicube.geo import area_geobox, utm_crs_for

    crs = utm_crs_for((bbox[0] + bbox[2]) / 2, (bbox[1] + bbox[3]) / 2)
    height, width = area_geobox(bbox, crs, resolution).shape.yx
    if span <= UTM_ZONE_WIDTH and width * height <= limits.max_grid_pixels:
        return
    why = (
        f"spans {span:.2f} degrees of longitude ({bbox[0]:.3f} to {bbox[2]:.3f}), more than a "
        f"UTM zone's width ({UTM_ZONE_WIDTH:g} degrees: the grid is one zone's)"
        if span > UTM_ZONE_WIDTH
        else f"has more pixels than fields.max_grid_pixels ({limits.max_grid_pixels:,.0f})"
    )
    outliers = _outliers(members, resolution, limits)
    if outliers is not None:
        culprits = (
            f"the field(s) that make it so, far from the others: {_listed(members, outliers)}"
        )
        fix = (
            "Remove them from the file (or give them an area of their own), or check their "
            "coordinates"
        )
    else:
        culprits = (
            f"no few fields make it so; the outermost are {_listed(members, _outermost(members))}"
        )
        fix = "Split the fields into several areas, one per region"
    if span <= UTM_ZONE_WIDTH:
        fix += "; or raise fields.max_grid_pixels if the machine can hold such a grid"
    raise ConfigError(
        f"Invalid config at {where}: the field set's box {[round(v, 4) for v in bbox]} {why}, "
        f"so its grid would be {width:,} x {height:,} pixels ({crs}); {culprits}. {fix}."
    )


def _approx_pixels(bbox: BBox, resolution: float) -> float:
    """Pixels of the box's grid, from its size on a sphere (a cheap estimate, within a few %)."""
    lat = math.radians((bbox[1] + bbox[3]) / 2)
    width_m = (bbox[2] - bbox[0]) * 111_320.0 * math.cos(lat)
    height_m = (bbox[3] - bbox[1]) * 110_574.0
    return (width_m / resolution + 1) * (height_m / resolution + 1)


def _fits(bbox: BBox, resolution: float, limits: FieldLimits) -> bool:
    return bbox[2] - bbox[0] <= UTM_ZONE_WIDTH and (
        _approx_pixels(bbox, resolution) <= 0.95 * limits.max_grid_pixels
    )


def _outliers(members: Members, resolution: float, limits: FieldLimits) -> np.ndarray | None:
    """The fewest members farthest from the median centre whose removal makes the box fit
    (at most a tenth of them, and 100), or None when no such few do."""
    b = members.bounds
    lon, lat = (b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2
    c_lon, c_lat = np.median(lon), np.median(lat)
    far = np.hypot((lon - c_lon) * math.cos(math.radians(c_lat)), lat - c_lat)
    order = np.argsort(-far, kind="stable")
    keep = np.ones(len(b), dtype=bool)
    for count, k in enumerate(order[: min(100, max(1, len(b) // 10), len(b) - 1)], start=1):
        keep[k] = False
        if _fits(members.bbox(keep), resolution, limits):
            return order[:count]
    return None


def _outermost(members: Members) -> np.ndarray:
    """The members at the box's west, south, east and north edges."""
    b = members.bounds
    ends = [b[:, 0].argmin(), b[:, 1].argmin(), b[:, 2].argmax(), b[:, 3].argmax()]
    return np.asarray(list(dict.fromkeys(int(k) for k in ends)))


def _listed(members: Members, which: np.ndarray) -> str:
    """``'far' (row 2001) at 10.000 E 50.000 N, ... and 3 more``."""
    parts = []
    for k in which[:NAMED]:
        lon = (members.bounds[k, 0] + members.bounds[k, 2]) / 2
        lat = (members.bounds[k, 1] + members.bounds[k, 3]) / 2
        parts.append(f"{members.names[k]} at lon {lon:.3f}, lat {lat:.3f}")
    more = f" and {len(which) - NAMED} more" if len(which) > NAMED else ""
    return ", ".join(parts) + more

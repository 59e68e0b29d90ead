"""Screening fields: each is accepted (repaired where that is unambiguous) or rejected, and why.

One bad field must not sink a run of thousands (openEO's ``aggregate_spatial`` fails a whole job
on one invalid polygon and does not say which). A field is rejected, the first that applies, as

* ``duplicated`` - its id was on an earlier row of the file: the first row with an id is kept,
  whatever either geometry is, so a later row never silently replaces it;
* ``empty`` - no geometry, or an empty one;
* ``invalid`` - no id; not a polygon or multipolygon; or invalid and not repairable, as a
  polygon collapsed to a line, which ``make_valid`` leaves without area;
* ``too large`` - its area is above ``fields.max_field_km2`` (100 km² by default): a field's
  cells are held in memory at once by the polygon series, and its box widens the grid, so one
  district-sized polygon slipped among parcels would set the cost of the whole run;
* ``outside every scene`` - it intersects no footprint of the search's items (their STAC
  ``geometry`` in ``items.json``, EPSG:4326), so no pixel of it could ever be read.

Each row is also known by its place in the file (``row``, 1 for the first feature), so a field
without an id is still named in ``fields_rejected.csv`` and in the log.

A self-intersecting polygon (a bow tie, a ring crossing itself) is repaired with shapely's
``make_valid`` when what comes out has area: its polygonal parts are kept, and any line or point
``make_valid`` split off (a spike, a zero-width neck) is dropped, as it covers no pixel. Each
repair is logged with the field's id.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

    import geopandas as gpd
    import pandas as pd
    from shapely.geometry.base import BaseGeometry

log = logging.getLogger(__name__)

#: Why a field was left out, as written in ``fields_rejected.csv``.
INVALID, EMPTY, DUPLICATED, OUTSIDE = "invalid", "empty", "duplicated", "outside every scene"
TOO_LARGE = "too large"
REASONS = (INVALID, EMPTY, DUPLICATED, TOO_LARGE, OUTSIDE)
#: Equal-area CRS the fields' areas are measured in (WGS 84 / NSIDC EASE-Grid 2.0 Global), so a
#: file in degrees and one in metres give the same km².
EQUAL_AREA = "EPSG:6933"

_POLYGONAL = ("Polygon", "MultiPolygon")


@dataclass(frozen=True)
class Screening:
    """What became of each row of a fields file."""

    accepted: gpd.GeoDataFrame
    """The fields kept (``id``, ``geometry``, repaired ones repaired), in the input's CRS and
    order."""
    rejected: pd.DataFrame
    """``id``, ``row`` (1 for the file's first feature) and ``reason`` (one of :data:`REASONS`)
    of each row left out, in file order."""
    repaired: tuple[str, ...]
    """Ids of the accepted fields that ``make_valid`` repaired."""
    accepted_rows: tuple[int, ...] = ()
    """The row in the file (1 for the first) of each accepted field, in :attr:`accepted`'s
    order."""

    def summary(self) -> str:
        """``12 field(s) accepted (1 repaired), 3 rejected (2 duplicated, 1 empty)``."""
        counts = Counter(self.rejected["reason"])
        why = ", ".join(f"{counts[r]} {r}" for r in REASONS if counts[r])
        return (
            f"{len(self.accepted)} field(s) accepted ({len(self.repaired)} repaired), "
            f"{len(self.rejected)} rejected" + (f" ({why})" if why else "")
        )


def screen_fields(
    fields: gpd.GeoDataFrame,
    *,
    footprints: Sequence[BaseGeometry] | None = None,
    max_field_km2: float | None = None,
) -> Screening:
    """Accept or reject each row of ``fields`` (as :func:`~ndvicube.fields.read.read_fields`
    returns them), repairing self-intersections.

    ``footprints`` are the scenes' outlines in EPSG:4326 (:func:`item_footprints`); None skips
    the ``outside every scene`` check (the config sizes a field set before any search).
    ``max_field_km2``: fields larger than this are ``too large`` (None: no limit).
    """
    import geopandas as gpd
    import numpy as np
    import pandas as pd

    geometries, reasons, repaired = [], [], []
    seen: set[str] = set()
    for fid, geometry in zip(fields["id"], fields.geometry, strict=True):
        if not fid:
            fixed, reason = None, INVALID
        else:
            fixed, reason = (None, DUPLICATED) if fid in seen else _usable(geometry)
        seen.add(fid)
        if fixed is not None and fixed is not geometry:
            log.info("field %r: invalid (%s) geometry repaired by make_valid", fid, _why(geometry))
            repaired.append(fid)
        geometries.append(fixed)
        reasons.append(reason)
    frame = gpd.GeoDataFrame(
        {"id": list(fields["id"]), "row": np.arange(1, len(fields) + 1), "reason": reasons},
        geometry=geometries,
        crs=fields.crs,
    )
    if max_field_km2 is not None:
        kept = frame["reason"].isna().to_numpy()
        large = np.zeros(len(frame), dtype=bool)
        large[kept] = area_km2(frame.geometry[kept]) > max_field_km2
        frame.loc[large, "reason"] = TOO_LARGE
    if footprints is not None:
        kept = frame["reason"].isna().to_numpy()
        outside = np.zeros(len(frame), dtype=bool)
        outside[kept] = ~_inside_some(frame.geometry[kept], footprints)
        frame.loc[outside, "reason"] = OUTSIDE
    keep = frame["reason"].isna()
    rejected = pd.DataFrame(frame.loc[~keep, ["id", "row", "reason"]]).reset_index(drop=True)
    accepted = frame.loc[keep, ["id", "geometry"]].reset_index(drop=True)
    kept_ids = set(accepted["id"])
    rows = tuple(int(r) for r in frame.loc[keep, "row"])
    return Screening(accepted, rejected, tuple(r for r in repaired if r in kept_ids), rows)


def area_km2(geometries: gpd.GeoSeries):
    """Each geometry's area in km² on the ellipsoid (measured in :data:`EQUAL_AREA`)."""
    import numpy as np

    if len(geometries) == 0:
        return np.zeros(0)
    return geometries.to_crs(EQUAL_AREA).area.to_numpy() / 1e6


def field_label(fid: str, row: int) -> str:
    """How a field is named in messages: ``'north_12' (row 7)``, or ``row 7 (no id)``."""
    return f"{fid!r} (row {row})" if fid else f"row {row} (no id)"


def _usable(geometry: BaseGeometry | None) -> tuple[BaseGeometry | None, str | None]:
    """The geometry to keep (repaired if need be) and None, or None and the reason it is not."""
    import shapely

    if geometry is None or geometry.is_empty:
        return None, EMPTY
    if geometry.geom_type not in _POLYGONAL:
        return None, INVALID
    if geometry.is_valid:
        return geometry, None
    fixed = _polygonal_part(shapely.make_valid(geometry))
    return (fixed, None) if fixed is not None else (None, INVALID)


def _polygonal_part(geometry: BaseGeometry) -> BaseGeometry | None:
    """The polygons of ``make_valid``'s result (lines and points it split off dropped), or
    None when it has no area."""
    from shapely.geometry import MultiPolygon

    if geometry.geom_type in _POLYGONAL:
        parts = [geometry]
    else:
        parts = [g for g in getattr(geometry, "geoms", ()) if g.geom_type in _POLYGONAL]
    polygons = [p for part in parts for p in getattr(part, "geoms", [part]) if p.area > 0]
    if not polygons:
        return None
    return polygons[0] if len(polygons) == 1 else MultiPolygon(polygons)


def _why(geometry: BaseGeometry) -> str:
    """GEOS's reason a geometry is invalid (``Self-intersection[1 1]``)."""
    import shapely

    return shapely.is_valid_reason(geometry)


def _inside_some(geometries: gpd.GeoSeries, footprints: Sequence[BaseGeometry]):
    """Per geometry, whether it intersects at least one footprint (EPSG:4326)."""
    import numpy as np
    import shapely

    in_degrees = geometries.to_crs("EPSG:4326").to_numpy()
    hits = np.zeros(len(in_degrees), dtype=bool)
    if len(footprints) and len(in_degrees):
        found, _ = shapely.STRtree(list(footprints)).query(in_degrees, predicate="intersects")
        hits[found] = True
    return hits


def item_footprints(items_path: str | Path) -> list[BaseGeometry]:
    """The outlines (STAC ``geometry``, EPSG:4326) of the items in an ``items.json``; items
    without a geometry have no footprint."""
    from shapely.geometry import shape

    features = json.loads(Path(items_path).read_text())["features"]
    return [shape(f["geometry"]) for f in features if f.get("geometry")]

"""The demo's field set: polygons drawn over its parcels, good and deliberately bad, as GeoJSON.

Why: a field set (an area given by ``polygons:``) needs fields whose exact answer is known
(:mod:`ndvicube.demo.field_truth`) and, beside them, one field of each kind the ``fields`` rule
must reject, so that the demo and the tests show every path. The fields are a function of the
layout (the box), not of the seed, like the points: ``fields.geojson`` of the default box is
byte-identical to ``config/demo_fields.geojson``, which the demo config reads (a config names
its fields file before any rule runs, so it cannot name one the first job writes).

All coordinates are in EPSG:32644, the cube's CRS: what the generator intersects with pixel
squares is exactly what the workflow reads. Positions are metres from the south-west corner of
the tiles' union (x 657780, y 3003900 for the default box); "parcel N" is the default seed's.

Accepted (15), all inside the demo box:

- ``west_rice``, ``overlap_rice``, ``east_orchard``, ``wedge_rice``: exactly one parcel each
  (91: west tile only; 126: across the east tile's west edge; 209: east tile only, so empty on
  the passes without it; 160: partly in the west tile's swath-edge wedge, filled by the east
  tile when it is there).
- ``inset``: inside parcel 108 (west tile only), edges off the pixel grid.
- ``cross_edges``: a rectangle across the edges of parcels 140, 141 and 156.
- ``rotated``: a square turned 30 degrees, across parcels 128 and 144.
- ``tiny``: 6 m x 5 m, smaller than a pixel, across a pixel edge (coverage 0.25 + 0.05).
- ``overlap_a``, ``overlap_b``: two fields sharing a 67.5 m x 56.7 m corner (east tile only).
- ``pond``: inside the pond (NDVI < 0).
- ``swath_edge``: at the south edge where the wedge reaches west of the overlap: part of it is
  never observed (its clear fraction stays below 1).
- ``ring``: a field with a hole.
- ``two_plots``: a multipolygon of two squares in two parcels.
- ``bowtie``: self-intersecting; ``make_valid`` repairs it into two triangles (kept).

Rejected by the ``fields`` rule, one per reason: ``empty`` (an empty polygon, *empty*), a second
``west_rice`` (another geometry under a used id, *duplicated*), ``sliver`` (a polygon collapsed
onto a line, which ``make_valid`` leaves without area, *invalid*), ``far_away`` (500 m east of the
tiles, *outside every scene*). ``far_away`` is screened out only after the search, so it still
widens the field set's box, and grid, to the east (the cube stays sparse: no chunk of it is
read). It lies no farther because the quick-look and composites draw the whole grid: 5 km away,
the demo's maps were a thin strip of data in a blank frame.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from shapely.geometry import MultiPolygon, Polygon, box, mapping
from shapely.geometry.base import BaseGeometry

from ndvicube.demo.world import EPSG, _Layout

FIELD_IDS_REJECTED = {
    "empty": "empty",
    "west_rice": "duplicated",
    "sliver": "invalid",
    "far_away": "outside every scene",
}
"""Ids of the rejected rows and the reason the ``fields`` rule writes (``fields_rejected.csv``)."""
OUTSIDE_M = 500.0
"""How far east of the tiles ``far_away`` lies (m)."""


@dataclass(frozen=True)
class DemoField:
    """One row of the field set."""

    id: str
    geometry: BaseGeometry
    """In EPSG:32644, as written (``bowtie`` unrepaired, ``empty`` empty)."""
    role: str
    """What the field is there to show (the file's ``role`` column)."""
    rejected: str | None = None
    """The reason the ``fields`` rule rejects it, or None when it is kept."""


def demo_fields(lay: _Layout) -> tuple[DemoField, ...]:
    """The field set of a layout, in file order (the bad rows after the good ones)."""
    x0, y0 = lay.x0, lay.y0

    def at(x: float, y: float) -> tuple[float, float]:
        return round(x0 + x, 3), round(y0 + y, 3)

    def rect(a: float, b: float, c: float, d: float) -> Polygon:
        return box(*at(a, b), *at(c, d))

    cx, cy, half = x0 + 1320, y0 + 1200, 45.0
    turn = [math.radians(30 + 90 * k) for k in range(4)]
    square = [
        (round(cx + half * math.sqrt(2) * math.cos(a + math.pi / 4), 3),
         round(cy + half * math.sqrt(2) * math.sin(a + math.pi / 4), 3))
        for a in turn
    ]  # fmt: skip
    ring = Polygon(
        rect(775.5, 655.5, 864.5, 744.5).exterior.coords,
        [rect(805, 685, 835, 715).exterior.coords],
    )
    bow = [(995, 1855), (1105, 1965), (1105, 1855), (995, 1965)]
    line = [(820, 1600), (920, 1650), (870, 1625), (820, 1600)]
    far = lay.x1 - x0 + OUTSIDE_M
    good = [
        ("west_rice", rect(880, 1480, 980, 1760), "one parcel, west tile only"),
        ("overlap_rice", rect(1120, 1540, 1320, 1840), "one parcel, across the east tile's edge"),
        ("east_orchard", rect(2140, 1500, 2380, 1740), "one parcel, east tile only"),
        ("wedge_rice", rect(1480, 1280, 1760, 1540), "one parcel, partly in the swath wedge"),
        ("inset", rect(993.3, 1437.5, 1106.7, 1704.2), "inside one parcel, edges off the grid"),
        ("cross_edges", rect(1433.7, 1911.2, 1521.3, 2003.8), "across three parcels' edges"),
        ("rotated", Polygon(square), "a square turned 30 degrees, across two parcels"),
        ("tiny", rect(925, 1391.5, 931, 1396.5), "6 m x 5 m: smaller than a pixel"),
        ("overlap_a", rect(2170, 1940, 2320, 2090), "overlaps overlap_b"),
        ("overlap_b", rect(2252.5, 2033.3, 2367.5, 2176.7), "overlaps overlap_a"),
        ("pond", rect(2105, 1045, 2255, 1155), "water: NDVI below 0"),
        ("swath_edge", rect(1120, 630, 1220, 700), "partly never observed (swath edge)"),
        ("ring", ring, "a field with a hole"),
        ("two_plots", MultiPolygon([rect(780, 1980, 840, 2040), rect(900, 2030, 960, 2090)]),
         "two squares in two parcels"),
        ("bowtie", Polygon([at(x, y) for x, y in bow]),
         "self-intersecting: make_valid repairs it into two triangles (kept)"),
    ]  # fmt: skip
    bad = [
        ("empty", Polygon(), "an empty geometry"),
        ("west_rice", rect(880, 1300, 980, 1400), "a used id again, another geometry"),
        ("sliver", Polygon([at(x, y) for x, y in line]), "collapsed onto a line"),
        ("far_away", rect(far, 1500, far + 200, 1700), "500 m east of the tiles"),
    ]
    return tuple(DemoField(*row) for row in good) + tuple(
        DemoField(fid, geometry, f"{role}: rejected ({FIELD_IDS_REJECTED[fid]})",
                  FIELD_IDS_REJECTED[fid])
        for fid, geometry, role in bad
    )  # fmt: skip


def write_fields(path: Path, fields: tuple[DemoField, ...]) -> None:
    """Write the field set as GeoJSON in EPSG:32644 (a ``crs`` member, as GDAL writes it).

    Written by hand, not through GDAL: the bytes depend only on the coordinates (so the file
    can be compared with the config's copy), and an empty polygon stays an empty polygon.
    """
    features = [
        {
            "type": "Feature",
            "properties": {"id": f.id, "role": f.role},
            "geometry": mapping(f.geometry) if not f.geometry.is_empty else _EMPTY,
        }
        for f in fields
    ]
    crs = {"type": "name", "properties": {"name": f"urn:ogc:def:crs:EPSG::{EPSG}"}}
    head = f'{{"type": "FeatureCollection", "name": "fields", "crs": {json.dumps(crs)},\n'
    rows = ",\n".join(json.dumps(f) for f in features)  # a feature per line: diffs read well
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(f'{head}"features": [\n{rows}\n]}}\n')
    tmp.replace(path)


_EMPTY = {"type": "Polygon", "coordinates": []}

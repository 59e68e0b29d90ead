"""Write an area's viewer folder: ``index.html``, the vendored scripts, the tiles, the data.

The folder opens by double-click (``file://``), needs no server and no network, and is what
the quick-look job writes next to its figure (one job, no extra process); copy it anywhere,
or serve it as static files.
"""

from __future__ import annotations

import html
import logging
import os
import shutil
import time
from collections.abc import Mapping, Sequence
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from ndvicube.viewer import data, tiles

if TYPE_CHECKING:
    from ndvicube.geo import Point

log = logging.getLogger(__name__)

#: The vendored libraries and the page's own script and style, copied into every viewer.
STATIC = ("leaflet.js", "leaflet.css", "uPlot.iife.min.js", "uPlot.min.css", "viewer.js",
          "viewer.css", "LICENSE.leaflet", "LICENSE.uplot", "VERSIONS")  # fmt: skip


def legend_stops(n: int = 11) -> list[str]:
    """CSS colours of the maps' colour map at ``n`` even steps of its value range."""
    import numpy as np

    from ndvicube.figures.maps import VALUE_RANGE, rgba

    values = np.linspace(*VALUE_RANGE, n)
    return ["#" + "".join(f"{int(c):02x}" for c in px[:3]) for px in rgba(values)]


def build_viewer(
    *,
    maps: Mapping[str, object],
    crs,
    what: str,
    out: str | Path,
    area: str,
    points: Sequence[Point],
    tables: Mapping[str, str | Path | None],
    cache: str | Path,
    indices: Sequence[str] = ("NDVI",),
) -> None:
    """Write the viewer of ``area`` into ``out``: the tile pyramids of ``maps`` (index ->
    (time, y, x) array in ``crs``: the composites the quick-look draws; rendered into ``cache``
    once per distinct map), the fields (``tables["fields"]``, GeoParquet) and
    ``points``, and their series from ``tables`` (``series_raw``, ``series_smoothed``,
    ``phenology``, ``polygons_raw``, ``polygons_smoothed``, ``polygons_phenology``,
    ``fields_rejected``; each may be None)."""
    started = time.perf_counter()
    out = Path(out)
    shutil.rmtree(out, ignore_errors=True)
    (out / "data").mkdir(parents=True)
    layers, sets = {}, []
    grid = None
    for index, array in maps.items():
        grid = grid or tiles.Grid.of(array, crs)
        layers[index] = tiles.write_tiles(
            array, Path(cache) / index, out / "tiles" / index, sets, crs
        )
    bounds = tiles.lonlat_bounds(grid)
    low, top = tiles.zoom_range(grid)
    static = files("ndvicube.viewer") / "static"
    for name in STATIC:
        (out / "static").mkdir(exist_ok=True)
        (out / "static" / name).write_bytes((static / name).read_bytes())

    field_ids: list[str] = []
    if tables.get("fields"):
        field_ids, shapes = data.outlines(tables["fields"])
        (out / "data/fields.js").write_text(f"ndvicubeViewer.fields({shapes});\n")
        entries = data.series_entries(
            field_ids, tables["polygons_raw"], tables["polygons_smoothed"],
            tables.get("polygons_phenology"), "polygon", indices, "_mean",
        )  # fmt: skip
        data.write_series_shards(out / "data/series", "fields", field_ids, entries)
    point_list = [{"id": p.id, "lon": p.lon, "lat": p.lat} for p in points]
    if points and tables.get("series_raw"):
        ids = [p["id"] for p in point_list]
        entries = data.series_entries(
            ids, tables["series_raw"], tables["series_smoothed"], tables.get("phenology"),
            "point", indices, "",
        )  # fmt: skip
        for n, p in enumerate(point_list):
            p["shard"] = n // data.SHARD
        data.write_series_shards(out / "data/series", "points", ids, entries)
    from ndvicube.figures.maps import VALUE_RANGE

    setup = {
        "area": area,
        "bounds": bounds,
        "zoom": [low, top],
        "tile_sets": sets,
        "layers": layers,
        "indices": list(layers) or list(indices),
        "series_indices": list(indices),
        "what": what,
        "legend": {"range": list(VALUE_RANGE), "colours": legend_stops()},
        "points": point_list,
        "has_fields": bool(tables.get("fields")),
        "rejected": data.rejected_counts(tables.get("fields_rejected")),
    }
    (out / "data/setup.js").write_text(data.script("ndvicubeViewer.setup", setup))
    template = (files("ndvicube.viewer") / "template.html").read_text()
    page = template.replace("{{title}}", html.escape(f"ndvicube viewer: {area}"))
    page = page.replace("{{fields}}", '<script src="data/fields.js"></script>' if field_ids else "")
    (out / "index.html").write_text(page)
    log.info(
        "viewer of %s: %d field(s), %d point(s), %d layer(s) in %.2f s -> %s", area,
        len(field_ids), len(point_list), sum(len(v) for v in layers.values()),
        time.perf_counter() - started, out,
    )  # fmt: skip


def write_areas_index(results: str | Path) -> None:
    """``results/index.html``: a link to every area's viewer under ``results`` (names escaped).

    Every area's quick-look job writes it from the viewers it finds, under a lock and by an
    atomic rename, so the last job lists them all: the list of areas is not a parameter of the
    job, or adding an area would rerun every other area's quick-look.
    """
    import fcntl

    results = Path(results)
    with open(results / ".index.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        areas = sorted(p.parent.parent.name for p in results.glob("*/viewer/index.html"))
        items = "\n".join(
            f'<li><a href="{html.escape(quote(a))}/viewer/index.html">{html.escape(a)}</a></li>'
            for a in areas
        )
        partial = results / f"index.html.{os.getpid()}.partial"
        partial.write_text(
            '<!doctype html>\n<html><head><meta charset="utf-8"><title>ndvicube results</title>'
            f"</head><body><h1>ndvicube: areas</h1><ul>\n{items}\n</ul></body></html>\n"
        )
        os.replace(partial, results / "index.html")

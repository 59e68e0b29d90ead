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
    from ndvicube.figures.maps import VALUE_RANGE

    started = time.perf_counter()
    out = Path(out)
    shutil.rmtree(out, ignore_errors=True)
    (out / "data").mkdir(parents=True)
    layers, sets = {}, []
    for index, array in maps.items():
        layers[index] = tiles.write_tiles(array, Path(cache) / index, out / "tiles" / index,
                                          sets, crs)  # fmt: skip
    grid = tiles.Grid.of(next(iter(maps.values())), crs)
    _copy_static(out / "static")
    field_ids = _write_fields(out / "data", tables, indices)
    point_list = _write_points(out / "data", points, tables, indices)
    setup = {
        "area": area, "what": what, "bounds": tiles.lonlat_bounds(grid),
        "zoom": list(tiles.zoom_range(grid)), "tile_sets": sets, "layers": layers,
        "indices": list(layers) or list(indices), "series_indices": list(indices),
        "legend": {"range": list(VALUE_RANGE), "colours": legend_stops()},
        "points": point_list, "rejected": data.rejected_counts(tables.get("fields_rejected")),
    }  # fmt: skip
    (out / "data/setup.js").write_text(data.script("ndvicubeViewer.setup", setup))
    _write_page(out / "index.html", area, bool(field_ids))
    log.info(
        "viewer of %s: %d field(s), %d point(s), %d layer(s) in %.2f s -> %s", area,
        len(field_ids), len(point_list), sum(len(v) for v in layers.values()),
        time.perf_counter() - started, out,
    )  # fmt: skip


def _copy_static(folder: Path) -> None:
    """The vendored libraries, their licences and the page's own script and style."""
    static = files("ndvicube.viewer") / "static"
    folder.mkdir(parents=True, exist_ok=True)
    for name in STATIC:
        (folder / name).write_bytes((static / name).read_bytes())


def _write_fields(folder: Path, tables, indices: Sequence[str]) -> list[str]:
    """``fields.js`` (outlines) and the fields' series shards; returns the fields' ids."""
    if not tables.get("fields"):
        return []
    ids, shapes = data.outlines(tables["fields"])
    (folder / "fields.js").write_text(f"ndvicubeViewer.fields({shapes});\n")
    entries = data.series_entries(
        ids, tables["polygons_raw"], tables["polygons_smoothed"],
        tables.get("polygons_phenology"), "polygon", indices, "_mean",
    )  # fmt: skip
    data.write_series_shards(folder / "series", "fields", ids, entries)
    return ids


def _write_points(folder: Path, points: Sequence[Point], tables, indices) -> list[dict]:
    """The points' series shards (when the area has point tables); returns the points as the
    page lists them (id, lon, lat, shard)."""
    listed = [{"id": str(p.id), "lon": p.lon, "lat": p.lat} for p in points]
    if not points or not tables.get("series_raw"):
        return listed
    ids = [p["id"] for p in listed]
    entries = data.series_entries(
        ids, tables["series_raw"], tables["series_smoothed"], tables.get("phenology"),
        "point", indices, "",
    )  # fmt: skip
    for n, p in enumerate(listed):
        p["shard"] = n // data.SHARD
    data.write_series_shards(folder / "series", "points", ids, entries)
    return listed


def _write_page(path: Path, area: str, fields: bool) -> None:
    """``index.html`` from the package's template (the area's name escaped)."""
    template = (files("ndvicube.viewer") / "template.html").read_text()
    page = template.replace("{{title}}", html.escape(f"ndvicube viewer: {area}"))
    script = '<script src="data/fields.js"></script>' if fields else ""
    path.write_text(page.replace("{{fields}}", script))


def write_areas_index(results: str | Path, areas: Sequence[str] | None = None) -> None:
    """``results/index.html``: a link to every area's viewer under ``results`` (names escaped).

    Every area's quick-look job writes it from the viewers it finds, under a lock and by an
    atomic rename, so the last job lists them all: the list of areas is not a parameter of the
    job, or adding an area would rerun every other area's quick-look. When the outputs go to a
    bucket (Snakemake's storage provider) no viewer stays on this disk to be found: a job of its
    own then writes it from the workflow's ``areas`` (docs/cloud.md).
    """
    import fcntl

    results = Path(results)
    results.mkdir(parents=True, exist_ok=True)
    with open(results / ".index.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if areas is None:
            areas = [p.parent.parent.name for p in results.glob("*/viewer/index.html")]
        items = "\n".join(
            f'<li><a href="{html.escape(quote(a))}/viewer/index.html">{html.escape(a)}</a></li>'
            for a in sorted(areas)
        )
        partial = results / f"index.html.{os.getpid()}.partial"
        partial.write_text(
            '<!doctype html>\n<html><head><meta charset="utf-8"><title>ndvicube results</title>'
            f"</head><body><h1>ndvicube: areas</h1><ul>\n{items}\n</ul></body></html>\n"
        )
        os.replace(partial, results / "index.html")

"""The table jobs' steps, file to file: the cube's series at points or polygons, smoothed, and
their seasons.

Each step reads the file the one before wrote (``series_raw.csv`` -> ``series_smoothed.csv`` ->
``phenology.csv``, and the same for ``polygons_*.csv``), so a test or a benchmark runs exactly
what a rule runs, and a table opened in a spreadsheet is what the next step read.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported where used: ndvicube.jobs imports this module at start-up
    from ndvicube.geo import Point
    from ndvicube.timeseries.phenology import Phenology
    from ndvicube.timeseries.smoothing import Smoothing

log = logging.getLogger(__name__)


def extract_series(*, cube_path: str | Path, points: Sequence[Point], out: str | Path) -> None:
    """Write ``series_raw.csv``: the cube's value at every point and solar day."""
    from ndvicube.cube.objectstore import resolve
    from ndvicube.cube.store import open_cube
    from ndvicube.timeseries.points import extract_points
    from ndvicube.timeseries.tables import write_series

    store = resolve(cube_path)  # one version for metadata and every chunk (a link moves)
    series = extract_points(open_cube(store, dask=False), points, store=store)
    write_series(series, str(out))
    log.info("series: %d point(s) x %d date(s)", len(points), series["time"].nunique())


def extract_polygon_series(
    *,
    cube_path: str | Path,
    polygons_path: str | Path,
    crs: str,
    out: str | Path,
    min_clear_fraction: float = 0.0,
    batch_cells: int | None = None,
) -> None:
    """Write ``polygons_raw.csv``: mean, median, count and clear fraction per polygon and day
    (the polygons in batches of about ``batch_cells`` cells; default
    :data:`~ndvicube.timeseries.polygons.BATCH_CELLS`)."""
    from ndvicube.cube.objectstore import resolve
    from ndvicube.cube.store import open_cube
    from ndvicube.timeseries.polygons import BATCH_CELLS, polygon_series, read_polygons
    from ndvicube.timeseries.tables import write_polygon_series

    polygons = read_polygons(polygons_path, crs)
    store = resolve(cube_path)  # one version for metadata and every chunk (a link moves)
    cube = open_cube(store, dask=False)  # the cells are read from the store itself
    table = polygon_series(cube, polygons, min_clear_fraction=min_clear_fraction,
                           store=store, batch_cells=batch_cells or BATCH_CELLS)  # fmt: skip
    write_polygon_series(table, out)
    log.info("polygon series: %d polygon(s) x %d date(s)", len(polygons), table["time"].nunique())


def smooth(*, raw_path: str | Path, out: str | Path, smoothing: Smoothing | None = None) -> None:
    """Write ``series_smoothed.csv`` from ``series_raw.csv`` (:mod:`~ndvicube.timeseries.smoothing`;
    the notebook's recipe by default)."""
    from ndvicube.timeseries.smoothing import Smoothing, smooth_series
    from ndvicube.timeseries.tables import read_series, write_series

    raw = read_series(str(raw_path))
    options = (smoothing or Smoothing()).options()
    write_series(smooth_series(raw, **options), out, key=_key_column(raw_path))


def season_metrics(
    *, smoothed_path: str | Path, out: str | Path, phenology: Phenology | None = None
) -> None:
    """Write ``phenology.csv``: each season's start, peak, end and amplitude per point, on the
    smoothed series of ``phenology.index`` (a catalogue name)."""
    from ndvicube.cube.indices import column
    from ndvicube.timeseries.phenology import Phenology
    from ndvicube.timeseries.phenology import phenology as seasons
    from ndvicube.timeseries.tables import read_series, write_phenology

    phenology = phenology or Phenology()
    table = seasons(
        read_series(str(smoothed_path)),
        fraction=phenology.fraction,
        min_amplitude=phenology.min_amplitude,
        index=column(phenology.index),
    )
    write_phenology(table, out, key=_key_column(smoothed_path))
    log.info("phenology: %d season(s) at %d point(s)", len(table), table["point"].nunique())


def smooth_and_find_seasons(
    raw_path: str | Path,
    smoothed_out: str | Path,
    phenology_out: str | Path,
    smoothing: Smoothing,
    phenology: Phenology,
) -> None:
    """The second half of both table jobs: smooth the raw table, then find its seasons."""
    smooth(raw_path=raw_path, out=smoothed_out, smoothing=smoothing)
    season_metrics(smoothed_path=smoothed_out, out=phenology_out, phenology=phenology)


def _key_column(path: str | Path) -> str:
    """``polygon`` for the polygon tables (``polygons_*.csv``), ``point`` for the others."""
    return "polygon" if Path(path).name.startswith("polygons_") else "point"

"""Rule ``polygon_tables``: the cube's statistics in each polygon, smoothed, and their seasons.

The polygons are the ``fields`` job's ``fields.parquet``: the area's fields screened (invalid,
empty, repeated and out-of-scene ones left out), in the cube's CRS.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any


def polygon_tables(
    *,
    cube_path: str | Path,
    fields_path: str | Path,
    crs: str,
    min_clear_fraction: float,
    raw_out: str | Path,
    smoothed_out: str | Path,
    phenology_out: str | Path,
    smoothing: Mapping[str, Any],
    phenology: Mapping[str, Any],
    overview: str | Path | None = None,
    area: str = "",
    batch_cells: int | None = None,
) -> None:
    """The polygon tables of an area in one job (as :func:`ndvicube.jobs.tables.point_tables`);
    the smoothing is weighted by each date's clear fraction where the method takes weights.

    With ``overview``, the fields' overview figure too (median and 10-90 % band of every
    field's smoothed series, readable for 10,000 fields): drawn here from the tables just
    written, not by a job of its own that would read them again. ``batch_cells``: the cells
    held at once (``polygon_series.batch_cells``;
    :func:`ndvicube.timeseries.polygons.polygon_series`)."""
    from ndvicube.timeseries.phenology import Phenology
    from ndvicube.timeseries.smoothing import Smoothing
    from ndvicube.timeseries.steps import extract_polygon_series, smooth_and_find_seasons

    extract_polygon_series(cube_path=cube_path, polygons_path=fields_path, crs=crs,
                           out=raw_out, min_clear_fraction=min_clear_fraction,
                           batch_cells=batch_cells)  # fmt: skip
    smooth_and_find_seasons(raw_out, smoothed_out, phenology_out,
                            Smoothing(**smoothing), Phenology(**phenology))  # fmt: skip
    if overview is not None:
        from ndvicube.figures.series import plot_overview
        from ndvicube.timeseries.tables import read_series

        raw, smoothed = read_series(str(raw_out)), read_series(str(smoothed_out))
        plot_overview(raw, smoothed, area, overview, what="field")

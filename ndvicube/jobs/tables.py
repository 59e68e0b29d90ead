"""Rule ``tables``: an area's point series - raw, smoothed - and their seasons, in one job.

One process instead of three: each job pays about a second of start-up and imports (and on a
cluster a submission), more than these steps cost for thousands of points.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ndvicube.geo import Point


def point_tables(
    *,
    cube_path: str | Path,
    points: Sequence[Point],
    raw_out: str | Path,
    smoothed_out: str | Path,
    phenology_out: str | Path,
    smoothing: Mapping[str, Any],
    phenology: Mapping[str, Any],
) -> None:
    """``series_raw.csv``, ``series_smoothed.csv`` and ``phenology.csv`` of ``points``;
    ``smoothing`` and ``phenology`` are the config sections (rule parameters)."""
    from ndvicube.timeseries.phenology import Phenology
    from ndvicube.timeseries.smoothing import Smoothing
    from ndvicube.timeseries.steps import extract_series, smooth_and_find_seasons

    extract_series(cube_path=cube_path, points=points, out=raw_out)
    smooth_and_find_seasons(raw_out, smoothed_out, phenology_out,
                            Smoothing(**smoothing), Phenology(**phenology))  # fmt: skip

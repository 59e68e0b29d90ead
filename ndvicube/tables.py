"""The series tables (CSV) every step after the cube reads and writes.

Kept apart from :mod:`ndvicube.series` so the smoothing and plot jobs import pandas only, not the
raster stack: each workflow job is its own Python process and pays for what it imports.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

#: Columns of ``series_smoothed.csv``; ``series_raw.csv`` adds :data:`QUALITY_COLUMNS`.
SERIES_COLUMNS = ["point", "time", "ndvi"]
#: Per-row quality of a raw point series (see :func:`ndvicube.series.extract_points`).
QUALITY_COLUMNS = ["valid_pixels", "clear_fraction"]


def write_series(series: pd.DataFrame, path: str | Path, *, key: str = "point") -> None:
    """Write a series CSV: ISO dates, NaN as empty cells, full float precision.

    ``key`` names the first column: ``point``, or ``polygon`` for a polygons' series.
    """
    quality = [c for c in QUALITY_COLUMNS if c in series]
    out = series[SERIES_COLUMNS + quality].rename(columns={"point": key})
    out["time"] = pd.to_datetime(out["time"]).dt.strftime("%Y-%m-%d")
    out.to_csv(path, index=False, float_format="%.7g")


def read_series(path: str) -> pd.DataFrame:
    """A series CSV as ``point,time,ndvi`` (plus ``clear_fraction`` when it has one).

    Reads :func:`write_series` files, and ``polygons_raw.csv`` (its ``polygon`` and ``mean``
    become ``point`` and ``ndvi``), so smoothing and phenology serve points and polygons alike.
    """
    frame = pd.read_csv(path, dtype={"point": str, "polygon": str}, parse_dates=["time"])
    frame = frame.rename(columns={"polygon": "point"})
    if "mean" in frame:
        frame = frame.rename(columns={"mean": "ndvi"})
    extra = ["clear_fraction"] if "clear_fraction" in frame else []
    return frame[SERIES_COLUMNS + extra]


def write_polygon_series(table: pd.DataFrame, path: str | Path) -> None:
    """Write ``polygons_raw.csv`` (columns of :data:`ndvicube.polygons.POLYGON_COLUMNS`)."""
    out = table.copy()
    out["time"] = pd.to_datetime(out["time"]).dt.strftime("%Y-%m-%d")
    out.to_csv(path, index=False, float_format="%.7g")


def write_phenology(table: pd.DataFrame, path: str | Path, *, key: str = "point") -> None:
    """Write ``phenology.csv``: ISO dates (empty where unknown), NDVI to 4 decimals."""
    out = table.rename(columns={"point": key})
    for column in ("sos", "pos", "eos"):
        out[column] = pd.to_datetime(out[column]).dt.strftime("%Y-%m-%d")
    out.to_csv(path, index=False, float_format="%.4f")

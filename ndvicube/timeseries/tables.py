"""The series tables (CSV) every step after the cube reads and writes.

Kept apart from :mod:`ndvicube.timeseries.points` so the smoothing and plot jobs import pandas
only, not the raster stack: each workflow job is its own Python process and pays for what it
imports.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

#: The key columns of every series table (``point`` is ``polygon`` in the polygons' files).
KEY_COLUMNS = ["point", "time"]
#: Per-row quality of a raw point series (see :func:`ndvicube.timeseries.points.extract_points`).
QUALITY_COLUMNS = ["valid_pixels", "clear_fraction"]


def index_columns(series: pd.DataFrame) -> list[str]:
    """The index columns of a series (``ndvi``, ``evi``...): all but the keys and quality."""
    return [c for c in series.columns if c not in KEY_COLUMNS + QUALITY_COLUMNS]


def write_series(series: pd.DataFrame, path: str | Path, *, key: str = "point") -> None:
    """Write a series CSV: ISO dates, NaN as empty cells, full float precision.

    Columns: ``point,time``, one per index, then the quality columns the series has. ``key``
    names the first column: ``point``, or ``polygon`` for a polygons' series.
    """
    quality = [c for c in QUALITY_COLUMNS if c in series]
    columns = KEY_COLUMNS + index_columns(series) + quality
    out = series[columns].rename(columns={"point": key})
    out["time"] = pd.to_datetime(out["time"]).dt.strftime("%Y-%m-%d")
    out.to_csv(path, index=False, float_format="%.7g")


def read_series(path: str) -> pd.DataFrame:
    """A series CSV as ``point,time`` and its index columns (plus ``clear_fraction`` if any).

    Reads :func:`write_series` files, and ``polygons_raw.csv`` (its ``polygon`` becomes
    ``point``, each ``<index>_mean`` the index column), so smoothing and phenology serve points
    and polygons alike.
    """
    frame = pd.read_csv(path, dtype={"point": str, "polygon": str}, parse_dates=["time"])
    frame = frame.rename(columns={"polygon": "point"})
    if "count" in frame:  # a polygons' table: the mean is the polygon's value
        medians = [c for c in frame.columns if c.endswith("_median")]
        frame = frame.drop(columns=[*medians, "count"])
        frame = frame.rename(columns=lambda c: c.removesuffix("_mean"))
    extra = ["clear_fraction"] if "clear_fraction" in frame else []
    return frame[KEY_COLUMNS + index_columns(frame) + extra]


def write_polygon_series(table: pd.DataFrame, path: str | Path) -> None:
    """Write ``polygons_raw.csv`` (columns of :func:`.polygons.polygon_columns`)."""
    out = table.copy()
    out["time"] = pd.to_datetime(out["time"]).dt.strftime("%Y-%m-%d")
    out.to_csv(path, index=False, float_format="%.7g")


def write_phenology(table: pd.DataFrame, path: str | Path, *, key: str = "point") -> None:
    """Write ``phenology.csv``: ISO dates (empty where unknown), index values to 4 decimals."""
    out = table.rename(columns={"point": key})
    for column in ("sos", "pos", "eos"):
        out[column] = pd.to_datetime(out[column]).dt.strftime("%Y-%m-%d")
    out.to_csv(path, index=False, float_format="%.4f")

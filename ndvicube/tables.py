"""The series tables (CSV) every step after the cube reads and writes.

Kept apart from :mod:`ndvicube.series` so the smoothing and plot jobs import pandas only, not the
raster stack: each workflow job is its own Python process and pays for what it imports.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

#: Columns of ``series_raw.csv`` and ``series_smoothed.csv``.
SERIES_COLUMNS = ["point", "time", "ndvi"]


def write_series(series: pd.DataFrame, path: str) -> None:
    """Write a series CSV: ISO dates, NaN as empty cells, full float precision."""
    out = series[SERIES_COLUMNS].copy()
    out["time"] = pd.to_datetime(out["time"]).dt.strftime("%Y-%m-%d")
    out.to_csv(path, index=False, float_format="%.7g")


def read_series(path: str) -> pd.DataFrame:
    """Read a series CSV written by :func:`write_series`."""
    frame = pd.read_csv(path, dtype={"point": str}, parse_dates=["time"])
    return frame[SERIES_COLUMNS]


def write_phenology(table: pd.DataFrame, path: str | Path) -> None:
    """Write ``phenology.csv``: ISO dates (empty where unknown), NDVI to 4 decimals."""
    out = table.copy()
    for column in ("sos", "pos", "eos"):
        out[column] = pd.to_datetime(out[column]).dt.strftime("%Y-%m-%d")
    out.to_csv(path, index=False, float_format="%.4f")

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
    write_table(series[columns].rename(columns={"point": key}), path)


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
    write_table(table, path)


#: Tables of this many rows or more are written by pyarrow's CSV writer. pandas formats every
#: float in Python: 3.3 s for the 730,000 rows of 10,000 fields x 73 days, against 0.3 s; below
#: this, importing pyarrow (0.2 s) would cost a small area's job more than it saves.
ARROW_FROM_ROWS = 100_000
#: Significant digits of the floats in the series tables (``%.7g``: a float32's precision).
DIGITS = 7


def write_table(table: pd.DataFrame, path: str | Path) -> None:
    """Write a series table as CSV: ``time`` as ISO dates, floats to :data:`DIGITS` significant
    digits, NaN as empty cells.

    Large tables go through pyarrow (:data:`ARROW_FROM_ROWS`): the same values, written out
    in full where ``%.7g`` takes an exponent (``0.00001`` for ``1e-05``), and on an exact tie
    the 7th digit rounded to even.
    """
    if len(table) < ARROW_FROM_ROWS:
        out = table.copy()
        out["time"] = pd.to_datetime(out["time"]).dt.strftime("%Y-%m-%d")
        out.to_csv(path, index=False, float_format=f"%.{DIGITS}g")
        return
    _write_arrow_csv(table, path)


def _write_arrow_csv(table: pd.DataFrame, path: str | Path) -> None:
    """:func:`write_table` by pyarrow: floats rounded to :data:`DIGITS` significant digits
    first (pyarrow writes the shortest text that reads back as the value); text quoted only
    if some value needs it, as pandas does."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    columns, quote = {}, False
    for name, column in table.items():
        if name == "time":
            values = pd.to_datetime(column).to_numpy().astype("datetime64[D]")
        elif column.dtype.kind == "f":
            values = significant(column.to_numpy(dtype="float64"), DIGITS)
        else:
            values = column.to_numpy()
            if column.dtype.kind not in "iub":
                unique = pd.Series(pd.unique(column), dtype=str)
                quote = quote or bool(unique.str.contains('[",\r\n]').any())
        columns[name] = pa.array(values, from_pandas=True)
    options = pacsv.WriteOptions(include_header=False, quoting_style="needed" if quote else "none")
    with open(path, "wb") as out:  # the header as pandas writes it (pyarrow quotes every name)
        out.write((pd.DataFrame(columns=table.columns).to_csv(index=False)).encode())
        pacsv.write_csv(pa.table(columns), out, options)


def significant(values, digits: int):
    """``values`` (float64 array) rounded to ``digits`` significant digits, NaN kept."""
    import numpy as np

    with np.errstate(divide="ignore", invalid="ignore"):
        exponent = np.floor(np.log10(np.abs(values)))
    shift = digits - 1 - np.where(np.isfinite(exponent), exponent, 0).astype(int)
    up = shift >= 0  # scale by an exact power of ten: multiply, or divide by one
    scale = 10.0 ** np.abs(shift)
    with np.errstate(invalid="ignore"):
        return np.where(up, np.round(values * scale) / scale, np.round(values / scale) * scale)


def write_phenology(table: pd.DataFrame, path: str | Path, *, key: str = "point") -> None:
    """Write ``phenology.csv``: ISO dates (empty where unknown), index values to 4 decimals."""
    out = table.rename(columns={"point": key})
    for column in ("sos", "pos", "eos"):
        out[column] = pd.to_datetime(out[column]).dt.strftime("%Y-%m-%d")
    out.to_csv(path, index=False, float_format="%.4f")

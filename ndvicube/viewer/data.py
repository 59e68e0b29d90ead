"""The viewer's data as ``<script>`` files (a page opened from ``file://`` may load scripts,
not ``fetch()`` JSON): the fields' outlines and the points, and their series in shards of
:data:`SHARD` fields, each a call of ``ndvicubeViewer.series(kind, shard, packed)``, loaded when
a field of that shard is asked for. Both are packed (whole numbers where they are exact, shared
date lists) and unpacked by the page (``static/viewer.js``) into the values the tables hold.
Values go through ``json.dumps``, so ids and names from users' files stay strings; the page
writes them with ``textContent`` only."""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

#: Fields per series shard: 10,000 fields in 50 files of some 100 kB, one loaded per click.
SHARD = 200


def script(call: str, *args) -> str:
    """``call(arg,...);`` with each argument as compact JSON (ASCII, so no line separator
    breaks it)."""
    text = ",".join(json.dumps(a, ensure_ascii=True, separators=(",", ":")) for a in args)
    return f"{call}({text});\n"


#: Outlines' coordinates are written in millionths of a degree (about 0.1 m, a hundredth of
#: the finest tile's pixel at 10 m).
MICRODEGREES = 1_000_000


def outlines(fields: str | Path) -> tuple[list[str], dict]:
    """The accepted fields' ids, and their outlines packed for the page, which unpacks them
    into GeoJSON (``viewer.js``, ``unpackOutlines``): in longitude/latitude as whole
    :data:`MICRODEGREES`, each ring without its closing vertex (the page repeats the first),
    every coordinate as its difference from the one before on its axis; the rings' vertex
    counts, the polygons' ring counts and, for MultiPolygons, the fields' polygon counts.
    10,000 rectangles: 0.5 MB, against 2.2 MB as GeoJSON text."""
    import geopandas as gpd
    import shapely

    frame = gpd.read_parquet(fields).to_crs("EPSG:4326")
    if frame.empty:  # every field rejected, in an area with points
        return [], {"ids": [], "shard": SHARD, "multi": False, "parts": None, "polygons": [],
                    "rings": [], "scale": MICRODEGREES, "coords": []}  # fmt: skip
    kind, coords, offsets = shapely.to_ragged_array(frame.geometry.values)
    multi = kind == shapely.GeometryType.MULTIPOLYGON
    rings = np.diff(offsets[0])
    closing = offsets[0][1:] - 1  # each ring's last vertex, the same as its first
    kept = np.delete(np.round(coords * MICRODEGREES).astype(np.int64), closing, axis=0)
    steps = np.diff(kept, axis=0, prepend=np.zeros((1, 2), np.int64))
    packed = {
        "ids": [str(i) for i in frame["id"]], "shard": SHARD, "multi": bool(multi),
        "parts": np.diff(offsets[2]).tolist() if multi else None,
        "polygons": np.diff(offsets[1]).tolist(), "rings": (rings - 1).tolist(),
        "scale": MICRODEGREES, "coords": steps.ravel().tolist(),
    }  # fmt: skip
    return packed["ids"], packed


def rejected_counts(path: str | Path | None) -> dict[str, int]:
    """How many fields were rejected, per reason (``fields_rejected.csv``)."""
    if path is None:
        return {}
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    return {str(k): int(v) for k, v in table["reason"].value_counts(sort=False).items()}


def _read(path: str | Path, key: str, columns=None) -> pd.DataFrame:
    """A table with its ``key`` as text, and only ``columns`` (and the key) if given."""
    wanted = None if columns is None else {key, *columns}
    table = pd.read_csv(path, dtype={key: str}, keep_default_na=True,
                        usecols=None if wanted is None else lambda c: c in wanted)  # fmt: skip
    return table.astype({key: str})


def _days(times: pd.Series) -> np.ndarray:
    """``YYYY-MM-DD`` dates as days since 1970-01-01 (5 characters in JSON, not 12); each
    distinct date parsed once."""
    codes, dates = pd.factorize(times)
    return pd.to_datetime(dates).to_numpy().astype("datetime64[D]").astype(np.int64)[codes]


#: Decimal places tried for a column of a shard to be written as whole numbers.
MAX_DECIMALS = 15
#: Characters a value costs written as a string (a 7-digit ``"0.001234567"`` and its comma),
#: to weigh the decimal places that suit most values against those that need more.
STRING_COST = 14


def packed_values(values: np.ndarray) -> dict:
    """A column's values for the page, the same floats in fewer characters:
    ``{"scale": 10**k, "values": [...]}`` where a value is a whole number ``w`` if
    ``w / 10**k`` (the division the page does; IEEE, as numpy's) is exactly the value, else
    its shortest text as a JSON string (which the page parses); NaN as null. ``k`` is the
    number of decimal places that makes the fewest characters: a value the tables wrote with 7
    significant digits, 0.4372836, is 4372836 at k = 7 (8 characters with its comma, not 10),
    0.004372836 then the string "0.004372836". Without any exact whole number, ``scale`` is
    None and values are JSON numbers."""
    nan = np.isnan(values)
    best = None
    for k in range(MAX_DECIMALS + 1):
        scale = float(10**k)
        whole = np.round(np.where(nan, 0, values) * scale)
        with np.errstate(invalid="ignore"):
            exact = ~nan & (np.abs(whole) < 2**53) & (whole / scale == values)
        digits = np.floor(np.log10(np.maximum(np.abs(whole[exact]), 1))) + 2 + (whole[exact] < 0)
        cost = digits.sum() + STRING_COST * (~exact & ~nan).sum()
        if best is None or cost < best[0]:
            best = (cost, k, exact, whole)
        if exact.sum() == (~nan).sum():
            break  # more places only lengthen the numbers
    _, k, exact, whole = best
    if not exact.any():
        return {"scale": None, "values": [None if v != v else v for v in values.tolist()]}
    out = np.where(exact, whole, 0).astype(np.int64).tolist()
    texts = values.tolist()
    for i in np.flatnonzero(~exact).tolist():
        out[i] = None if nan[i] else _text(texts[i])
    return {"scale": 10**k, "values": out}


def _text(value: float) -> str:
    """The shortest text that reads back as ``value`` in JavaScript's ``parseFloat``."""
    return {"inf": "Infinity", "-inf": "-Infinity"}.get(repr(value), repr(value))


class Series:
    """One series table (raw or smoothed) in the order of the page's ids: each id's rows
    together, in file order, ids not in the page left out; sliced per shard by
    :meth:`shard`."""

    def __init__(self, path: str | Path, key: str, ids: Sequence[str], columns: dict[str, str]):
        table = _read(path, key, ["time", *columns.values()])
        codes, found = pd.factorize(table[key])  # each id looked up once, not once a row
        where = pd.Index(ids).get_indexer(found)[codes]
        order = np.argsort(where, kind="stable")
        order = order[where[order] >= 0]
        self.where = where[order]
        self.days = _days(table["time"])[order]
        self.values = {
            index: table[column].astype(float).to_numpy()[order]
            for index, column in columns.items()
            if column in table
        }

    def shard(self, first: int, last: int) -> dict:
        """The rows of ids ``first`` to ``last - 1``: the distinct date lists (days since
        1970-01-01) and, per id, the number of its list (-1: no rows); each index column's
        values of all those rows, id after id (:func:`packed_values`)."""
        a, b = np.searchsorted(self.where, [first, last])
        bounds = np.searchsorted(self.where[a:b], np.arange(first, last + 1)).tolist()
        days = self.days[a:b].tolist()
        lists: dict[tuple, int] = {}
        chosen = [
            lists.setdefault(tuple(days[i:j]), len(lists)) if j > i else -1
            for i, j in itertools.pairwise(bounds)
        ]
        return {
            "times": [list(t) for t in lists], "time": chosen,
            "columns": {index: packed_values(v[a:b]) for index, v in self.values.items()},
        }  # fmt: skip


def seasons_of(path: str | Path | None, key: str) -> dict[str, dict[str, list]]:
    """Per id, per index (upper case), the seasons' [sos, pos, eos] (ISO dates or null)."""
    found: dict[str, dict[str, list]] = {}
    if path is None:
        return found
    table = _read(path, key)
    marks = table[["sos", "pos", "eos"]]
    rows = marks.astype(object).where(marks.notna(), None).to_numpy().tolist()
    names = table["index"].astype(str).str.upper()
    for id_, index, row in zip(table[key], names, rows, strict=True):
        found.setdefault(id_, {}).setdefault(index, []).append(row)
    return found


def write_series_shards(
    out: Path, kind: str, ids: Sequence[str], raw: str | Path, smoothed: str | Path,
    seasons: str | Path | None, *, key: str, indices: Sequence[str], raw_suffix: str,
) -> int:  # fmt: skip
    """``out/{kind}_{n}.js`` for every :data:`SHARD` ids in order, each a call of
    ``ndvicubeViewer.series(kind, n, shard)`` with the shard's ids, its raw and smoothed
    series (:meth:`Series.shard`) and its seasons (a list, null for an id without); the page
    unpacks it (``viewer.js``, ``unpackSeries``). Returns the shard count.

    Whole columns are converted once, then sliced per shard: 10,000 fields of 25 days in
    well under a second."""
    out.mkdir(parents=True, exist_ok=True)
    parts = {
        "raw": Series(raw, key, ids, {i: f"{i.lower()}{raw_suffix}" for i in indices}),
        "smooth": Series(smoothed, key, ids, {i: i.lower() for i in indices}),
    }
    found = seasons_of(seasons, key)
    shards = -(-len(ids) // SHARD)
    for n in range(shards):
        first, last = n * SHARD, min((n + 1) * SHARD, len(ids))
        shard = {"ids": list(ids[first:last])}
        shard |= {name: part.shard(first, last) for name, part in parts.items()}
        shard["seasons"] = [found.get(i) for i in shard["ids"]]
        (out / f"{kind}_{n}.js").write_text(script("ndvicubeViewer.series", kind, n, shard))
    return shards

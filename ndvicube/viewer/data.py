"""The viewer's data as ``<script>`` files (a page opened from ``file://`` may load scripts,
not ``fetch()`` JSON): the fields' outlines and the points, and their series in shards of
:data:`SHARD` fields, each a call of ``ndvicubeViewer.series(kind, shard, entries)``, loaded when
a field of that shard is asked for. Values go through ``json.dumps``, so ids and names from
users' files stay strings; the page writes them with ``textContent`` only."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

#: Fields per series shard: 10,000 fields in 50 files of some 100 kB, one loaded per click.
SHARD = 200


def script(call: str, *args) -> str:
    """``call(arg, ...);`` with each argument as JSON (ASCII, so no line separator breaks it)."""
    return f"{call}({', '.join(json.dumps(a, ensure_ascii=True) for a in args)});\n"


def outlines(fields: str | Path) -> tuple[list[str], str]:
    """The accepted fields' ids, and their outlines as GeoJSON text in longitude/latitude (6
    decimals, about 0.1 m), each feature with its id and shard. GEOS writes the geometries (10,000
    fields: 0.03 s, against 0.35 s through Python dicts)."""
    import geopandas as gpd
    import shapely

    frame = gpd.read_parquet(fields).to_crs("EPSG:4326")
    rounded = shapely.transform(frame.geometry.values, lambda xy: np.round(xy, 6))
    ids = [str(i) for i in frame["id"]]
    head = '{"type":"Feature","properties":'
    features = ",".join(
        f'{head}{json.dumps({"id": id_, "shard": n // SHARD})},"geometry":{geometry}}}'
        for n, (id_, geometry) in enumerate(zip(ids, shapely.to_geojson(rounded), strict=True))
    )
    return ids, f'{{"type":"FeatureCollection","features":[{features}]}}'


def rejected_counts(path: str | Path | None) -> dict[str, int]:
    """How many fields were rejected, per reason (``fields_rejected.csv``)."""
    if path is None:
        return {}
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    return {str(k): int(v) for k, v in table["reason"].value_counts(sort=False).items()}


def _read(path: str | Path, key: str) -> pd.DataFrame:
    table = pd.read_csv(path, dtype={key: str}, keep_default_na=True)
    return table.astype({key: str})


def _days(times: pd.Series) -> list[int]:
    """``YYYY-MM-DD`` dates as days since 1970-01-01 (5 characters in JSON, not 12)."""
    return (pd.to_datetime(times).to_numpy().astype("datetime64[D]").astype(int)).tolist()


def _values(column: pd.Series) -> list:
    """Floats as the CSV wrote them, NaN as None (JSON null)."""
    values = column.astype(float).to_numpy()
    return [None if v != v else v for v in values.tolist()]


def _grouped(table: pd.DataFrame, key: str, columns: dict[str, list]) -> dict[str, dict]:
    """Per id, each column's list of its rows (ids kept in file order; the rows too)."""
    ids = table[key].to_numpy()
    order = np.argsort(ids, kind="stable")
    sorted_ids = ids[order]
    starts = np.flatnonzero(np.r_[True, sorted_ids[1:] != sorted_ids[:-1]])
    ends = np.r_[starts[1:], len(ids)]
    picked = {name: [values[i] for i in order] for name, values in columns.items()}
    return {
        str(sorted_ids[a]): {name: values[a:b] for name, values in picked.items()}
        for a, b in zip(starts, ends, strict=True)
    }


def series_entries(
    ids: Sequence[str], raw: str | Path, smoothed: str | Path, seasons: str | Path | None,
    key: str, indices: Sequence[str], raw_suffix: str,
) -> dict[str, dict]:  # fmt: skip
    """Per id: the raw series' days (since 1970-01-01) and values of each index (the clear
    observations and the gaps, None), the smoothed series, and the seasons' (sos, pos, eos)
    dates of each index. Whole columns are converted once, then sliced per id (10,000 fields
    of 25 days: well under a second)."""
    parts = {}
    for name, path, suffix in (("raw", raw, raw_suffix), ("smooth", smoothed, "")):
        table = _read(path, key)
        columns = {f"{name}_t": _days(table["time"])}
        for index in indices:
            if f"{index.lower()}{suffix}" in table:
                columns[index] = _values(table[f"{index.lower()}{suffix}"])
        parts[name] = _grouped(table, key, columns)
    found: dict[str, dict[str, list]] = {}
    if seasons is not None:
        table = _read(seasons, key)
        marks = table[["sos", "pos", "eos"]]
        rows = marks.astype(object).where(marks.notna(), None).to_numpy().tolist()
        names = table["index"].astype(str).str.upper()
        for id_, index, row in zip(table[key], names, rows, strict=True):
            found.setdefault(id_, {}).setdefault(index, []).append(row)
    entries = {}
    for id_ in ids:
        entry: dict = {}
        for name in ("raw", "smooth"):
            got = parts[name].get(id_)
            if got is not None:
                entry[f"{name}_t"] = got.pop(f"{name}_t")
                entry[name] = got
        if id_ in found:
            entry["seasons"] = found[id_]
        entries[id_] = entry
    return entries


def write_series_shards(out: Path, kind: str, ids: Sequence[str], entries: dict[str, dict]) -> int:
    """``out/{kind}_{n}.js`` for every :data:`SHARD` ids in order; returns the shard count."""
    out.mkdir(parents=True, exist_ok=True)
    shards = -(-len(ids) // SHARD)
    for n in range(shards):
        part = {i: entries.get(i, {}) for i in ids[n * SHARD : (n + 1) * SHARD]}
        (out / f"{kind}_{n}.js").write_text(script("ndvicubeViewer.series", kind, n, part))
    return shards

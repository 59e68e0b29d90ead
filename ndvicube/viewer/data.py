"""The viewer's data as ``<script>`` files (a page opened from ``file://`` may load scripts,
not ``fetch()`` JSON): the fields' outlines and the points, and their series in shards of
:data:`SHARD` fields, each a call of ``ndvicubeViewer.series(kind, shard, entries)``, loaded when
a field of that shard is asked for. Values go through ``json.dumps``, so ids and names from
users' files stay strings; the page writes them with ``textContent`` only."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

#: Fields per series shard: 10,000 fields in 50 files of some 100 kB, one loaded per click.
SHARD = 200


def script(call: str, *args) -> str:
    """``call(arg, ...);`` with each argument as JSON (ASCII, so no line separator breaks it)."""
    return f"{call}({', '.join(json.dumps(a, ensure_ascii=True) for a in args)});\n"


def outlines(fields: str | Path) -> dict:
    """The accepted fields as GeoJSON in longitude/latitude, each with its id and shard."""
    import geopandas as gpd
    import shapely

    frame = gpd.read_parquet(fields).to_crs("EPSG:4326")
    geometry = shapely.set_precision(frame.geometry.values, 1e-6)
    features = [
        {
            "type": "Feature",
            "properties": {"id": str(id_), "shard": n // SHARD},
            "geometry": shapely.geometry.mapping(geom),
        }
        for n, (id_, geom) in enumerate(zip(frame["id"], geometry, strict=True))
    ]
    return {"type": "FeatureCollection", "features": features}


def rejected_counts(path: str | Path | None) -> dict[str, int]:
    """How many fields were rejected, per reason (``fields_rejected.csv``)."""
    if path is None:
        return {}
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    return {str(k): int(v) for k, v in table["reason"].value_counts(sort=False).items()}


def _read(path: str | Path, key: str) -> pd.DataFrame:
    table = pd.read_csv(path, dtype={key: str}, keep_default_na=True)
    return table.astype({key: str})


def _values(column: pd.Series) -> list:
    return [None if pd.isna(v) else float(v) for v in column]


def series_entries(
    ids: Sequence[str], raw: str | Path, smoothed: str | Path, seasons: str | Path | None,
    key: str, indices: Sequence[str], raw_suffix: str,
) -> dict[str, dict]:  # fmt: skip
    """Per id: the raw series' times and values of each index (the clear observations and the
    gaps), the smoothed series, and the seasons' (sos, pos, eos) dates of each index."""
    tables = {"raw": _read(raw, key), "smooth": _read(smoothed, key)}
    phen = _read(seasons, key) if seasons is not None else None
    groups = {name: dict(tuple(t.groupby(key, sort=False))) for name, t in tables.items()}
    phen_groups = dict(tuple(phen.groupby(key, sort=False))) if phen is not None else {}
    entries = {}
    for id_ in ids:
        entry = {}
        for name, suffix in (("raw", raw_suffix), ("smooth", "")):
            rows = groups[name].get(id_)
            if rows is None:
                continue
            entry[f"{name}_t"] = [str(t)[:10] for t in rows["time"]]
            entry[name] = {
                i: _values(rows[f"{i.lower()}{suffix}"])
                for i in indices
                if f"{i.lower()}{suffix}" in rows
            }
        rows = phen_groups.get(id_)
        if rows is not None:
            entry["seasons"] = {
                str(index).upper(): [
                    [None if pd.isna(d) else str(d) for d in (r.sos, r.pos, r.eos)]
                    for r in part.itertuples()
                ]
                for index, part in rows.groupby("index", sort=False)
            }
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

"""The demo catalog on disk: COGs, STAC JSON, truth, points, fields and calendar; href rewriting.

Why: tests and benchmarks need the catalog as files, written so that readers never see a half
catalog (``items.json`` last, every JSON via a temporary file), with the exact answer beside it.
:func:`generate_demo_catalog` builds the world (:mod:`ndvicube.demo.world`), one scene per pass
(:mod:`ndvicube.demo.scene`) and the STAC documents (:mod:`ndvicube.demo.stac`), and writes them,
with the field set (:mod:`ndvicube.demo.fields`) and its truth (:mod:`ndvicube.demo.field_truth`).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import rasterio
from rasterio.transform import from_origin

from ndvicube.demo.field_truth import FieldTruth, field_set_bbox, field_weights
from ndvicube.demo.fields import demo_fields, write_fields
from ndvicube.demo.scene import _res, _scene, _sun, _tile_arrays
from ndvicube.demo.stac import (
    _ASSETS,
    _EXTENSIONS,
    _PROJ_V2,
    _asset,
    _collection,
    _geometry,
    _item_id,
    _links,
    _properties,
    _scl_stats,
    _times,
)
from ndvicube.demo.world import (
    _20M,
    _BANDS,
    EPSG,
    FIELD1,
    OFFSET,
    SCALE,
    DemoCatalogSpec,
    _Land,
    _Layout,
    _layout,
    _make_land,
    _Pass,
    _passes,
    _Tile,
)

_20M_FILES = {"scl": "SCL.tif", "cloud": "CLD_20m.tif"}
"""File names of the 20 m classification assets."""


@dataclass(frozen=True)
class DemoCatalog:
    """Paths of one generated catalog."""

    root: Path
    items: Path
    collection: Path
    truth: Path
    points: Path
    calendar: Path
    fields: Path
    """The field set (GeoJSON, EPSG:32644; :mod:`ndvicube.demo.fields`)."""
    fields_truth: Path
    """Each kept field's true mean per solar day (:mod:`ndvicube.demo.field_truth`)."""


def _write_cog(path: Path, arr: np.ndarray, tile: _Tile, res: int, blocksize: int) -> dict:
    """Write a deflate COG (nodata 0, overviews) and return its STAC file:* fields."""
    is16 = arr.dtype == np.uint16
    # at least one overview level even when the raster fits in one block (GDAL's AUTO makes none)
    levels = max(1, math.ceil(math.log2(max(arr.shape) / blocksize)))
    profile = dict(
        driver="COG", width=arr.shape[1], height=arr.shape[0], count=1, dtype=arr.dtype.name,
        crs=f"EPSG:{EPSG}", transform=from_origin(tile.x0, tile.y1, res, res), nodata=0,
        compress="DEFLATE", predictor="YES" if is16 else "NO", blocksize=blocksize,
        overview_resampling="average" if is16 else "nearest", overview_count=levels,
    )  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(arr, 1)
    data = path.read_bytes()
    return {"file:checksum": "1220" + hashlib.sha256(data).hexdigest(), "file:size": len(data)}


def _make_item(
    spec: DemoCatalogSpec, lay: _Layout, root: Path, p: _Pass, tile: _Tile, arrays: dict
) -> dict[str, Any]:
    """Write the tile's COGs and its item JSON beside them; return the item."""
    tm = _times(p, spec.seed)
    item_id = _item_id(p, tile, tm)
    folder = root / "cogs" / item_id
    folder.mkdir(parents=True, exist_ok=True)
    assets = {}
    for key in _ASSETS:
        path = folder / (_20M_FILES[key] if key in _20M else f"{_BANDS[key][0]}.tif")
        res = _res(key)
        assets[key] = _asset(
            key, path, tile, _write_cog(path, arrays[key], tile, res, spec.blocksize)
        )
    geometry, bbox, _ = _geometry(lay, tile)
    item = {"type": "Feature", "stac_version": "1.0.0", "id": item_id}
    item["properties"] = _properties(spec, lay, p, tile, tm, _scl_stats(arrays["scl"]))
    item |= {"geometry": geometry, "links": _links(root, folder / f"{item_id}.json")}
    exts = [
        _PROJ_V2 if "projection" in e and spec.proj_key == "proj:code" else e for e in _EXTENSIONS
    ]
    item |= {"assets": assets, "bbox": bbox, "stac_extensions": exts, "collection": spec.collection}
    (folder / f"{item_id}.json").write_text(json.dumps(item, indent=2) + "\n")
    return item


def _truth_rows(lay: _Layout, item: dict, tile: _Tile, arrays: dict) -> list[dict[str, Any]]:
    """Truth for every point on this tile, read from the generator's arrays (not the COGs)."""
    props = item["properties"]
    when = datetime.fromisoformat(props["datetime"].replace("Z", "+00:00"))
    rows = []
    for p in (p for p in lay.points if tile.covers(p.x, p.y)):
        r, c = int((tile.y1 - p.y) // 10), int((p.x - tile.x0) // 10)
        row = {"point": p.id, "lon": p.lon, "lat": p.lat, "item_id": item["id"]}
        rows.append(
            row
            | {
                "datetime": props["datetime"],
                "solar_day": (when + timedelta(hours=p.lon / 15)).date().isoformat(),
                "cloud_cover": props["eo:cloud_cover"],
                "scl": int(arrays["scl"][r // 2, c // 2]),
                "cloud": int(arrays["cloud"][r // 2, c // 2]),
                "red_scale": SCALE,
                "red_offset": OFFSET,
                "nir_scale": SCALE,
                "nir_offset": OFFSET,
            }
            | {
                f"{band}_dn": int(arrays[band][(r, c) if _res(band) == 10 else (r // 2, c // 2)])
                for band in _BANDS
            }
        )
    return rows


def _calendar(spec: DemoCatalogSpec, lay: _Layout, land: _Land) -> dict[str, Any]:
    """True crop calendar per parcel and per point (with the point's static NDVI offset)."""
    points = []
    for p in lay.points:
        r, c = int((lay.y1 - p.y) // 10), int((p.x - lay.x0) // 10)
        parcel = land.meta[int(land.parcel20[r // 2, c // 2])]
        extra = {"point": p.id, "lon": p.lon, "lat": p.lat, "x": p.x, "y": p.y}
        points.append(
            extra
            | {"parcel": parcel["id"], "ndvi_offset": round(float(land.noise10[r, c]), 6)}
            | parcel
        )
        points[-1].pop("id")
    notes = {
        "curve": "NDVI = base + (max - base) * smoothstep, rising sowing->peak, falling "
        "peak->harvest; green_up/senescence are the 50 % crossings; "
        "orchard = mean + amp * cos(2 pi (doy - peak) / 365.25)",
        "pixel_noise": "static per-pixel N(0, 0.015) (ndvi_offset) + per-pass N(0, 0.008)",
        "crs": f"EPSG:{EPSG}",
    }
    return {
        "seed": spec.seed,
        "start": spec.start,
        "end": spec.end,
        "notes": notes,
        "points": points,
        "parcels": land.meta,
    }


def _write_json(path: Path, doc: Any) -> None:
    """Write JSON via a temporary file and rename, so readers never see half a file."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n")
    os.replace(tmp, path)


def generate_demo_catalog(
    out_dir: str | Path,
    spec: DemoCatalogSpec = DemoCatalogSpec(),  # noqa: B008 (a frozen dataclass)
) -> DemoCatalog:
    """Write the synthetic catalog, COGs, truth, points, fields and calendar under ``out_dir``.

    ``items.json`` is removed first and written last, so its presence means the catalog is
    complete; an existing ``cogs/`` folder under ``out_dir`` is replaced. Example::

        cat = generate_demo_catalog("demo", DemoCatalogSpec(start="2023-06-01", end="2023-07-31"))
        items = pystac.ItemCollection.from_file(cat.items)
    """
    root = Path(out_dir).resolve()
    root.mkdir(parents=True, exist_ok=True)
    cat = DemoCatalog(
        root, root / "items.json", root / "collection.json", root / "truth.csv",
        root / "points.csv", root / "calendar.json", root / "fields.geojson",
        root / "fields_truth.csv",
    )  # fmt: skip
    cat.items.unlink(missing_ok=True)
    shutil.rmtree(root / "cogs", ignore_errors=True)
    lay = _layout(spec)
    land = _make_land(spec, lay)
    fields = demo_fields(lay)
    west, _, east, _ = field_set_bbox(fields)
    field_truth = FieldTruth(lay, field_weights(fields, lay), (west + east) / 2)
    items, truth = [], []
    for p in _passes(spec, lay):
        sun_az, _ = _sun(_times(p, spec.seed)["sense"][0], FIELD1[0], FIELD1[1])
        scene = _scene(land, lay, p.day, sun_az, spec.seed)
        for tile in p.tiles:
            arrays = _tile_arrays(scene, lay, tile)
            items.append(_make_item(spec, lay, root, p, tile, arrays))
            truth += _truth_rows(lay, items[-1], tile, arrays)
            field_truth.add(items[-1], tile, arrays)
    items.sort(key=lambda it: (it["properties"]["datetime"], it["id"]))
    write_fields(cat.fields, fields)
    pd.DataFrame(field_truth.rows()).to_csv(cat.fields_truth, index=False)
    _write_outputs(cat, spec, lay, land, items, truth)
    return cat


def _write_outputs(
    cat: DemoCatalog, spec, lay: _Layout, land: _Land, items: list, truth: list
) -> None:
    """Side files first, items.json last (the completeness marker)."""
    _write_json(cat.collection, _collection(spec, cat.root, items))
    _write_json(cat.calendar, _calendar(spec, lay, land))
    pts = pd.DataFrame([{"id": p.id, "lon": p.lon, "lat": p.lat} for p in lay.points])
    pts.to_csv(cat.points, index=False)
    order = {p.id: i for i, p in enumerate(lay.points)}
    df = pd.DataFrame(truth)
    df = df.sort_values(
        ["point", "datetime", "item_id"], key=lambda s: s.map(order) if s.name == "point" else s
    )
    df.to_csv(cat.truth, index=False)
    doc = {
        "type": "FeatureCollection",
        "features": items,
        "links": [],
        "numberReturned": len(items),
    }
    _write_json(cat.items, doc)


def rewrite_hrefs(
    items_json: str | Path, out_json: str | Path, base_url: str, root: str | Path
) -> Path:
    """Copy an ItemCollection, turning local hrefs under ``root`` into ``base_url`` + relative path.

    Why: to serve the COGs over HTTP (e.g. a loopback server rooted at ``root``) and exercise the
    remote-read code path. Asset hrefs and item links under ``root`` are rewritten; others kept.
    """
    prefix = Path(root).resolve().as_posix().rstrip("/") + "/"
    base = base_url.rstrip("/") + "/"

    def fix(href: str) -> str:
        if "://" in href:
            return href
        local = Path(href).resolve().as_posix()
        return base + local[len(prefix) :] if local.startswith(prefix) else href

    doc = json.loads(Path(items_json).read_text())
    for feature in doc["features"]:
        for asset in feature["assets"].values():
            asset["href"] = fix(asset["href"])
        for link in feature.get("links", []):
            link["href"] = fix(link["href"])
    out = Path(out_json)
    _write_json(out, doc)
    return out

"""The demo catalog in Planetary Computer's shape: the same COGs, described as that archive does.

Microsoft Planetary Computer's ``sentinel-2-l2a`` items describe the same ESA products as Earth
Search's, differently: ids from the product name (``S2A_MSIL2A_<take>_R019_T44RPR_<gen>``),
assets keyed by band (``B04``, ``B08``, ``SCL``) with ``eo:bands`` and ``proj:bbox`` but no
``raster:bands`` (so no scale, offset or nodata), ``proj:epsg`` and ``s2:mgrs_tile`` instead of
the ``mgrs:``/``grid:`` fields, ``Sentinel-2A`` for the platform, and hrefs on Azure Blob Storage
that must be signed. :func:`planetary_computer_copy` rewrites a generated demo catalog that way,
pixels untouched, so the ``planetary-computer`` profile can be tested against the truth: the cube
built from the copy must equal the Earth-Search-shaped one byte for byte.

``blob_url`` (e.g. ``http://ndvicubedemo.blob.core.windows.net/sentinel2-l2``) replaces the
catalog root in hrefs; without it, hrefs stay local paths (read as they are, never signed).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from ndvicube.demo.catalog import DemoCatalog, _write_json
from ndvicube.search.profiles import PC_ASSET_KEYS

COLLECTION = "sentinel-2-l2a"
_COG_TYPE = "image/tiff; application=geotiff; profile=cloud-optimized"
#: Planetary Computer's asset titles, by band.
_TITLES = {
    "B02": "Band 2 - Blue - 10m",
    "B03": "Band 3 - Green - 10m",
    "B04": "Band 4 - Red - 10m",
    "B05": "Band 5 - Vegetation red edge 1 - 20m",
    "B08": "Band 8 - NIR - 10m",
    "B11": "Band 11 - SWIR (1.6) - 20m",
    "B12": "Band 12 - SWIR (2.2) - 20m",
    "SCL": "Scene classfication map (SCL)",  # sic, as Planetary Computer spells it
}
_EXTENSIONS = [
    "https://stac-extensions.github.io/eo/v1.0.0/schema.json",
    "https://stac-extensions.github.io/sat/v1.0.0/schema.json",
    "https://stac-extensions.github.io/projection/v1.0.0/schema.json",
]
#: Earth Search properties Planetary Computer does not write.
_DROPPED = ("mgrs:", "grid:", "view:", "earthsearch:", "processing:", "proj:", "created", "updated")


def planetary_computer_copy(
    catalog: DemoCatalog, out_dir: str | Path, *, blob_url: str | None = None
) -> DemoCatalog:
    """Write ``items.json`` and ``collection.json`` of ``catalog`` in Planetary Computer's shape
    under ``out_dir``; return the catalog with those two paths (truth and COGs are shared)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    root = catalog.root.resolve().as_posix().rstrip("/") + "/"
    features = json.loads(catalog.items.read_text())["features"]
    items = [_item(f, root, blob_url) for f in features]
    collection = _collection(json.loads(catalog.collection.read_text()))
    _write_json(out / "items.json", {"type": "FeatureCollection", "features": items})
    _write_json(out / "collection.json", collection)
    return dataclasses.replace(
        catalog, items=out / "items.json", collection=out / "collection.json"
    )


def pc_item_id(product_uri: str) -> str:
    """Planetary Computer's item id: the product name without ``.SAFE`` and the baseline
    (``S2A_MSIL2A_<take>_N0510_R019_T44RPR_<gen>.SAFE`` -> ``S2A_MSIL2A_<take>_R019_T44RPR_<gen>``).
    """
    parts = product_uri.removesuffix(".SAFE").split("_")
    return "_".join(p for p in parts if not (p.startswith("N") and p[1:].isdigit()))


def _item(feature: dict, root: str, blob_url: str | None) -> dict[str, Any]:
    props = feature["properties"]
    epsg = props.get("proj:epsg") or int(str(props["proj:code"]).split(":")[1])
    tile = props["grid:code"].removeprefix("MGRS-")
    kept = {k: v for k, v in props.items() if not k.startswith(_DROPPED)}
    properties = (
        kept
        | {
            "platform": "Sentinel-2" + props["platform"][-1].upper(),  # "Sentinel-2A"
            "constellation": "Sentinel 2",
            "proj:epsg": epsg,
            "s2:mgrs_tile": tile,
            "sat:orbit_state": "descending",
            "sat:relative_orbit": int(props["s2:product_uri"].split("_R")[1][:3]),
        }
    )
    assets = {
        PC_ASSET_KEYS[key]: _asset(PC_ASSET_KEYS[key], asset, root, blob_url)
        for key, asset in feature["assets"].items()
        if key in PC_ASSET_KEYS
    }
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "id": pc_item_id(props["s2:product_uri"]),
        "collection": COLLECTION,
        "properties": properties,
        "geometry": feature["geometry"],
        "bbox": feature["bbox"],
        "assets": assets,
        "links": [],
        "stac_extensions": _EXTENSIONS,
    }


def _asset(key: str, asset: dict, root: str, blob_url: str | None) -> dict[str, Any]:
    """One asset as Planetary Computer writes it: no raster:bands, eo:bands with descriptions."""
    shape, transform = asset["proj:shape"], asset["proj:transform"]
    res, x0, y1 = transform[0], transform[2], transform[5]
    pc = {
        "href": _href(asset["href"], root, blob_url),
        "proj:bbox": [x0, y1 - shape[0] * res, x0 + shape[1] * res, y1],
        "proj:shape": shape,
        "proj:transform": transform,
        "gsd": asset["gsd"],
        "type": _COG_TYPE,
        "roles": ["data"],
        "title": _TITLES.get(key, key),
    }
    if "eo:bands" in asset:
        band = asset["eo:bands"][0]
        pc["eo:bands"] = [band | {"name": key, "description": _TITLES[key].rsplit(" - ", 1)[0]}]
    return pc


def _href(href: str, root: str, blob_url: str | None) -> str:
    """The asset's local path under ``root`` moved to ``blob_url``, if given."""
    if blob_url is None or not href.startswith(root):
        return href
    return f"{blob_url.rstrip('/')}/{href[len(root) :]}"


def _collection(earth_search: dict) -> dict[str, Any]:
    """The collection document under Planetary Computer's id, without item_assets' raster:bands."""
    collection = {k: v for k, v in earth_search.items() if k not in ("item_assets", "links")}
    return collection | {
        "id": COLLECTION,
        "title": "Sentinel-2 Level-2A (ndvicube synthetic demo, Planetary Computer's shape)",
        "links": [],
    }

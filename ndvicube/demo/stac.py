"""The STAC documents of the demo catalog, shaped like Earth Search v1's ``sentinel-2-c1-l2a``.

Why: the workflow must not be able to tell the demo from the real archive, so items and the
collection carry the same fields, in the same order, as Earth Search writes them: properties
(times, orbits, s2:* identifiers, sun and view angles, SCL statistics), assets with
``raster:bands`` scale/offset and nodata, geometry and bbox of the valid data. Nothing here
writes files (:mod:`ndvicube.demo.catalog` does).
"""

from __future__ import annotations

import math
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from ndvicube.demo.scene import _sun
from ndvicube.demo.world import (
    _20M,
    _BANDS,
    _TO_LONLAT,
    EPSG,
    OFFSET,
    SCALE,
    DemoCatalogSpec,
    _Layout,
    _Pass,
    _Tile,
)

#: eo:bands common names that differ from the asset key (Earth Search's B05 is "rededge").
_COMMON_NAMES = {"rededge1": "rededge"}
_COG_TYPE = "image/tiff; application=geotiff; profile=cloud-optimized"
_ASSETS = (*_BANDS, "scl", "cloud")
_SCL_NAMES = {
    1: "saturated_defective_pixel",
    2: "dark_features",
    3: "cloud_shadow",
    4: "vegetation",
    5: "not_vegetated",
    6: "water",
    7: "unclassified",
    8: "medium_proba_clouds",
    9: "high_proba_clouds",
    10: "thin_cirrus",
    11: "snow_ice",
}
_EXTENSIONS = [
    "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
    "https://stac-extensions.github.io/file/v2.1.0/schema.json",
    "https://stac-extensions.github.io/grid/v1.1.0/schema.json",
    "https://stac-extensions.github.io/mgrs/v1.0.0/schema.json",
    "https://stac-extensions.github.io/processing/v1.1.0/schema.json",
    "https://stac-extensions.github.io/projection/v1.1.0/schema.json",
    "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
    "https://stac-extensions.github.io/sentinel-2/v1.0.0/schema.json",
    "https://stac-extensions.github.io/view/v1.0.0/schema.json",
]
_PROJ_V2 = "https://stac-extensions.github.io/projection/v2.0.0/schema.json"


def _scl_stats(scl: np.ndarray) -> dict[str, float]:
    """Cloud cover and SCL class percentages of valid pixels, nodata share of all pixels.

    Same definitions as ESA's L2A metadata: ``eo:cloud_cover`` counts classes 8, 9 and 10.
    """
    counts = np.bincount(scl.ravel(), minlength=12)
    valid = max(int(counts[1:].sum()), 1)
    pct = {"s2:nodata_pixel_percentage": round(100 * counts[0] / scl.size, 6)}
    for k, name in _SCL_NAMES.items():
        pct[f"s2:{name}_percentage"] = round(100 * counts[k] / valid, 6)
    return pct | {"eo:cloud_cover": round(100 * counts[8:11].sum() / valid, 6)}


def _footprint(lay: _Layout, tile: _Tile) -> list[list[float]]:
    """Valid-data outline in UTM, counter-clockwise (west tile loses its wedge corner)."""
    if tile is not lay.tiles[0]:
        return [[tile.x0, tile.y1], [tile.x0, tile.y0], [tile.x1, tile.y0], [tile.x1, tile.y1]]
    base = tile.x1 - lay.wedge_slope * (lay.wedge_top - tile.y0)
    corners = [[tile.x0, tile.y1], [tile.x0, tile.y0], [base, tile.y0], [tile.x1, lay.wedge_top]]
    return [*corners, [tile.x1, tile.y1]]


def _geometry(lay: _Layout, tile: _Tile) -> tuple[dict, list[float], dict[str, float]]:
    """GeoJSON footprint, bbox and proj:centroid in lon/lat."""
    ring = _footprint(lay, tile)
    xs, ys = _TO_LONLAT.transform(*zip(*ring, strict=True))
    coords = [[x, y] for x, y in zip(xs, ys, strict=True)]
    coords.append(coords[0])
    pts = np.array(ring + ring[:1])
    cross = pts[:-1, 0] * pts[1:, 1] - pts[1:, 0] * pts[:-1, 1]
    cx = ((pts[:-1, 0] + pts[1:, 0]) * cross).sum() / (3 * cross.sum())
    cy = ((pts[:-1, 1] + pts[1:, 1]) * cross).sum() / (3 * cross.sum())
    lon, lat = _TO_LONLAT.transform(cx, cy)
    bbox = [round(min(xs), 6), round(min(ys), 6), round(max(xs), 6), round(max(ys), 6)]
    return (
        {"type": "Polygon", "coordinates": [coords]},
        bbox,
        {"lat": round(lat, 5), "lon": round(lon, 5)},
    )


def _stamp(t: datetime) -> str:
    """Earth Search datetime format: microseconds and Z."""
    return f"{t:%Y-%m-%dT%H:%M:%S.%f}Z"


def _times(p: _Pass, seed: int) -> dict[str, Any]:
    """Sensing, datatake, datastrip, generation and catalog times of one pass (UTC, naive)."""
    rng = np.random.default_rng([seed, 10, p.day.toordinal()])
    sense = datetime.combine(p.day, time(5, 10)) + timedelta(
        milliseconds=int(rng.integers(120_000))
    )
    gen = sense + timedelta(seconds=int(rng.integers(4 * 3600, 9 * 3600)))
    return {
        "sense": [
            sense + timedelta(milliseconds=int(rng.integers(1000, 4000)) * i) for i in range(2)
        ],
        "strip": (sense - timedelta(seconds=int(rng.integers(5, 15)))).replace(microsecond=0),
        "take": (sense - timedelta(seconds=int(rng.integers(300, 420)))).replace(microsecond=0),
        "gen": gen,
        "created": gen + timedelta(milliseconds=int(rng.integers(3600_000, 3 * 3600_000))),
        "view": (float(rng.uniform(100, 110)), float(rng.uniform(8.5, 11.0))),
    }


def _orbit(sat: str, t: datetime) -> int:
    """Absolute orbit from a real reference pass and 14.3 orbits per day."""
    ref = {
        "S2A": (datetime(2024, 4, 22, 17, 39, 11), 46141),
        "S2B": (datetime(2024, 4, 20, 17, 49, 9), 37204),
    }
    t0, n0 = ref[sat]
    return n0 + round((t - t0).total_seconds() / 86400 * 14.3)


def _s2_props(p: _Pass, tile: _Tile, tm: dict[str, Any]) -> dict[str, Any]:
    """The s2:* identifiers, shaped like Earth Search's (baseline 05.10, relative orbit 19)."""
    sat = "S2A" if p.platform == "sentinel-2a" else "S2B"
    f = "%Y%m%dT%H%M%S"
    take, strip, gen = tm["take"], tm["strip"], tm["gen"]
    orbit = _orbit(sat, take)
    return {
        "s2:tile_id": f"{sat}_OPER_MSI_L2A_TL_2APS_{gen:{f}}_A{orbit:06d}_T{tile.code}_N05.10",
        "s2:product_type": "S2MSI2A",
        "s2:processing_baseline": "05.10",
        "s2:product_uri": f"{sat}_MSIL2A_{take:{f}}_N0510_R019_T{tile.code}_{gen:{f}}.SAFE",
        "s2:generation_time": f"{gen:%Y-%m-%dT%H:%M:%S}.000000Z",
        "s2:datatake_id": f"G{sat}_{take:{f}}_{orbit:06d}_N05.10",
        "s2:datatake_type": "INS-NOBS",
        "s2:datastrip_id": f"{sat}_OPER_MSI_L2A_DS_2APS_{gen:{f}}_S{strip:{f}}_N05.10",
    }


def _properties(spec, lay, p: _Pass, tile: _Tile, tm: dict, stats: dict) -> dict[str, Any]:
    """Item properties, in the order Earth Search writes them (storage:* left out: local files)."""
    sense = tm["sense"][lay.tiles.index(tile)]
    _, _, centroid = _geometry(lay, tile)
    sun_az, sun_el = _sun(sense, centroid["lon"], centroid["lat"])
    doy = sense.timetuple().tm_yday
    created = _stamp(tm["created"])[:-4] + "Z"  # Earth Search: milliseconds here
    s2 = _s2_props(p, tile, tm)
    return {
        "created": created,
        "platform": p.platform,
        "constellation": "sentinel-2",
        "instruments": ["msi"],
        "eo:cloud_cover": stats["eo:cloud_cover"],
        spec.proj_key: EPSG if spec.proj_key == "proj:epsg" else f"EPSG:{EPSG}",
        "proj:centroid": centroid,
        "mgrs:utm_zone": 44,
        "mgrs:latitude_band": "R",
        "mgrs:grid_square": tile.code[3:],
        "grid:code": f"MGRS-{tile.code}",
        "view:azimuth": tm["view"][0],
        "view:incidence_angle": tm["view"][1],
        "view:sun_azimuth": sun_az,
        "view:sun_elevation": sun_el,
        "s2:tile_id": s2.pop("s2:tile_id"),
        "s2:degraded_msi_data_percentage": 0,
        **{k: v for k, v in stats.items() if k.startswith("s2:")},
        **s2,
        "s2:reflectance_conversion_factor": 1 / (1 - 0.01673 * math.cos(0.0172 * (doy - 4))) ** 2,
        "datetime": _stamp(sense),
        "earthsearch:payload_id": f"ndvicube-demo/seed-{spec.seed}",
        "processing:software": {"ndvicube.demo": "1"},
        "updated": created,
    }


def _asset(key: str, href: Path, tile: _Tile, files: dict) -> dict[str, Any]:
    """One asset dict with Earth Search's keys, order and raster:bands."""
    if key in _20M:
        title, roles = _20M[key]
        head = {"href": str(href), "type": _COG_TYPE, "title": title}
        grid = {"gsd": 20, "proj:shape": tile.shape(20), "proj:transform": tile.transform(20)}
        bands = [{"nodata": 0, "data_type": "uint8", "spatial_resolution": 20}]
        return head | grid | {"raster:bands": bands} | files | {"roles": roles}
    name, title, centre, fwhm, res = _BANDS[key]
    eo = [
        {
            "name": name,
            "common_name": _COMMON_NAMES.get(key, key),
            "center_wavelength": centre,
            "full_width_half_max": fwhm,
        }
    ]
    head = {"href": str(href), "type": _COG_TYPE, "title": title, "eo:bands": eo}
    grid = {"gsd": res, "proj:shape": tile.shape(res), "proj:transform": tile.transform(res)}
    rb = {
        "nodata": 0,
        "data_type": "uint16",
        "spatial_resolution": res,
        "scale": SCALE,
        "offset": OFFSET,
    }
    return head | grid | {"raster:bands": [rb]} | files | {"roles": ["data", "reflectance"]}


def _item_id(p: _Pass, tile: _Tile, tm: dict) -> str:
    sat = "S2A" if p.platform == "sentinel-2a" else "S2B"
    return f"{sat}_T{tile.code}_{tm['strip']:%Y%m%dT%H%M%S}_L2A"


def _links(root: Path, self_href: Path) -> list[dict[str, str]]:
    coll = str(root / "collection.json")
    links = [{"rel": "self", "type": "application/geo+json", "href": str(self_href)}]
    return links + [
        {"rel": r, "type": "application/json", "href": coll}
        for r in ("parent", "collection", "root")
    ]


def _collection(spec: DemoCatalogSpec, root: Path, items: list[dict]) -> dict[str, Any]:
    """Collection document shaped like Earth Search's, restricted to the demo's assets."""
    boxes = np.array([it["bbox"] for it in items])
    bbox = [*boxes[:, :2].min(0).tolist(), *boxes[:, 2:].max(0).tolist()]
    first = min(it["properties"]["datetime"] for it in items)
    last = max(it["properties"]["datetime"] for it in items)
    tile = _Tile("44RPR", 0, 0, 0, 0)
    assets = {}
    for k in _ASSETS:
        a = _asset(k, Path(), tile, {})
        assets[k] = {
            n: v for n, v in a.items() if n not in ("href", "proj:shape", "proj:transform")
        }
    bands = [a["eo:bands"][0] | {"name": k} for k, a in assets.items() if k not in _20M]
    links = [{"rel": "self", "type": "application/json", "href": str(root / "collection.json")}]
    links.append({"rel": "items", "type": "application/geo+json", "href": str(root / "items.json")})
    return {
        "type": "Collection", "id": spec.collection,
        "title": "Sentinel-2 Collection 1 Level-2A (ndvicube synthetic demo)",
        "description": f"Synthetic Sentinel-2 L2A items from ndvicube.demo (seed {spec.seed}); "
        "same fields, grids, scale/offset and SCL classes as Earth Search v1 sentinel-2-c1-l2a.",
        "stac_version": "1.0.0", "links": links,
        "stac_extensions": [
            "https://stac-extensions.github.io/item-assets/v1.0.0/schema.json",
            "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
            "https://stac-extensions.github.io/eo/v1.0.0/schema.json",
        ],
        "item_assets": assets,
        "extent": {"spatial": {"bbox": [bbox]}, "temporal": {"interval": [[first, last]]}},
        "license": "CC0-1.0", "keywords": ["sentinel", "earth observation", "synthetic"],
        "providers": [{"name": "ndvicube", "roles": ["producer", "processor"]}],
        "summaries": {
            "platform": ["sentinel-2a", "sentinel-2b"], "constellation": ["sentinel-2"],
            "instruments": ["msi"], "gsd": [10, 20], "eo:bands": bands,
        },
    }  # fmt: skip

"""Earth Search-shaped STAC items of the benchmarks' synthetic scenes (one builder for all)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STAC_EXTENSIONS = [
    "https://stac-extensions.github.io/projection/v1.1.0/schema.json",
    "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
    "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
]


@dataclass(frozen=True)
class Scene:
    """One scene's 10 m grid: name, upper-left corner (UTM metres) and size in 10 m pixels
    (even, so its 20 m scl is exactly half)."""

    name: str
    x0: float
    y1: float
    width: int
    height: int


def scene_item(
    item_id: str,
    when: dt.datetime,
    scene: Scene,
    paths: dict[str, Path],
    to_ll: Any,
    *,
    epsg: int,
    offset: float,
    cloud_cover: float,
    bands: Sequence[str],
) -> dict:
    """The item of ``scene`` acquired ``when``: its footprint in lon/lat (``to_ll``, a pyproj
    transformer from the scene's UTM zone), one asset per band at ``paths`` (scl at 20 m, the
    others at 10 m with scale 1e-4 and ``offset``)."""
    x1, y0 = scene.x0 + 10 * scene.width, scene.y1 - 10 * scene.height
    lons, lats = to_ll.transform([scene.x0, x1, x1, scene.x0], [y0, y0, scene.y1, scene.y1])
    ring = [[round(lo, 7), round(la, 7)] for lo, la in zip(lons, lats, strict=True)]

    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "stac_extensions": list(STAC_EXTENSIONS),
        "id": item_id,
        "collection": "sentinel-2-c1-l2a",
        "bbox": [min(lons), min(lats), max(lons), max(lats)],
        "geometry": {"type": "Polygon", "coordinates": [[*ring, ring[0]]]},
        "properties": {
            "datetime": when.isoformat() + "Z",
            "proj:epsg": epsg,
            "eo:cloud_cover": cloud_cover,
        },
        "links": [],
        "assets": {k: band_asset(k, paths[k], scene, offset) for k in bands},
    }


def band_asset(key: str, path: Path, scene: Scene, offset: float) -> dict:
    """One band's asset: scl at 20 m (no scaling), the others at 10 m, scale 1e-4 and
    ``offset``, on ``scene``'s grid."""
    res = 20 if key == "scl" else 10
    band = {"nodata": 0, "data_type": "uint8" if key == "scl" else "uint16"}
    if key != "scl":
        band |= {"scale": 0.0001, "offset": offset}
    return {
        "href": str(path),
        "type": "image/tiff; application=geotiff; profile=cloud-optimized",
        "proj:shape": [scene.height * 10 // res, scene.width * 10 // res],
        "proj:transform": [res, 0, scene.x0, 0, -res, scene.y1],
        "raster:bands": [band],
        "roles": ["data"],
    }

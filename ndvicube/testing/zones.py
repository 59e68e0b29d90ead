"""Earth Search-shaped scenes gridded in a given UTM zone, for tests and benchmarks of areas
astride a zone edge (Sentinel-2 tiles on both sides of an edge grid the same place in their own
zones).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

#: What a scene holds: its assets' digital numbers from the longitudes of its pixel centres.
Bands = Callable[[np.ndarray], dict[str, np.ndarray]]


def zone_item(
    root: Path,
    epsg: int,
    day: str,
    box: tuple[float, float, float, float],
    bands: Bands,
    *,
    blocksize: int = 512,
) -> dict:
    """An item acquired ``day`` whose COGs (10 m, uint16, nodata 0, under ``root``) cover the
    lon/lat ``box`` in UTM zone ``epsg``; ``bands`` gives each asset's values (red and nir get
    scale 1e-4 and offset -0.1, scl none)."""
    import rasterio
    from pyproj import Transformer
    from rasterio.transform import from_origin

    to_utm = Transformer.from_crs("EPSG:4326", f"EPSG:{epsg}", always_xy=True)
    xs, ys = to_utm.transform([box[0], box[2]] * 2, [box[1]] * 2 + [box[3]] * 2)
    x0, y1 = np.floor(min(xs) / 60) * 60, np.ceil(max(ys) / 60) * 60
    width, height = int((max(xs) - x0) // 10) + 1, int((y1 - min(ys)) // 10) + 1
    gx, gy = np.meshgrid(x0 + 5 + 10 * np.arange(width), y1 - 5 - 10 * np.arange(height))
    lon, _ = Transformer.from_crs(f"EPSG:{epsg}", "EPSG:4326", always_xy=True).transform(gx, gy)
    item_id = f"S2A_T{epsg - 32600}RZZ_{day.replace('-', '')}T050000_L2A"
    assets = {}
    for key, data in bands(lon).items():
        path = root / item_id / f"{key}.tif"
        path.parent.mkdir(parents=True, exist_ok=True)
        profile = {"driver": "COG", "dtype": "uint16", "nodata": 0, "crs": f"EPSG:{epsg}"}
        profile |= {"transform": from_origin(x0, y1, 10, 10), "width": width, "height": height}
        with rasterio.open(path, "w", count=1, blocksize=blocksize, **profile) as dst:
            dst.write(data.astype("uint16"), 1)
        band = {"nodata": 0, "data_type": "uint16", "spatial_resolution": 10}
        if key != "scl":
            band |= {"scale": 0.0001, "offset": -0.1}
        assets[key] = {"href": str(path), "type": "image/tiff", "raster:bands": [band]}
    w, s, e, n = box
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "id": item_id,
        "collection": "sentinel-2-c1-l2a",
        "bbox": [w, s, e, n],
        "geometry": {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]},
        "properties": {
            "datetime": f"{day}T05:00:00Z",
            "eo:cloud_cover": 1.0,
            "proj:epsg": epsg,
            "s2:processing_baseline": "05.10",
        },
        "assets": assets,
        "links": [],
    }

"""A field set across two UTM zones: one grid for all, or one cube per zone? Prints a table.

    python bench/bench_zones.py [--km 8] [--repeats 3]

Two Earth Search-shaped scenes of the same place straddling 84 E (the edge of zones 44 and 45),
one gridded in each zone (as Sentinel-2 tiles on both sides of a zone edge are), local COGs read
through GDAL. Each row is one cube build of the same fields' chunks:

- *one grid* (ndvicube's choice): the grid is the zone of the field set's centre (45 here);
  the zone-45 scene is pasted, the zone-44 scene is warped onto it;
- *one cube per zone* (the alternative): each scene read into a cube in its own zone, pasted.

Also the floor (the same two scenes' windows read with rasterio, no warping, no masking, no
Zarr) and the geometry each choice pays: the UTM scale factor of zone 45 at the field set's
western edge (how much a 10 m pixel of the one grid differs from 10 m on the ground there).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from ndvicube.compute import Compute  # noqa: E402
from ndvicube.cube.spec import CubeSpec  # noqa: E402
from ndvicube.jobs import build_cube  # noqa: E402
from ndvicube.testing.zones import zone_item  # noqa: E402

LAT = 27.16


def scene(root: Path, epsg: int, day: str, box: tuple[float, float, float, float]) -> dict:
    """An item whose red/nir/scl COGs (10 m, noisy, 1024 px tiles) cover ``box`` in ``epsg``."""
    rng = np.random.default_rng(epsg)

    def bands(lon: np.ndarray) -> dict[str, np.ndarray]:
        return {
            "red": rng.integers(1000, 3000, lon.shape),
            "nir": rng.integers(3000, 6000, lon.shape),
            "scl": np.full(lon.shape, 4),
        }

    return zone_item(root, epsg, day, box, bands, blocksize=1024)


def timed_build(spec: CubeSpec, items: Path, out: Path, repeats: int) -> float:
    """Best of ``repeats`` builds of ``spec`` from ``items`` (seconds)."""
    best = float("inf")
    for n in range(repeats):
        t = time.perf_counter()
        build_cube(spec, items_path=items, out=out / f"{n}.zarr", compute=Compute(reader="gdal"))
        best = min(best, time.perf_counter() - t)
    return best


def floor(item: dict, box, repeats: int) -> float:
    """The scene's three windows of ``box`` read with rasterio alone (best of ``repeats``)."""
    import rasterio
    from rasterio.warp import transform_bounds
    from rasterio.windows import from_bounds

    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        for asset in item["assets"].values():
            with rasterio.open(asset["href"]) as src:
                bounds = transform_bounds("EPSG:4326", src.crs, *box)
                src.read(1, window=from_bounds(*bounds, src.transform))
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--km", type=float, default=8.0, help="side of the field set's box")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    from pyproj import Proj

    from ndvicube.geo import utm_crs_for

    half_lat = args.km / 2 / 111.32
    half_lon = half_lat / np.cos(np.radians(LAT))
    box = (84.0 - half_lon, LAT - half_lat, 84.0 + half_lon, LAT + half_lat)
    margin = (box[0] - 0.01, box[1] - 0.01, box[2] + 0.01, box[3] + 0.01)
    crs = utm_crs_for((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        items = {z: scene(root, z, "2023-03-02", margin) for z in (32644, 32645)}
        paths = {}
        for zone, item in items.items():
            paths[zone] = root / f"{zone}.json"
            paths[zone].write_text(json.dumps({"type": "FeatureCollection", "features": [item]}))
        base = CubeSpec(bbox=box, crs=crs, resolution=10)
        px = None
        for label, zone, grid in (
            ("one grid: zone-45 scene pasted", 32645, crs),
            ("one grid: zone-44 scene warped", 32644, crs),
            ("cube per zone: zone-44 scene pasted", 32644, "EPSG:32644"),
        ):
            spec = dataclasses.replace(base, crs=grid)
            seconds = timed_build(spec, paths[zone], root / f"out-{zone}-{grid[5:]}", args.repeats)
            from ndvicube.cube.load import area_geobox

            px = area_geobox(spec).shape.y * area_geobox(spec).shape.x
            rows.append((label, seconds, px))
        rows.append(("floor: rasterio reads of one scene", floor(items[32645], box, 3), px))
    k = Proj(crs).get_factors(box[0], LAT).meridional_scale
    print(f"field set box {args.km:g} km x {args.km:g} km astride 84 E; one grid in {crs}")
    print(f"{'build (one scene, one solar day)':40} {'s':>7} {'Mpx':>6} {'x paste':>8}")
    paste = rows[0][1]
    for label, seconds, px in rows:
        print(f"{label:40} {seconds:7.3f} {px / 1e6:6.2f} {seconds / paste:8.2f}")
    print(
        f"UTM scale factor of {crs} at {box[0]:.3f} E: {k:.5f} ({(k - 1) * 100:+.3f} % per pixel)"
    )


if __name__ == "__main__":
    main()

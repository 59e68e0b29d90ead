"""How the cost of a cube build grows: box size x period length, and the number of points.

One command, prints a table and the fitted slope::

    python bench/bench_scaling.py [--latency-ms 20]

Runs B (ndvicube's search + cube + series functions, in a fresh process, as in
``bench_speed.py``) over a loopback STAC API and Range server for three box sizes and three
period lengths, and the series step alone for 1, 100 and 10,000 points. Work is measured in
"scene blocks": items read x COG blocks (256 px) that intersect the box, summed over red, nir
and scl; a build that is limited by reads costs a fixed time per scene block.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from ndvicube.demo import DemoCatalogSpec, generate_demo_catalog, rewrite_hrefs  # noqa: E402
from ndvicube.testing.rangeserver import RangeHTTPServer  # noqa: E402
from ndvicube.testing.stacserver import StacApiServer  # noqa: E402

CENTER = (82.608, 27.163)
HALF_SIDES_DEG = {"1 km": 0.0045, "2 km": 0.009, "4 km": 0.018}
PERIODS = {"3 months": "2023-03-31", "6 months": "2023-06-30", "12 months": "2023-12-31"}

TRIAL = """
import json, sys, time
from ndvicube.cube.spec import CloudMask, CubeSpec
from ndvicube.jobs import build_cube, extract_series, search_area
from ndvicube.geo import Point
from ndvicube.search.stac import SearchRequest
api, work, bbox, end = sys.argv[1], sys.argv[2], tuple(json.loads(sys.argv[3])), sys.argv[4]
t = time.perf_counter()
request = SearchRequest.from_params(url=api, collection="sentinel-2-c1-l2a", bbox=bbox,
                                   start="2023-01-01", end=end, max_cloud_cover=30, area="a")
n = search_area(request, out=f"{work}/items.json")
spec = CubeSpec(bbox, "EPSG:32644", resolution=10, cloud_mask=CloudMask((3, 8, 9, 10)))
build_cube(spec, items_path=f"{work}/items.json", out=f"{work}/ndvi.zarr")
extract_series(cube_path=f"{work}/ndvi.zarr", points=[Point("c", 82.608, 27.163)],
               out=f"{work}/raw.csv")
print(json.dumps({"wall": time.perf_counter() - t, "items": n}))
"""


def box(half: float) -> tuple[float, float, float, float]:
    """A lon/lat box of +-half degrees (latitude) around the centre, square on the ground."""
    dlon = half / np.cos(np.radians(CENTER[1]))
    return (CENTER[0] - dlon, CENTER[1] - half, CENTER[0] + dlon, CENTER[1] + half)


def scene_blocks(items_json: Path, bbox: tuple[float, ...], catalog_root: Path) -> int:
    """Sum over stored items and red/nir/scl of COG blocks intersecting the box."""
    import rasterio
    from rasterio.warp import transform_bounds

    total = 0
    for feature in json.loads(items_json.read_text())["features"]:
        for key in ("red", "nir", "scl"):
            href = feature["assets"][key]["href"].split("/cogs/", 1)[1]
            with rasterio.open(catalog_root / "cogs" / href) as src:
                win = src.window(*transform_bounds("EPSG:4326", src.crs, *bbox))
                win = win.intersection(rasterio.windows.Window(0, 0, src.width, src.height))
                bh, bw = src.block_shapes[0]
                rows = int(win.row_off + win.height - 1) // bh - int(win.row_off) // bh + 1
                cols = int(win.col_off + win.width - 1) // bw - int(win.col_off) // bw + 1
                total += rows * cols
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-ms", type=float, default=20.0)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="ndvicube-scaling-"))
    largest = box(max(HALF_SIDES_DEG.values()))
    # 64 px COG blocks so that the three box sizes touch clearly different numbers of blocks.
    spec = DemoCatalogSpec(bbox=largest, blocksize=64)
    catalog = generate_demo_catalog(tmp / "catalog", spec)
    rows = []
    with RangeHTTPServer(catalog.root, latency_s=args.latency_ms / 1000) as cogs:
        served = rewrite_hrefs(catalog.items, tmp / "items_http.json", cogs.url, catalog.root)
        with StacApiServer(catalog.collection, served) as api:
            for size, half in HALF_SIDES_DEG.items():
                for period, end in PERIODS.items():
                    work = tmp / f"w-{size}-{period}".replace(" ", "")
                    work.mkdir()
                    cmd = [sys.executable, "-c", TRIAL, api.url, str(work)]
                    cmd += [json.dumps(box(half)), end]
                    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
                    res = json.loads(out.stdout.strip().splitlines()[-1])
                    blocks = scene_blocks(work / "items.json", box(half), catalog.root)
                    rows.append((size, period, res["items"], blocks, res["wall"]))
    print(f"latency {args.latency_ms:g} ms per request\n")
    print("| box | period | items | scene blocks | wall s | ms per scene block |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for size, period, items, blocks, wall in rows:
        print(
            f"| {size} | {period} | {items} | {blocks} | {wall:.2f} | {1000 * wall / blocks:.1f} |"
        )
    # wall = a + b x COGs opened + c x scene blocks (opening a COG costs round trips whatever
    # its size; each block costs a read and a decode).
    design = np.array([[1.0, 3 * r[2], r[3]] for r in rows])
    y = np.array([r[4] for r in rows])
    (a, b, c), *_ = np.linalg.lstsq(design, y, rcond=None)
    r2 = 1 - ((y - design @ [a, b, c]) ** 2).sum() / ((y - y.mean()) ** 2).sum()
    print(
        f"\nwall = {a:.2f} s + {1000 * b:.2f} ms x COGs opened + {1000 * c:.2f} ms x scene "
        f"blocks (R^2 = {r2:.3f})"
    )
    print_points_scaling(tmp / "w-4km-12months" / "ndvi.zarr", largest)


def print_points_scaling(cube_path: Path, bbox: tuple[float, ...]) -> None:
    """Series extraction time for 1, 100, 10,000 points on the largest cube."""
    from ndvicube.cube.store import open_cube
    from ndvicube.timeseries.points import Point, extract_points

    rng = np.random.default_rng(1)
    print("\n| points | series extraction s |\n| ---: | ---: |")
    for n in (1, 100, 10_000):
        lons = rng.uniform(bbox[0] + 1e-4, bbox[2] - 1e-4, n)
        lats = rng.uniform(bbox[1] + 1e-4, bbox[3] - 1e-4, n)
        points = [Point(f"p{i}", a, b) for i, (a, b) in enumerate(zip(lons, lats, strict=True))]
        cube = open_cube(cube_path)["ndvi"]
        t = time.perf_counter()
        extract_points(cube, points)
        print(f"| {n} | {time.perf_counter() - t:.2f} |")


if __name__ == "__main__":
    main()

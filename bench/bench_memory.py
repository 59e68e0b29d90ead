"""Memory and point-lookup benchmark on a large cube: 20 km x 20 km x 293 days at 10 m.

One command, prints two tables::

    python bench/bench_memory.py [--days 293] [--points 10000] [--loop-points 300]
                                 [--sources local http]

1. Peak RSS and wall time of ``ndvicube.jobs.build_cube`` (the function the `cube` rule calls)
   building a cube of 2,000 x 2,000 px x 293 solar days (4.7 GB of float32) into Zarr, in a
   fresh process, once per source: ``local`` files (read by GDAL) and ``http`` (the same files
   served by the loopback Range server, read by the remote reader with its pipeline). The COGs
   are one synthetic tile (red, nir 10 m uint16, scl 20 m) written once; each of the 293 items
   on consecutive days lists its own links to them (so every item is a distinct URL, fetched
   and decoded on its own); pixel content varies per item through the scale/offset metadata.
2. Series for 10,000 random points from that cube: ndvicube's vectorised lookup
   (``ndvicube.timeseries.points.extract_points``) vs a Python loop of one ``.sel`` per point
   (timed on ``--loop-points`` points and reported per point and extrapolated, since the full
   loop takes many minutes).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from _items import Scene, band_asset  # noqa: E402

EPSG = 32644
X0, Y1 = 600_000.0, 3_020_000.0  # upper-left corner of the tile (multiples of 60 m)
SIZE = 2_100  # pixels per side at 10 m: the 20 km box plus a margin
#: The tile's 10 m grid, as the items' assets describe it.
GRID = Scene("tile", X0, Y1, SIZE, SIZE)
BOX_M = 20_000.0


def write_tile(folder: Path) -> dict[str, Path]:
    """Red, nir (10 m) and scl (20 m) COGs with smooth, compressible, plausible content."""
    import rasterio
    from rasterio.transform import from_origin

    folder.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype("float32")
    red = (1000 + 500 + 300 * np.sin(xx / 37.0) * np.cos(yy / 53.0)).astype("uint16")
    nir = (1000 + 3000 + 1500 * np.sin(xx / 91.0 + yy / 71.0)).astype("uint16")
    scl = np.full((SIZE // 2, SIZE // 2), 4, dtype="uint8")
    scl[::7, ::5] = 9  # some clouds
    paths = {}
    for key, data, res in (("red", red, 10), ("nir", nir, 10), ("scl", scl, 20)):
        path = folder / f"{key}.tif"
        profile = dict(
            driver="COG", width=data.shape[1], height=data.shape[0], count=1,
            dtype=data.dtype.name, crs=f"EPSG:{EPSG}", transform=from_origin(X0, Y1, res, res),
            nodata=0, compress="DEFLATE", blocksize=512,
        )  # fmt: skip
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(data, 1)
        paths[key] = path
    return paths


def write_items(paths: dict[str, Path], days: int, out: Path) -> tuple[float, ...]:
    """`days` items on consecutive days, each listing its own links to the COGs (``days/N/``);
    returns the lon/lat box."""
    from pyproj import Transformer

    to_ll = Transformer.from_crs(EPSG, 4326, always_xy=True)
    cx, cy = X0 + SIZE * 5, Y1 - SIZE * 5
    lons, lats = to_ll.transform(
        [cx - BOX_M / 2 + 50, cx + BOX_M / 2 - 50], [cy - BOX_M / 2 + 50, cy + BOX_M / 2 - 50]
    )
    bbox = (min(lons), min(lats), max(lons), max(lats))
    tile_lons, tile_lats = to_ll.transform([X0, X0 + SIZE * 10], [Y1 - SIZE * 10, Y1])
    footprint = [min(tile_lons), min(tile_lats), max(tile_lons), max(tile_lats)]
    features = [
        _item(n, _links(paths, out.parent / "days" / str(n)), footprint) for n in range(days)
    ]
    out.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return bbox


def _links(paths: dict[str, Path], folder: Path) -> dict[str, Path]:
    """Symbolic links to the COGs in ``folder``: one item's own hrefs."""
    folder.mkdir(parents=True, exist_ok=True)
    links = {}
    for key, path in paths.items():
        link = folder / path.name
        if not link.exists():
            link.symlink_to(path)
        links[key] = link
    return links


def _item(n: int, paths: dict[str, Path], fp: list[float]) -> dict:
    """A minimal Earth Search-shaped item; the offset varies so every day's values differ."""
    day = dt.datetime(2023, 1, 1, 5, 10) + dt.timedelta(days=n)
    offset = -0.1 - 0.0001 * (n % 50)

    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "stac_extensions": [
            "https://stac-extensions.github.io/projection/v1.1.0/schema.json",
            "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
        ],
        "id": f"BENCH_T44RPR_{day:%Y%m%dT%H%M%S}_L2A",
        "collection": "sentinel-2-c1-l2a",
        "bbox": fp,
        "geometry": {
            "type": "Polygon",
            "coordinates": [
                [[fp[0], fp[1]], [fp[2], fp[1]], [fp[2], fp[3]], [fp[0], fp[3]], [fp[0], fp[1]]]
            ],
        },
        "properties": {"datetime": day.isoformat() + "Z", "proj:epsg": EPSG, "eo:cloud_cover": 1},
        "links": [],
        "assets": {k: band_asset(k, paths[k], GRID, offset) for k in ("red", "nir", "scl")},
    }


def build_in_fresh_process(items: Path, bbox: tuple[float, ...], out: Path) -> dict:
    """Run build_cube in a child process; return its wall time and peak RSS."""
    code = (
        "import json,resource,sys,time;from ndvicube.jobs import build_cube;"
        "from ndvicube.cube.spec import CloudMask,CubeSpec;t=time.perf_counter();"
        f"build_cube(CubeSpec({tuple(bbox)!r},'EPSG:32644',10,cloud_mask=CloudMask((3,8,9,10))),"
        f"items_path={str(items)!r},out={str(out)!r});"
        "print(json.dumps({'wall':time.perf_counter()-t,"
        "'rss_mb':resource.getrusage(resource.RUSAGE_SELF).ru_maxrss/1024}))"
    )
    done = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def build_from(source: str, tmp: Path, bbox: tuple[float, ...]) -> dict:
    """Build ``tmp/ndvi.zarr`` from local files or over loopback HTTP; wall and peak RSS."""
    import shutil

    shutil.rmtree(tmp / "ndvi.zarr", ignore_errors=True)
    if source == "local":
        return build_in_fresh_process(tmp / "items.json", bbox, tmp / "ndvi.zarr")
    from ndvicube.testing.rangeserver import RangeHTTPServer

    with RangeHTTPServer(tmp) as server:
        served = tmp / "items_http.json"  # each item's own links, not resolved to one file
        served.write_text((tmp / "items.json").read_text().replace(str(tmp), server.url))
        return build_in_fresh_process(served, bbox, tmp / "ndvi.zarr")


def points_benchmark(cube_path: Path, bbox: tuple[float, ...], n: int, loop_n: int) -> dict:
    """Vectorised extraction of n points vs a loop of .sel on loop_n points."""
    from ndvicube.cube.store import open_cube
    from ndvicube.timeseries.points import Point, extract_points

    rng = np.random.default_rng(0)
    lons = rng.uniform(bbox[0], bbox[2], n)
    lats = rng.uniform(bbox[1], bbox[3], n)
    points = [Point(f"p{i}", lon, lat) for i, (lon, lat) in enumerate(zip(lons, lats, strict=True))]
    cube = open_cube(cube_path)["ndvi"]
    started = time.perf_counter()
    series = extract_points(cube, points)
    vector_s = time.perf_counter() - started
    from ndvicube.geo import lonlat_to_crs

    xs, ys = lonlat_to_crs(lons[:loop_n], lats[:loop_n], "EPSG:32644")
    cube = open_cube(cube_path)["ndvi"]
    started = time.perf_counter()
    loop_values = [cube.sel(x=x, y=y, method="nearest").values for x, y in zip(xs, ys, strict=True)]
    loop_s = time.perf_counter() - started
    first = series[series["point"].isin([p.id for p in points[:loop_n]])]["ndvi"].to_numpy()
    assert np.allclose(first, np.concatenate(loop_values), equal_nan=True)
    return {"vector_s": vector_s, "loop_s_per_point": loop_s / loop_n, "n": n, "rows": len(series)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=293)
    parser.add_argument("--points", type=int, default=10_000)
    parser.add_argument("--loop-points", type=int, default=300)
    parser.add_argument("--reuse", type=Path, help="folder of an earlier run: skip the build")
    parser.add_argument("--sources", nargs="+", default=["local", "http"])
    args = parser.parse_args()
    tmp = args.reuse or Path(tempfile.mkdtemp(prefix="ndvicube-membench-"))
    paths = write_tile(tmp / "cogs")
    bbox = write_items(paths, args.days, tmp / "items.json")
    builds = {}
    if not args.reuse:
        builds = {source: build_from(source, tmp, bbox) for source in args.sources}
    from ndvicube.cube.store import open_cube

    cube = open_cube(tmp / "ndvi.zarr")["ndvi"]
    gb = cube.size * 4 / 1e9
    disk = sum(p.stat().st_size for p in (tmp / "ndvi.zarr").rglob("*") if p.is_file()) / 1e9
    print(
        "| source | cube (time x y x x) | float32 GB | Zarr on disk GB | build wall s "
        "| peak RSS MB |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    shape = " x ".join(str(s) for s in cube.shape)
    for source, build in builds.items():
        print(
            f"| {source} | {shape} | {gb:.2f} | {disk:.2f} | {build['wall']:.0f} "
            f"| {build['rss_mb']:.0f} |"
        )
    pts = points_benchmark(tmp / "ndvi.zarr", bbox, args.points, args.loop_points)
    loop_total = pts["loop_s_per_point"] * pts["n"]
    print(
        "\n| points | vectorised s | loop of .sel s per point | loop for all (extrapolated) s "
        "| speed-up | peak RSS MB |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"| {pts['n']} | {pts['vector_s']:.2f} | {pts['loop_s_per_point']:.3f} | "
        f"{loop_total:.0f} | {loop_total / pts['vector_s']:.0f}x | {rss:.0f} |"
    )


if __name__ == "__main__":
    main()

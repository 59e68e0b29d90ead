"""Field sets across a region: a sparse cube's cost against the dense cube of its box (issue 26).

One command, prints the tables::

    python bench/bench_fields.py [--blocksizes 1024 256] [--days 25] [--floor-blocksizes 1024]
                                 [--odc-stac] [--latency-ms 0] [--cache DIR]

**The region** (``bench/_fields_region.py``): 10,000 fields in four farm districts with a few
outlying fields and one near each corner, 3.3 % of a 41 km x 41 km box (its fields' lon/lat
bounds, as a field set's); two overlapping UTM footprints per solar day (west and east, COG
grids offset from the cube's and from each other by odd numbers of pixels), red and nir at
10 m with realistic noise, SCL at 20 m in four cloud patterns, 25 solar days. Every item lists
its own hard links to a few distinct files: distinct URLs, no extra disk. Served by the
loopback Range server (``--latency-ms``, default 0); its log gives requests and bytes.

**The builds**, each in a fresh process (``bench/_fields_trial.py``): ``build_cube`` with
``Compute(threads=2)`` on the box (*dense*), and on the same spec with
``fields=fields.parquet, field_points=[]`` (*sparse*: only the chunks the fields touch). The
*floor* (``bench/_engine_trial.py``'s, the dense case): the same store by a plain program,
async-geotiff reads of each COG's window, numpy, zarr, no Dask; ``--odc-stac`` adds odc-stac's
``load`` -> ``to_zarr`` of the box (off by default: at this size it took 329 s and read 12 GB
in one run, 8.9 x the least: its 256 px chunks fetch the 1024 px tiles again and again).

**The target** (issue 26): bytes read and the job's time of the sparse cube at most 1.3 x the
dense cube's x the touched-chunk fraction (present chunks / all chunks). Time is the job's,
from its process's start (``job s``); ``work s`` is ``build_cube`` alone.

**Why two COG tile sizes.** A COG tile is the unit fetched and decoded: a read pays every tile
its window meets, whole. The cube's grid comes from the fields' bounds (pixel edges on
multiples of 10 m) and never lines up with a scene's tiles, so a sparse read pays whole tiles
at its edges. Earth Search's COGs are tiled 1024 px (10.24 km at 10 m, 20.48 km for SCL), 4 x 4
cube chunks: there a district of 5 km already needs up to four 10 km tiles, and the least any
reader can fetch is far above the touched-chunk fraction. So the bench builds both the real
layout (1024 px, what users read) and 256 px tiles, a tile no larger than a chunk (the finest
layout that still keeps requests few: 64 or 128 px would multiply them), where what is left
is misalignment, SCL's 20 m tiles (512 px of the cube) and the outlying fields. The third
table computes, from the same geometry, the least share of tile area any reader fetches for
every tile size from 64 to 1024 px: the bound on what the target can mean on each layout.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import _fields_region as region  # noqa: E402
from bench_engine import trial  # noqa: E402

#: The catalog cache's version: bump it when ``_fields_region`` changes what it makes.
CACHE_VERSION = "v1"
CHUNK = 256
TARGET = 1.3


@dataclass(frozen=True)
class Region:
    """The fields and the cube grid of their box."""

    fields_path: Path
    bbox: tuple[float, float, float, float]
    grid: tuple[float, float, int, int]
    """x0, y1 (upper-left corner, metres), height, width (pixels)."""
    cover: float
    """Share of the grid's area the fields cover."""

    @property
    def chunk_grid(self) -> tuple[int, int]:
        return math.ceil(self.grid[2] / CHUNK), math.ceil(self.grid[3] / CHUNK)


def make_region(cache: Path) -> Region:
    """The fields (``cache/fields.parquet``, EPSG:32644) and their box's grid."""
    from ndvicube.geo import area_geobox

    fields = region.make_fields()
    path = cache / "fields.parquet"
    if not path.exists():
        fields.to_parquet(path.with_suffix(".partial"))
        os.replace(path.with_suffix(".partial"), path)
    bbox = tuple(float(v) for v in fields.to_crs("EPSG:4326").total_bounds)
    geobox = area_geobox(bbox, region.CRS, 10)
    height, width = geobox.shape.yx
    cover = float(fields.area.sum()) / (height * width * 100.0)
    return Region(path, bbox, (geobox.affine.c, geobox.affine.f, height, width), cover)


# --- builds ----------------------------------------------------------------------------------


def build(kind: str, items: Path, out: Path, reg: Region, server) -> dict:
    """``kind``: ``dense`` or ``sparse`` (ndvicube), ``floor`` or ``odc-stac`` (dense box)."""
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, str(HERE / "_fields_trial.py"), kind, str(items), str(out)]
    cmd += ["--bbox", *map(str, reg.bbox), "--fields", str(reg.fields_path)]
    return trial(cmd, server) | {"store_mb": store_mb(out)}


def store_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


def present(store: Path) -> list[tuple[int, int]]:
    """The chunks a sparse store lists (``ndvicube:chunks``)."""
    attrs = json.loads((store / ".zattrs").read_text())
    return [(int(r), int(c)) for r, c in json.loads(attrs["ndvicube:chunks"])]


# --- the least any reader fetches --------------------------------------------------------------


def chunk_boxes(reg: Region, chunks) -> list[tuple[float, float, float, float]]:
    """Map boxes (x_min, y_min, x_max, y_max) of cube chunks."""
    x0, y1, height, width = reg.grid
    boxes = []
    for r, c in chunks:
        r1, c1 = min((r + 1) * CHUNK, height), min((c + 1) * CHUNK, width)
        boxes.append((x0 + 10 * c * CHUNK, y1 - 10 * r1, x0 + 10 * c1, y1 - 10 * r * CHUNK))
    return boxes


def tiles_met(boxes, origin: tuple[float, float], size: tuple[int, int], res: float, tile: int):
    """The (row, col) tiles of a raster (upper-left ``origin``, ``size`` rows x cols at ``res``,
    ``tile`` px tiles) that the map boxes meet."""
    ox, oy = origin
    found: set[tuple[int, int]] = set()
    for xa, ya, xb, yb in boxes:
        c0, c1 = max(0, math.floor((xa - ox) / res)), min(size[1], math.ceil((xb - ox) / res))
        r0, r1 = max(0, math.floor((oy - yb) / res)), min(size[0], math.ceil((oy - ya) / res))
        if c1 > c0 and r1 > r0:
            found |= {
                (i, j)
                for i in range(r0 // tile, (r1 - 1) // tile + 1)
                for j in range(c0 // tile, (c1 - 1) // tile + 1)
            }
    return found


def least_reads(items: Path, reg: Region, chunks) -> dict[str, tuple[int, int]]:
    """Per case (dense, sparse): COG tiles and their compressed bytes (from each COG's header)
    that the cube's window meets, over every item and band: the least any reader fetches."""
    import rasterio

    cases = {"dense": grid_box(reg), "sparse": chunk_boxes(reg, chunks)}
    sizes: dict[tuple[int, int], dict] = {}
    totals = {case: [0, 0] for case in cases}
    for feature in json.loads(items.read_text())["features"]:
        for band in region.BANDS:
            path = feature["assets"][band]["href"]
            st = os.stat(path)
            key = (st.st_dev, st.st_ino)  # hard links of one file: its header read once
            if key not in sizes:
                with rasterio.open(path) as src:
                    t, tile = src.transform, src.block_shapes[0][0]
                    met = {
                        case: tiles_met(boxes, (t.c, t.f), src.shape, t.a, tile)
                        for case, boxes in cases.items()
                    }
                    sizes[key] = {
                        case: (len(m), sum(src.block_size(1, i, j) for i, j in m))
                        for case, m in met.items()
                    }
            for case in cases:
                totals[case][0] += sizes[key][case][0]
                totals[case][1] += sizes[key][case][1]
    return {case: (n, b) for case, (n, b) in totals.items()}


def grid_box(reg: Region) -> list[tuple[float, float, float, float]]:
    """The whole grid as one map box."""
    x0, y1, height, width = reg.grid
    return [(x0, y1 - 10 * height, x0 + 10 * width, y1)]


def tile_size_bound(reg: Region, chunks, sizes=(0, 64, 128, 256, 512, 1024)) -> dict[int, float]:
    """Per COG tile size: area of the red/nir tiles the present chunks meet over that of the
    tiles the box meets, summed over both footprints (SCL is about 1 % of the bytes). Size 0:
    the pixels themselves, no tile (what is left is the footprints' overlap, read twice)."""
    scenes = region.scene_grids(*reg.grid).values()
    sparse, dense = chunk_boxes(reg, chunks), grid_box(reg)
    bound = {}
    for size in sizes:
        area = {"sparse": 0.0, "dense": 0.0}
        for s in scenes:
            for case, boxes in (("sparse", sparse), ("dense", dense)):
                area[case] += footprint_area(s, boxes, size)
        bound[size] = area["sparse"] / area["dense"]
    return bound


def footprint_area(scene: region.Scene, boxes, size: int) -> float:
    """Pixels of ``scene`` read for the (disjoint) map boxes: those inside them (``size`` 0),
    or those of every ``size`` px tile they meet."""
    if size == 0:
        x1, y0 = scene.x0 + 10 * scene.width, scene.y1 - 10 * scene.height
        return (
            sum(
                max(0.0, min(xb, x1) - max(xa, scene.x0))
                * max(0.0, min(yb, scene.y1) - max(ya, y0))
                for xa, ya, xb, yb in boxes
            )
            / 100.0
        )
    area = 0
    for i, j in tiles_met(boxes, (scene.x0, scene.y1), (scene.height, scene.width), 10.0, size):
        rows = min(scene.height, (i + 1) * size) - i * size
        area += rows * (min(scene.width, (j + 1) * size) - j * size)
    return float(area)


# --- checks ------------------------------------------------------------------------------------


def compare_present(dense: Path, sparse: Path, reg: Region, chunks) -> tuple[int, int]:
    """Pixels of the sparse store's present chunks that differ from the dense store's (NaN ==
    NaN counts as equal), and all of them."""
    import zarr

    a, b = zarr.open_group(str(dense), mode="r")["ndvi"], zarr.open_group(str(sparse), mode="r")
    b = b["ndvi"]
    if a.shape != b.shape:
        return -1, 0
    differ = total = 0
    for r, c in chunks:
        window = (slice(None), slice(r * CHUNK, (r + 1) * CHUNK), slice(c * CHUNK, (c + 1) * CHUNK))
        x, y = a[window], b[window]
        differ += int(np.count_nonzero(~((x == y) | (np.isnan(x) & np.isnan(y)))))
        total += x.size
    return differ, total


def compare_all(reference: Path, other: Path) -> tuple[int, int]:
    """Pixels of ``other``'s ``ndvi`` that differ from ``reference``'s, and all (by strips)."""
    import zarr

    a = zarr.open_group(str(reference), mode="r")["ndvi"]
    b = zarr.open_group(str(other), mode="r")["ndvi"]
    if a.shape != b.shape:
        return -1, 0
    differ = 0
    for y in range(0, a.shape[1], 2 * CHUNK):
        x, z = a[:, y : y + 2 * CHUNK], b[:, y : y + 2 * CHUNK]
        differ += int(np.count_nonzero(~((x == z) | (np.isnan(x) & np.isnan(z)))))
    return differ, int(np.prod(a.shape))


def field_means(dense: Path, sparse: Path, reg: Region, chunks) -> dict | None:
    """Each field's coverage-weighted mean per date from both stores (exact weights,
    :mod:`ndvicube.timeseries.zonal`), read cell by cell from the chunks holding the fields'
    cells; None when that module is missing."""
    try:
        from ndvicube.timeseries.zonal import coverage_weights, zonal_statistics
    except ImportError:
        return None
    import geopandas as gpd
    import zarr
    from affine import Affine

    x0, y1, height, width = reg.grid
    fields = gpd.read_parquet(reg.fields_path).to_crs(region.CRS)
    weights = coverage_weights(
        fields.geometry, transform=Affine(10, 0, x0, 0, -10, y1), shape=(height, width),
        crs=region.CRS,
    )  # fmt: skip
    cell_chunk = (weights.rows // CHUNK) * reg.chunk_grid[1] + weights.cols // CHUNK
    listed = {r * reg.chunk_grid[1] + c for r, c in chunks}
    outside = int(np.count_nonzero(~np.isin(cell_chunk, list(listed))))
    means = {}
    for name, store in (("dense", dense), ("sparse", sparse)):
        array = zarr.open_group(str(store), mode="r")["ndvi"]
        values = np.full((array.shape[0], len(weights.rows)), np.nan, dtype="float32")
        for key in np.unique(cell_chunk):
            r, c = divmod(int(key), reg.chunk_grid[1])
            mine = np.flatnonzero(cell_chunk == key)
            block = array[:, r * CHUNK : (r + 1) * CHUNK, c * CHUNK : (c + 1) * CHUNK]
            rows, cols = weights.rows[mine] - r * CHUNK, weights.cols[mine] - c * CHUNK
            values[:, mine] = block[:, rows, cols]
        means[name] = zonal_statistics(values, weights)["mean"]
    d, s = means["dense"], means["sparse"]
    return {
        "fields": d.shape[1],
        "dates": d.shape[0],
        "observed": int(np.count_nonzero(~np.isnan(d))),
        "differ": int(np.count_nonzero(~((d == s) | (np.isnan(d) & np.isnan(s))))),
        "cells": len(weights.rows),
        "outside": outside,
        "idle": len(listed - {int(k) for k in np.unique(cell_chunk)}),
    }


# --- the run -----------------------------------------------------------------------------------


def measure(args, cache: Path, reg: Region, server, work: Path) -> dict[int, dict]:
    """Builds and reads for every COG tile size: ``{blocksize: {...}}``."""
    results = {}
    for blocksize in args.blocksizes:
        catalog = region.make_catalog(cache / f"bs{blocksize}", reg.grid, blocksize, args.days)
        items = catalog.items.with_name(catalog.items.stem + "-http.json")
        items.write_text(catalog.items.read_text().replace(str(cache), server.url))
        rows = {}
        for kind in ("dense", "sparse"):
            rows[kind] = build(kind, items, work / f"{kind}-{blocksize}.zarr", reg, server)
        if blocksize in args.floor_blocksizes:
            rows["floor"] = build("floor", items, work / f"floor-{blocksize}.zarr", reg, server)
        if args.odc_stac and blocksize == args.blocksizes[0]:
            rows["odc-stac"] = build("odc-stac", items, work / f"odc-{blocksize}.zarr", reg, server)
        chunks = present(work / f"sparse-{blocksize}.zarr")
        least = least_reads(catalog.items, reg, chunks)
        dense, sparse = work / f"dense-{blocksize}.zarr", work / f"sparse-{blocksize}.zarr"
        checks = {"present": compare_present(dense, sparse, reg, chunks)}
        checks["means"] = field_means(dense, sparse, reg, chunks)
        for other in ("floor", "odc-stac"):
            if other in rows:
                checks[other] = compare_all(dense, work / f"{other.split('-')[0]}-{blocksize}.zarr")
        results[blocksize] = {"rows": rows, "chunks": chunks, "least": least, "checks": checks}
        results[blocksize]["disk"] = region.disk_mb(catalog.root)
        for store in work.glob(f"*-{blocksize}.zarr"):
            shutil.rmtree(store, ignore_errors=True)
    return results


def print_report(args, reg: Region, results: dict[int, dict], loads: list[str]) -> None:
    """The header, the four parts, in order."""
    ny, nx = reg.chunk_grid
    height, width = reg.grid[2:]
    chunks = next(iter(results.values()))["chunks"]
    f = len(chunks) / (ny * nx)
    layout = region.FieldLayout()
    print(
        f"\nregion: {width / 100:.1f} km x {height / 100:.1f} km, cube {args.days} x {height} x "
        f"{width} px, {ny * nx} chunks of {CHUNK} px; {layout.count:,} fields in "
        f"{layout.districts} districts (with {layout.strays} outlying and 4 corner fields) "
        f"covering {100 * reg.cover:.1f} % of it; {len(chunks)} chunks touched (f = {f:.3f})"
    )
    for blocksize, res in results.items():
        used, copies = res["disk"]
        print(
            f"catalog, COG tiles {blocksize} px: {args.days} solar days x 2 footprints "
            f"({2 * args.days} items, {6 * args.days} COG URLs), {used:.0f} MB on disk through "
            f"hard links ({copies / 1000:.1f} GB as copies)"
        )
    print(f"load average (1, 5, 15 min) before: {loads[0]}; after: {loads[1]}")
    print(f"latency {args.latency_ms:g} ms per request; 2 threads per build")
    print_builds(reg, results)
    print_target(reg, results)
    print_bound(reg, chunks, f)
    print_checks(args, results)


NAMES = {
    "floor": "floor (dense): async-geotiff, numpy, zarr",
    "odc-stac": "odc-stac `load` -> `to_zarr` (dense)",
    "dense": "ndvicube dense (box)",
    "sparse": "**ndvicube sparse (fields)**",
}


def print_builds(reg: Region, results: dict[int, dict]) -> None:
    """Table 1: every build's time, reads, decodes, memory and store."""
    ny, nx = reg.chunk_grid
    print(
        "\n| COG tile px | build | chunks | job s | work s | CPU s | HTTP requests | MB read "
        "| tiles decoded | least tiles | least MB | read / least | peak RSS MB | store MB |"
    )
    print("| ---: | --- |" + " ---: |" * 12)
    for blocksize, res in results.items():
        for kind in (k for k in NAMES if k in res["rows"]):
            r = res["rows"][kind]
            n, least = res["least"]["sparse" if kind == "sparse" else "dense"]
            chunks = len(res["chunks"]) if kind == "sparse" else ny * nx
            tiles = r.get("tiles", {}).get("decoded", "-")
            print(
                f"| {blocksize} | {NAMES[kind]} | {chunks} | {r['process_s']:.1f} | "
                f"{r['wall']:.1f} | {r['cpu_s']:.1f} | {r['requests']} | "
                f"{r['bytes'] / 1e6:.0f} | {tiles} | {n} | "
                f"{least / 1e6:.0f} | {r['bytes'] / least:.2f} | {r['rss_mb']:.0f} | "
                f"{r['store_mb']:.0f} |"
            )
    print(
        "\njob s: the build's process from its start (interpreter, imports, work); work s: "
        "the call alone (floor: imports excluded); CPU s: the process's user + system time; "
        "least: the COG tiles the cube's window "
        "(dense: the box; sparse: the present chunks) meets, over every item and band, and "
        "their compressed bytes - what any reader must fetch, each tile once"
    )


def print_target(reg: Region, results: dict[int, dict]) -> None:
    """Table 2: the target, per COG tile size."""
    ny, nx = reg.chunk_grid
    print(f"\n## Target: sparse <= {TARGET} x dense x touched-chunk fraction f\n")
    print(
        "| COG tile px | f | 1.3 f | least bytes sparse/dense (any reader) | bytes sparse/dense "
        "| job time sparse/dense | CPU sparse/dense | bytes | time | peak RSS sparse < dense |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | --- |")
    for blocksize, res in results.items():
        d, s = res["rows"]["dense"], res["rows"]["sparse"]
        f = len(res["chunks"]) / (ny * nx)
        least = res["least"]["sparse"][1] / res["least"]["dense"][1]
        by, ti = s["bytes"] / d["bytes"], s["process_s"] / d["process_s"]

        def verdict(x: float, f: float = f) -> str:
            return f"{'met' if x <= TARGET * f else 'not met'} ({x / f:.2f} f)"

        print(
            f"| {blocksize} | {f:.3f} | {TARGET * f:.3f} | {least:.3f} ({least / f:.2f} f) | "
            f"{by:.3f} | {ti:.3f} | {s['cpu_s'] / d['cpu_s']:.3f} | {verdict(by)} | "
            f"{verdict(ti)} | "
            f"{'yes' if s['rss_mb'] < d['rss_mb'] else 'no'} ({s['rss_mb']:.0f} vs "
            f"{d['rss_mb']:.0f} MB) |"
        )


def print_bound(reg: Region, chunks, f: float) -> None:
    """Table 3: the least share any reader fetches, per COG tile size (geometry only)."""
    print(
        "\n## The least share of the dense reads a sparse read can fetch, by COG tile size\n\n"
        "(red and nir tile area the present chunks meet / that the box meets, both footprints; "
        f"f = {f:.3f})\n"
    )
    print("| COG tile px | least share | x f | within 1.3 f |\n| ---: | ---: | ---: | --- |")
    for size, share in tile_size_bound(reg, chunks).items():
        print(
            f"| {size or 'none: the chunks themselves'} | {share:.3f} | {share / f:.2f} | "
            f"{'yes' if share <= TARGET * f else 'no'} |"
        )


def print_checks(args, results: dict[int, dict]) -> None:
    """The stores' values and the fields' means, sparse against dense."""
    print("\n## Checks\n")
    for blocksize, res in results.items():
        c = res["checks"]
        differ, total = c["present"]
        print(
            f"- {blocksize} px: sparse store's {len(res['chunks'])} present chunks x "
            f"{args.days} days vs the dense store: {differ} of {total:,} pixels differ "
            "(NaN == NaN)"
        )
        m = c["means"]
        if m is None:
            print("  field means: skipped (ndvicube.timeseries.zonal is not importable)")
        else:
            print(
                f"  field means (coverage-weighted, ndvicube.timeseries.zonal): {m['fields']:,} "
                f"fields x {m['dates']} dates ({m['observed']:,} with a clear pixel): "
                f"{m['differ']} differ; field cells outside the present chunks: {m['outside']} "
                f"of {m['cells']:,}; present chunks without a field cell: {m['idle']}"
            )
        for other in ("floor", "odc-stac"):
            if other in c:
                differ, total = c[other]
                print(f"  {other} store vs ndvicube dense: {differ} of {total:,} pixels differ")


def load_average() -> str:
    return ", ".join(f"{v:.2f}" for v in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocksizes", type=int, nargs="+", default=[1024, 256])
    parser.add_argument("--floor-blocksizes", type=int, nargs="*", default=[1024])
    parser.add_argument("--days", type=int, default=25)
    parser.add_argument("--odc-stac", action="store_true", help="also odc-stac (first layout)")
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--cache", type=Path, help="catalog folder (kept between runs)")
    args = parser.parse_args()
    cache = args.cache or Path(tempfile.gettempdir()) / f"ndvicube-bench-fields-{CACHE_VERSION}"
    cache = cache.resolve()
    cache.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="ndvicube-bench-fields-work-"))
    from ndvicube.testing.rangeserver import RangeHTTPServer

    started = time.perf_counter()
    reg = make_region(cache)
    for blocksize in args.blocksizes:  # catalogs first, so that no build waits on one
        region.make_catalog(cache / f"bs{blocksize}", reg.grid, blocksize, args.days)
    made = time.perf_counter() - started
    loads = [load_average()]
    try:
        with RangeHTTPServer(cache, latency_s=args.latency_ms / 1000) as server:
            results = measure(args, cache, reg, server, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    loads.append(load_average())
    print_report(args, reg, results, loads)
    print(
        f"\n(catalog cache {cache}; making it {made:.0f} s of this run; whole run "
        f"{time.perf_counter() - started:.0f} s)"
    )


if __name__ == "__main__":
    main()

"""The cube engine at scale: speed against a floor and odc-stac, tiles decoded, peak memory.

One command, prints up to three tables (``--tables 1 2 3``, default all)::

    python bench/bench_engine.py [--tables 1 2 3] [--box-km 20] [--days 26] [--blocksize 1024]
                                 [--repeats 1] [--decode-box-km 10] [--decode-days 8]
                                 [--memory-box-km 20 40] [--memory-days 26] [--cache DIR]

The catalog is synthetic and cached (``--cache``, default ``$TMPDIR/ndvicube-bench-engine-v1``):
per box side and COG block size, two overlapping UTM scenes (EPSG:32644), ``west`` and
``east``, each about 60 % of the box's width plus a margin, together covering the cube's grid.
Both are on the 10 m lattice but their origins are offset from the cube's corner and from each
other by odd numbers of pixels, so neither COG tile grid lines up with the other nor with the
cube's chunks - as two MGRS tiles' grids do. Per scene: red and nir (10 m, uint16), scl (20 m,
uint8: mostly class 4, cloud blobs of 8/9 with their 3 shadows, a sprinkle of 9 and 10), DEFLATE
COGs with internal tiles of ``--blocksize`` px, nodata 0 (each scene has a nodata wedge where
the other covers it). The COGs are written once; each day's item (one per scene per day,
Earth Search-shaped, the offset varying by day) lists its own symbolic links to them, so every
item is a distinct URL, fetched and decoded on its own. The folder is served by the loopback
Range server (no added latency); its log gives the requests and bytes of each trial.

1. Scale (``--box-km`` x ``--days``, ``--blocksize``): each method in a fresh process
   (``bench/_engine_trial.py``), medians over ``--repeats``:

   * ``ndvicube``: ``ndvicube.jobs.build_cube`` with ``Compute(threads=2)``; timed from after
     ``import ndvicube.jobs`` (everything the job imports later is part of the job);
   * ``floor``: the same store by hand, no Dask: every COG window read with async-geotiff over
     obstore (32 COGs in flight), pasted into the cube grid (scl upsampled by ``np.repeat``),
     the two scenes of a day fused band by band (first non-nodata value, as odc-stac's
     ``groupby`` does), masked (nodata, SCL 3, 8, 9, 10), scaled to float32 reflectance, NDVI
     in numpy, written with zarr (v2, chunks (8, 256, 256), ndvicube's compressor); imports not
     timed;
   * ``odc-stac``: what a user would write instead: ``odc.stac.load`` on ndvicube's GeoBox
     with ``groupby="solar_day"``, mask, scale and NDVI in xarray, ``.to_zarr`` on Dask's
     threaded scheduler; imports timed.

   A sanity line counts the pixels of the floor's (and odc-stac's) store that differ from
   ndvicube's (NaN == NaN counts as equal).
2. Decodes (``--decode-box-km`` x ``--decode-days``): ndvicube for COG block sizes 256, 512,
   1024 and cube spatial chunks 256, 512: COG requests and bytes, tiles fetched and decoded
   (``ndvicube.read.tiles.TILES``; ``-`` when that counter is missing or unused), and the
   minimum: for every item and band, the COG's full-resolution tiles that intersect the
   cube's window in it (1 px margin).
3. Memory: peak RSS of the ndvicube build at each ``--memory-box-km`` with ``--memory-days``
   days, block size 1024 (the row of table 1 is reused when it is the same build).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from _items import Scene, scene_item  # noqa: E402

EPSG = 32644
CRS = f"EPSG:{EPSG}"
#: Centre of the box in EPSG:32644 (metres).
CENTRE = (610_000.0, 3_010_000.0)
BANDS = ("red", "nir", "scl")
SCENES = ("west", "east")
#: MGRS-like tile codes in the item ids: west sorts first (first valid wins in the overlap).
TILE_CODE = {"west": "T44RPR", "east": "T44RQR"}
METHODS = ("ndvicube", "floor", "odc-stac")
CACHE_VERSION = "v1"
#: Seconds spent making catalogs (COGs, links, items) in this run.
CATALOG_S = [0.0]


@dataclass(frozen=True)
class Catalog:
    """A cached catalog: the items (local hrefs under ``root``), the box, the scenes' COGs."""

    root: Path
    items: Path
    bbox: tuple[float, float, float, float]
    shape: tuple[int, int]
    """The cube grid's (height, width) in pixels."""
    cube_x0: float
    cube_y1: float
    cogs: dict[tuple[str, str], Path]
    """(scene, band) -> COG."""
    days: int


# --- the catalog -----------------------------------------------------------------------------


def box_geometry(box_km: float) -> tuple[tuple[float, ...], float, float, int, int]:
    """The lon/lat box of a square of ``box_km`` around :data:`CENTRE`, and the cube grid
    ndvicube makes of it (``ndvicube.geo.area_geobox``): x0, y1, height, width."""
    from pyproj import Transformer

    from ndvicube.geo import area_geobox

    to_ll = Transformer.from_crs(EPSG, 4326, always_xy=True)
    half = box_km * 500.0
    cx, cy = CENTRE
    lons, lats = to_ll.transform(
        [cx - half, cx + half, cx - half, cx + half], [cy - half, cy - half, cy + half, cy + half]
    )
    bbox = tuple(round(v, 6) for v in (min(lons), min(lats), max(lons), max(lats)))
    geobox = area_geobox(bbox, CRS, 10)
    height, width = geobox.shape.yx
    return bbox, geobox.affine.c, geobox.affine.f, height, width


def scene_grids(x0: float, y1: float, height: int, width: int) -> dict[str, Scene]:
    """West and east scenes over the cube grid, offset from it and from each other by odd
    numbers of pixels (so no COG tile edge meets a chunk edge or the other scene's tiles)."""

    def even(n: float) -> int:
        return int(math.ceil(n / 2) * 2)

    west_dx, west_dy = 37, 23  # pixels the west scene starts left of and above the cube
    east_dx = int(0.4 * width) - 61  # east scene starts this many pixels right of the cube's edge
    east_dx += 1 - east_dx % 2  # odd
    while (east_dx + west_dx) % 256 == 0:  # never on the west scene's tile grid either
        east_dx += 2
    east_dy = 51
    west = Scene(
        "west", x0 - 10 * west_dx, y1 + 10 * west_dy, even(0.6 * width + west_dx + 40),
        even(height + west_dy + 41),
    )  # fmt: skip
    east = Scene(
        "east", x0 + 10 * east_dx, y1 + 10 * east_dy, even(width - east_dx + 45),
        even(height + east_dy + 47),
    )  # fmt: skip
    return {"west": west, "east": east}


def scene_content(scene: Scene, cube_x0: float, cube_y1: float) -> dict[str, np.ndarray]:
    """Red, nir (10 m) and scl (20 m): smooth fields in map coordinates (so the two scenes
    roughly agree where they overlap) with a per-scene perturbation, cloud blobs and their
    shadows, and a nodata wedge on the side the other scene covers. Vectorised."""
    rng = np.random.default_rng(1 if scene.name == "west" else 2)
    phase = 0.7 if scene.name == "west" else 2.1
    h2, w2 = scene.height // 2, scene.width // 2
    # 20 m grid in cube pixel units (one 20 m pixel = 2 cube pixels)
    gy = (cube_y1 - scene.y1) / -10.0 + 2 * np.arange(h2, dtype="float32")[:, None]
    gx = (scene.x0 - cube_x0) / 10.0 + 2 * np.arange(w2, dtype="float32")[None, :]
    blobs = np.sin(gx / 61.0 + phase) * np.cos(gy / 47.0) + 0.6 * np.sin((gx - gy) / 133.0)
    scl = np.full((h2, w2), 4, dtype="uint8")
    shadow = np.roll(blobs, (9, -7), axis=(0, 1)) > 1.25
    scl[shadow] = 3
    scl[blobs > 1.2] = 8
    scl[blobs > 1.35] = 9
    speckle = rng.random((h2, w2))
    scl[speckle < 0.01] = 9
    scl[speckle > 0.997] = 10
    rows = np.arange(h2)[:, None] / h2
    cols = np.arange(w2)[None, :] / w2
    # west: a wedge along the right edge, inside the east scene; east: one at the upper left
    wedge = cols > 0.86 + 0.1 * rows if scene.name == "west" else cols < 0.12 * (1 - rows)
    scl[wedge] = 0
    # 10 m grid
    yy = (cube_y1 - scene.y1) / -10.0 + np.arange(scene.height, dtype="float32")[:, None]
    xx = (scene.x0 - cube_x0) / 10.0 + np.arange(scene.width, dtype="float32")[None, :]
    red = 1300 + 400 * np.sin(xx / 37.0 + phase) * np.cos(yy / 53.0) + 150 * np.sin((xx + yy) / 211)
    nir = 3300 + 1500 * np.sin(xx / 91.0 + yy / 71.0 + phase) + 200 * np.cos(yy / 29.0)
    nodata10 = np.repeat(np.repeat(wedge, 2, axis=0), 2, axis=1)
    red = np.where(nodata10, 0, np.clip(red, 1, None)).astype("uint16")
    nir = np.where(nodata10, 0, np.clip(nir, 1, None)).astype("uint16")
    return {"red": red, "nir": nir, "scl": scl}


def write_cogs(folder: Path, scene: Scene, cube_x0: float, cube_y1: float, blocksize: int):
    """The scene's three COGs in ``folder`` (written once: kept if present)."""
    import rasterio
    from rasterio.transform import from_origin

    paths = {b: folder / f"{scene.name}_{b}.tif" for b in BANDS}
    if all(p.exists() for p in paths.values()):
        return paths
    folder.mkdir(parents=True, exist_ok=True)
    for band, data in scene_content(scene, cube_x0, cube_y1).items():
        res = 20 if band == "scl" else 10
        partial = paths[band].with_suffix(".partial.tif")
        profile = dict(
            driver="COG", width=data.shape[1], height=data.shape[0], count=1,
            dtype=data.dtype.name, crs=CRS, transform=from_origin(scene.x0, scene.y1, res, res),
            nodata=0, compress="DEFLATE", blocksize=blocksize,
        )  # fmt: skip
        with rasterio.open(partial, "w", **profile) as dst:
            dst.write(data, 1)
        os.replace(partial, paths[band])
    return paths


def make_catalog(cache: Path, box_km: float, blocksize: int, days: int) -> Catalog:
    """The cached catalog of ``days`` days over a ``box_km`` box, COG tiles of ``blocksize``."""
    from pyproj import Transformer

    started = time.perf_counter()
    bbox, cx0, cy1, height, width = box_geometry(box_km)
    scenes = scene_grids(cx0, cy1, height, width)
    base = cache / f"box{box_km:g}" / f"bs{blocksize}"
    cogs: dict[tuple[str, str], Path] = {}
    for scene in scenes.values():
        for band, path in write_cogs(base / "cogs", scene, cx0, cy1, blocksize).items():
            cogs[scene.name, band] = path
    to_ll = Transformer.from_crs(EPSG, 4326, always_xy=True)
    features = []
    for n in range(days):
        for name, scene in scenes.items():
            links = _links({b: cogs[name, b] for b in BANDS}, base / "days" / f"{n:03d}" / name)
            features.append(_item(n, scene, links, to_ll))
    items = base / f"items-{days}.json"
    items.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    CATALOG_S[0] += time.perf_counter() - started
    return Catalog(cache, items, bbox, (height, width), cx0, cy1, cogs, days)


def _links(paths: dict[str, Path], folder: Path) -> dict[str, Path]:
    """Symbolic links to the COGs in ``folder``: one item's own hrefs."""
    folder.mkdir(parents=True, exist_ok=True)
    links = {}
    for key, path in paths.items():
        link = folder / path.name.split("_", 1)[1]
        if not link.is_symlink():
            link.symlink_to(path)
        links[key] = link
    return links


def _item(n: int, scene: Scene, paths: dict[str, Path], to_ll) -> dict:
    """An Earth Search-shaped item of one scene on day ``n`` (the offset varies by day)."""
    day = dt.datetime(2023, 1, 1, 5, 10) + dt.timedelta(days=n, seconds=SCENES.index(scene.name))
    item_id = f"BENCH_{TILE_CODE[scene.name]}_{day:%Y%m%dT%H%M%S}_L2A"
    return scene_item(item_id, day, scene, paths, to_ll, epsg=EPSG, offset=-0.1 - 0.0001 * (n % 50),
                      cloud_cover=4, bands=BANDS)  # fmt: skip


def served(catalog: Catalog, url: str) -> Path:
    """The catalog's items with hrefs on the server (``url`` serves ``catalog.root``)."""
    out = catalog.items.with_name(catalog.items.stem + "-http.json")
    out.write_text(catalog.items.read_text().replace(str(catalog.root), url))
    return out


# --- trials ----------------------------------------------------------------------------------


def run_trial(method: str, items: Path, catalog: Catalog, out: Path, server, chunk: int = 256):
    """One build in a fresh process; its JSON line plus the server's COG requests and bytes."""
    shutil.rmtree(out, ignore_errors=True)
    server.reset_log()
    cmd = [
        sys.executable, str(HERE / "_engine_trial.py"), method, str(items), str(out),
        "--bbox", *map(str, catalog.bbox), "--spatial-chunk", str(chunk),
    ]  # fmt: skip
    return trial(cmd, server)


def trial(cmd: list[str], server) -> dict:
    """Run a trial script ``cmd`` in a fresh process: its JSON line plus the COG requests and
    bytes ``server`` (a Range server, its log reset here) answered meanwhile."""
    server.reset_log()
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        sys.stderr.write(done.stderr[-4000:])
        raise SystemExit(f"trial failed (exit {done.returncode}): {' '.join(cmd[:3])}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    cogs = [r for r in server.requests if r.path.endswith(".tif")]
    return result | {"requests": len(cogs), "bytes": sum(r.bytes_sent for r in cogs)}


def median_row(trials: list[dict]) -> dict:
    """Medians of each numeric field over trials (others from the last)."""
    row = dict(trials[-1])
    for key, value in row.items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            row[key] = statistics.median(t[key] for t in trials)
    return row


def differing(reference: Path, other: Path) -> tuple[int, int]:
    """Pixels of ``other``'s ``ndvi`` that differ from ``reference``'s (NaN == NaN), and all."""
    import zarr

    a = zarr.open_group(str(reference), mode="r")["ndvi"]
    b = zarr.open_group(str(other), mode="r")["ndvi"]
    if a.shape != b.shape:
        return -1, int(np.prod(a.shape))
    step = a.chunks[0]
    count = 0
    for t in range(0, a.shape[0], step):
        x, y = a[t : t + step], b[t : t + step]
        count += int(np.count_nonzero(~((x == y) | (np.isnan(x) & np.isnan(y)))))
    return count, int(np.prod(a.shape))


def table_scale(args, cache: Path, server, work: Path) -> dict:
    """Table 1: ndvicube, the floor and odc-stac on one catalog."""
    catalog = make_catalog(cache, args.box_km, args.blocksize, args.days)
    items = served(catalog, server.url)
    trials: dict[str, list[dict]] = {m: [] for m in args.methods}
    for _ in range(args.repeats):
        for method in args.methods:
            trials[method].append(run_trial(method, items, catalog, work / method, server))
    rows = {m: median_row(t) for m, t in trials.items()}
    h, w = catalog.shape
    mpx = catalog.days * h * w / 1e6
    print(
        f"\n## 1. Scale: {args.box_km:g} km box, cube {catalog.days} x {h} x {w} px "
        f"({mpx:.0f} Mpx), 2 scenes/day, COG blocks {args.blocksize} px "
        f"(medians of {args.repeats})\n"
    )
    print(
        "| method | work s | x floor | whole process s | x floor | Mpx/s (process) "
        "| peak RSS MB | HTTP requests | MB read |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    floor = rows.get("floor", {})
    for method in ("floor", "ndvicube", "odc-stac"):
        if method not in rows:
            continue
        r = rows[method]
        work_x = f"{r['wall'] / floor['wall']:.2f}" if floor else "-"
        process_x = f"{r['process_s'] / floor['process_s']:.2f}" if floor else "-"
        print(
            f"| {method} | {r['wall']:.2f} | {work_x} | {r['process_s']:.2f} | {process_x} | "
            f"{mpx / r['process_s']:.1f} | {r['rss_mb']:.0f} | {r['requests']:.0f} | "
            f"{r['bytes'] / 1e6:.1f} |"
        )
    print(
        "\nwork: the build's own call (ndvicube: from after `import ndvicube.jobs`, its lazy "
        "imports included; floor: imports excluded); whole process: from the process's start "
        "(interpreter, every import, the work), as a job or a plain script costs"
    )
    if floor and "ndvicube" in rows:
        n = rows["ndvicube"]
        print(
            f"ndvicube/floor: {n['wall'] / floor['wall']:.2f}x the work, "
            f"{n['process_s'] / floor['process_s']:.2f}x the whole process"
        )
    if "ndvicube" in rows and "odc-stac" in rows:
        o, n = rows["odc-stac"], rows["ndvicube"]
        print(
            f"odc-stac/ndvicube: {o['wall'] / n['wall']:.2f}x the work, "
            f"{o['process_s'] / n['process_s']:.2f}x the whole process"
        )
    if "ndvicube" in rows:
        for method in ("floor", "odc-stac"):
            if method in rows:
                n, total = differing(work / "ndvicube", work / method)
                what = "shapes differ" if n < 0 else f"{n} of {total} pixels differ"
                print(f"sanity: {method} store vs ndvicube's: {what} (NaN == NaN counts as equal)")
    return rows


def minimum_tiles(catalog: Catalog) -> int:
    """For every item and band, the COG's full-resolution tiles intersecting the cube's
    window in it, with a 1 px margin (from each COG's header, the same for every day)."""
    import rasterio

    h, w = catalog.shape
    total = 0
    for path in catalog.cogs.values():
        with rasterio.open(path) as src:
            t = src.transform
            bh, bw = src.block_shapes[0]
            col0 = math.floor((catalog.cube_x0 - t.c) / t.a) - 1
            col1 = math.ceil((catalog.cube_x0 + 10 * w - t.c) / t.a) + 1
            row0 = math.floor((t.f - catalog.cube_y1) / -t.e) - 1
            row1 = math.ceil((t.f - catalog.cube_y1 + 10 * h) / -t.e) + 1
            col0, row0 = max(col0, 0), max(row0, 0)
            col1, row1 = min(col1, src.width), min(row1, src.height)
            if col1 <= col0 or row1 <= row0:
                continue
            across = (col1 - 1) // bw - col0 // bw + 1
            down = (row1 - 1) // bh - row0 // bh + 1
            total += across * down
    return total * catalog.days


def table_decodes(args, cache: Path, server, work: Path) -> None:
    """Table 2: ndvicube's requests and decoded tiles against the minimum, per block size and
    cube chunk."""
    rows = []
    for blocksize in (256, 512, 1024):
        catalog = make_catalog(cache, args.decode_box_km, blocksize, args.decode_days)
        items = served(catalog, server.url)
        least = minimum_tiles(catalog)
        for chunk in (256, 512):
            r = run_trial("ndvicube", items, catalog, work / "decodes", server, chunk)
            rows.append((blocksize, chunk, least, r, catalog.shape))
    h, w = rows[0][4]
    print(
        f"\n## 2. Decodes: {args.decode_box_km:g} km box, cube {args.decode_days} x {h} x {w} px,"
        " 2 scenes/day, ndvicube\n"
    )
    print(
        "| COG block | cube chunk | wall s | COG requests | MB read | tiles fetched "
        "| tiles decoded | minimum tiles | decoded/minimum |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    unused = False
    for blocksize, chunk, least, r, _ in rows:
        tiles = r.get("tiles")
        if tiles is not None and r["requests"] and not tiles["fetched"] and not tiles["decoded"]:
            tiles, unused = None, True
        fetched = f"{tiles['fetched']}" if tiles else "-"
        decoded = f"{tiles['decoded']}" if tiles else "-"
        ratio = f"{tiles['decoded'] / least:.2f}" if tiles else "-"
        print(
            f"| {blocksize} | {chunk} | {r['wall']:.2f} | {r['requests']} | "
            f"{r['bytes'] / 1e6:.1f} | {fetched} | {decoded} | {least} | {ratio} |"
        )
    if unused:
        print("\n`-`: ndvicube.read.tiles.TILES exists but this engine did not count any tile.")
    elif any(r.get("tiles") is None for *_, r, _ in rows):
        print("\n`-`: ndvicube.read.tiles is not importable (no tile counter yet).")


def table_memory(args, cache: Path, server, work: Path, scale: dict | None) -> None:
    """Table 3: peak RSS of the ndvicube build per box side."""
    rows = []
    for box in args.memory_box_km:
        catalog = make_catalog(cache, box, 1024, args.memory_days)
        h, w = catalog.shape
        same = (box, args.memory_days, 1024) == (args.box_km, args.days, args.blocksize)
        if scale and "ndvicube" in scale and same:
            rows.append((box, (args.memory_days, h, w), scale["ndvicube"], "table 1"))
            continue
        r = run_trial("ndvicube", served(catalog, server.url), catalog, work / "memory", server)
        rows.append((box, (args.memory_days, h, w), r, "this run"))
    print(f"\n## 3. Memory: ndvicube, {args.memory_days} days, COG blocks 1024 px\n")
    print("| box km | cube (time x y x x) | float32 GB | wall s | peak RSS MB | measured in |")
    print("| ---: | --- | ---: | ---: | ---: | --- |")
    for box, shape, r, where in rows:
        gb = math.prod(shape) * 4 / 1e9
        print(
            f"| {box:g} | {' x '.join(map(str, shape))} | {gb:.2f} | {r['wall']:.1f} | "
            f"{r['rss_mb']:.0f} | {where} |"
        )


def catalog_cache(chosen: Path | None) -> Path:
    """The catalogs' folder: ``chosen`` (``--cache``) or the temporary folder's default, made."""
    cache = chosen or Path(tempfile.gettempdir()) / f"ndvicube-bench-engine-{CACHE_VERSION}"
    cache = cache.resolve()
    cache.mkdir(parents=True, exist_ok=True)
    return cache


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", type=int, nargs="+", default=[1, 2, 3], choices=[1, 2, 3])
    parser.add_argument("--box-km", type=float, default=20.0)
    parser.add_argument("--days", type=int, default=26)
    parser.add_argument("--blocksize", type=int, default=1024, choices=[256, 512, 1024])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--decode-box-km", type=float, default=10.0)
    parser.add_argument("--decode-days", type=int, default=8)
    parser.add_argument("--memory-box-km", type=float, nargs="+", default=[20.0, 40.0])
    parser.add_argument("--memory-days", type=int, default=26)
    parser.add_argument("--cache", type=Path, help="catalog folder (kept between runs)")
    args = parser.parse_args()
    cache = catalog_cache(args.cache)
    work = Path(tempfile.mkdtemp(prefix="ndvicube-bench-engine-work-"))
    from ndvicube.testing.rangeserver import RangeHTTPServer

    print(f"catalog cache: {cache}; stores: {work}")
    scale = None
    try:
        with RangeHTTPServer(cache, latency_s=0) as server:
            for table in sorted(set(args.tables)):
                started, CATALOG_S[0] = time.perf_counter(), 0.0
                if table == 1:
                    scale = table_scale(args, cache, server, work)
                elif table == 2:
                    table_decodes(args, cache, server, work)
                else:
                    table_memory(args, cache, server, work, scale)
                took = time.perf_counter() - started
                print(
                    f"\n(table {table}: {took:.0f} s, making catalogs {CATALOG_S[0]:.0f} s of it)"
                )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

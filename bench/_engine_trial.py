"""One build of the engine benchmark (``bench/bench_engine.py``), in a fresh process.

Usage: python bench/_engine_trial.py {ndvicube|floor|odc-stac|snakemake} ITEMS_JSON OUT
                                     --bbox LON0 LAT0 LON1 LAT1 [--spatial-chunk 256]

Prints one JSON line: ``wall`` (seconds of the timed part), ``process_s`` (seconds from the
process's start: interpreter, imports and work), ``rss_mb`` (this process's peak RSS) and, for
ndvicube, ``tiles`` (``ndvicube.read.tiles.TILES.counts()``).

* ndvicube - ``build_cube`` with ``Compute(threads=2)``, timed from after ``import ndvicube.jobs``;
* floor - the same NDVI store with no Dask and nothing but async-geotiff, numpy and zarr
  (imports not timed): each day's COG windows read in an event loop thread, 32 COGs in flight,
  the next 8 days' reads under way while a day is computed or a block written; the scenes of a
  day fused band by band (first value that is not nodata, in ndvicube's item order, as
  odc-stac's ``groupby`` does), masked, scaled, NDVI in numpy in this thread, one Zarr v2 array
  (time, y, x) float32, chunks (8, s, s), ndvicube's compressor;
* odc-stac - ``odc.stac.load`` + xarray + ``.to_zarr`` on Dask's threaded scheduler, what a
  user would write (imports timed, as the job's are);
* snakemake - the ``cube`` job as Snakemake runs it: in the work folder OUT, a config of one
  area (the box, every day of ITEMS_JSON), its ``search`` job run first (not timed), then
  ``snakemake --cores 2`` of the area's cube timed from an empty ``results/{area}/cube``, then
  the same command again (the no-op run); ``wall`` is the first minus the second. ``job_rss_mb``
  is the peak RSS of the largest process of the run (the cube job's; ``ru_maxrss`` of the
  children), ``job_cpu_s`` its CPU seconds (the run's minus the no-op run's), ``tiles`` the
  counts the job logs, ``startup_s`` its process start to first line.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

CRS = "EPSG:32644"
RESOLUTION = 10
SCL_CLASSES = (3, 8, 9, 10)
BANDS = ("red", "nir", "scl")
TIME_CHUNK = 8
#: SCL values that are no clear observation: nodata (0) and the masked classes.
MASKED = np.isin(np.arange(256), (0, *SCL_CLASSES))
#: COGs read at once by the floor (as bench/_floor.py).
IN_FLIGHT = 32
#: Days whose reads are under way ahead of the one being computed.
LOOKAHEAD = TIME_CHUNK


def compressor():
    """ndvicube's stores' compressor (xarray's default for Zarr v2: ``ndvi/.zarray``)."""
    import numcodecs

    return numcodecs.Blosc(cname="lz4", clevel=5, shuffle=numcodecs.Blosc.SHUFFLE, blocksize=0)


def ndvicube(items: Path, out: Path, bbox: tuple, chunk: int) -> dict:
    """The cube job's function, as the ``cube`` rule calls it."""
    from ndvicube.jobs import build_cube

    started = time.perf_counter()
    from ndvicube.compute import Compute
    from ndvicube.cube.spec import Chunking, CloudMask, CubeSpec

    spec = CubeSpec(
        bbox, CRS, resolution=RESOLUTION, cloud_mask=CloudMask(SCL_CLASSES),
        cube=Chunking(time_chunk=TIME_CHUNK, spatial_chunk=chunk),
    )  # fmt: skip
    build_cube(spec, items_path=items, out=out, compute=Compute(threads=2))
    wall = time.perf_counter() - started
    try:
        from ndvicube.read.tiles import TILES
    except ImportError:
        tiles = None
    else:
        tiles = TILES.counts()
    return {"wall": wall, "tiles": tiles}


# --- the cube job as Snakemake runs it --------------------------------------------------------

ROOT = HERE.parent
#: The area's name in the benchmark's config (the ``results/`` folder).
AREA = "bench"


def snakemake(items: Path, out: Path, bbox: tuple, chunk: int) -> dict:
    """The ``cube`` job under ``snakemake --cores 2``: its run minus a no-op run (see above)."""
    features = json.loads(items.read_text())["features"]
    days = sorted(f["properties"]["datetime"][:10] for f in features)
    # an area needs points or polygons; the cube job does not read them
    centre = {"id": "centre", "lon": (bbox[0] + bbox[2]) / 2, "lat": (bbox[1] + bbox[3]) / 2}
    config = {
        "stac": {"url": str(items), "collection": "sentinel-2-c1-l2a", "max_cloud_cover": 30},
        "start": days[0],
        "end": days[-1],
        "resolution": RESOLUTION,
        "areas": {AREA: {"bbox": list(bbox), "points": [centre]}},
        "cloud_mask": {"scl_classes": list(SCL_CLASSES)},
        "cube": {"time_chunk": TIME_CHUNK, "spatial_chunk": chunk},
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(json.dumps(config))  # JSON is YAML
    options = ["-s", str(ROOT / "Snakefile"), "--directory", str(out), "--configfile",
               str(out / "config.yaml"), "--cores", "2", "--quiet"]  # fmt: skip
    results = out / "results" / AREA
    _run([sys.executable, "-m", "snakemake", f"results/{AREA}/items.json", *options])
    shutil.rmtree(results / "cube", ignore_errors=True)
    env = os.environ | {"NDVICUBE_TIMING": "1"}  # the job logs its start-up (ndvicube.logs)
    cube = [sys.executable, "-m", "snakemake", f"results/{AREA}/cube/workflow.zarr", *options]
    cpu0, started = _children_cpu_s(), time.perf_counter()
    _run(cube, env)
    run_s, cpu1 = time.perf_counter() - started, _children_cpu_s()
    rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    started = time.perf_counter()
    _run(cube)
    noop_s, noop_cpu = time.perf_counter() - started, _children_cpu_s() - cpu1
    log = (results / "logs" / "cube.log").read_text()
    return {
        "wall": run_s - noop_s, "run_s": run_s, "noop_s": noop_s, "job_rss_mb": rss_mb,
        "job_cpu_s": cpu1 - cpu0 - noop_cpu,
        "tiles": _logged_tiles(log), "startup_s": _logged_float(log, r"start-up: ([\d.]+) s"),
    }  # fmt: skip


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run(cmd: list[str], env: dict | None = None) -> None:
    """Run ``cmd``; on failure, its output on stderr and the trial stopped."""
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        sys.stderr.write(done.stdout[-3000:] + done.stderr[-3000:])
        raise SystemExit(f"snakemake failed (exit {done.returncode})")


def _logged_tiles(log: str) -> dict | None:
    """The tile counts the cube job logged (``ndvicube.cube.build``), or None."""
    found = re.search(r"COG tiles read by this process: (\d+) fetched, (\d+) decoded", log)
    return {"fetched": int(found[1]), "decoded": int(found[2])} if found else None


def _logged_float(log: str, pattern: str) -> float | None:
    found = re.search(pattern, log)
    return float(found[1]) if found else None


# --- the floor -------------------------------------------------------------------------------


def day_groups(features: list[dict], lon: float) -> list[list[dict]]:
    """Items by solar day (at ``lon``), in ndvicube's order: acquisition time, then id."""

    def acquired(f: dict) -> dt.datetime:
        return dt.datetime.fromisoformat(f["properties"]["datetime"].replace("Z", "+00:00"))

    groups: dict[dt.date, list[dict]] = {}
    for f in sorted(features, key=lambda f: (acquired(f), f["id"])):
        day = (acquired(f) + dt.timedelta(hours=lon / 15)).date()
        groups.setdefault(day, []).append(f)
    return [groups[d] for d in sorted(groups)]


async def read_window(store, url: str, grid: tuple, limit: asyncio.Semaphore):
    """The cube grid's window in one COG: (pixels at the COG's resolution, cube row and column
    of its first pixel, pixels per cube pixel), or None if they do not meet."""
    from async_geotiff import GeoTIFF, Window

    x0, y1, height, width = grid
    async with limit:
        tif = await GeoTIFF.open(urlsplit(url).path, store=store, prefetch=4096)
        t = tif.transform
        step = round(t.a / RESOLUTION)  # 1 at 10 m, 2 at 20 m
        col0 = max(0, int(np.floor((x0 - t.c) / t.a)))
        row0 = max(0, int(np.floor((t.f - y1) / -t.e)))
        col1 = min(tif.width, int(np.ceil((x0 + width * RESOLUTION - t.c) / t.a)))
        row1 = min(tif.height, int(np.ceil((t.f - y1 + height * RESOLUTION) / -t.e)))
        if col1 <= col0 or row1 <= row0:
            return None
        window = Window(col_off=col0, row_off=row0, width=col1 - col0, height=row1 - row0)
        data = (await tif.read(window=window)).data[0]
    cube_col = round((t.c - x0) / RESOLUTION) + col0 * step
    cube_row = round((y1 - t.f) / RESOLUTION) + row0 * step
    return data, cube_row, cube_col, step


async def read_day(store, group: list[dict], grid: tuple, limit: asyncio.Semaphore) -> list:
    """Every window of one day: ``[(item, band, window), ...]`` in item order."""
    jobs = [(f, b) for f in group for b in BANDS]
    windows = await asyncio.gather(
        *(read_window(store, f["assets"][b]["href"], grid, limit) for f, b in jobs)
    )
    return [(f, b, w) for (f, b), w in zip(jobs, windows, strict=True)]


def paste_first(dst: np.ndarray, window, fresh: bool) -> None:
    """Copy a window's pixels into ``dst`` (the cube grid) where ``dst`` is still nodata (0),
    upsampling a coarser band by repetition; first value that is not nodata wins (``fresh``:
    nothing pasted yet, so no test needed)."""
    if window is None:
        return
    data, row, col, step = window
    if step > 1:
        data = np.repeat(np.repeat(data, step, axis=0), step, axis=1)
    r0, c0 = max(row, 0), max(col, 0)
    r1, c1 = min(row + data.shape[0], dst.shape[0]), min(col + data.shape[1], dst.shape[1])
    if r1 <= r0 or c1 <= c0:
        return
    part = data[r0 - row : r1 - row, c0 - col : c1 - col]
    target = dst[r0:r1, c0:c1]
    if fresh:
        target[...] = part
    else:
        np.copyto(target, part, where=target == 0)


def ndvi_of_day(read: list, out: np.ndarray) -> None:
    """One solar day's NDVI into ``out`` (float32, NaN where masked) from its items' windows."""
    shape = out.shape
    fused = {
        "red": np.zeros(shape, "uint16"),
        "nir": np.zeros(shape, "uint16"),
        "scl": np.zeros(shape, "uint8"),
    }
    scaling: dict[str, tuple] = {}
    pasted: set[str] = set()
    for feature, band, window in read:
        paste_first(fused[band], window, band not in pasted)
        pasted.add(band)
        if band != "scl":
            info = feature["assets"][band]["raster:bands"][0]
            scaling.setdefault(band, (np.float32(info["scale"]), np.float32(info["offset"])))
    red, nir, scl = fused["red"], fused["nir"], fused["scl"]
    valid = ~MASKED[scl]
    valid &= red != 0
    valid &= nir != 0
    r = np.multiply(red, scaling["red"][0], dtype="float32")
    r += scaling["red"][1]
    n = np.multiply(nir, scaling["nir"][0], dtype="float32")
    n += scaling["nir"][1]
    out.fill(np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        np.divide(n - r, n + r, out=out, where=valid)
    out[np.isinf(out)] = np.nan  # a zero sum: NaN, as ndvicube's index


def floor(items: Path, out: Path, bbox: tuple, chunk: int) -> dict:
    """The store by hand: reads in an event loop thread, numpy and zarr in this one."""
    from ndvicube.geo import area_geobox

    geobox = area_geobox(bbox, CRS, RESOLUTION)
    height, width = geobox.shape.yx
    grid = (geobox.affine.c, geobox.affine.f, height, width)
    features = json.loads(items.read_text())["features"]
    groups = day_groups(features, (bbox[0] + bbox[2]) / 2)
    # A floor of the work itself: the imports are left out of the timed part.
    import async_geotiff  # noqa: F401
    import numcodecs  # noqa: F401
    import zarr
    from obstore.store import HTTPStore

    started = time.perf_counter()
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    parts = urlsplit(features[0]["assets"]["red"]["href"])
    store = HTTPStore.from_url(
        f"{parts.scheme}://{parts.netloc}/", client_options={"allow_http": True}
    )
    limit = asyncio.run_coroutine_threadsafe(_semaphore(), loop).result()
    pending = {}

    def submit(d: int) -> None:
        if d < len(groups) and d not in pending:
            coroutine = read_day(store, groups[d], grid, limit)
            pending[d] = asyncio.run_coroutine_threadsafe(coroutine, loop)

    array = zarr.open_group(str(out), mode="w", zarr_format=2).create_array(
        "ndvi", shape=(len(groups), height, width), chunks=(TIME_CHUNK, chunk, chunk),
        dtype="float32", fill_value=np.nan, compressors=compressor(),
    )  # fmt: skip
    for d in range(LOOKAHEAD):  # reads run ahead of the day computed by LOOKAHEAD days
        submit(d)
    for t0 in range(0, len(groups), TIME_CHUNK):
        block = np.empty((min(TIME_CHUNK, len(groups) - t0), height, width), "float32")
        for i in range(block.shape[0]):
            ndvi_of_day(pending.pop(t0 + i).result(), block[i])
            submit(t0 + i + LOOKAHEAD)
        array[t0 : t0 + block.shape[0]] = block
    wall = time.perf_counter() - started
    return {"wall": wall, "days": len(groups)}


async def _semaphore() -> asyncio.Semaphore:
    return asyncio.Semaphore(IN_FLIGHT)


# --- odc-stac --------------------------------------------------------------------------------


def odc_stac(items: Path, out: Path, bbox: tuple, chunk: int) -> dict:
    """What a user would write: odc-stac's load, xarray arithmetic, Dask's threaded scheduler."""
    started = time.perf_counter()
    import dask
    import odc.stac
    import pystac
    import xarray as xr

    from ndvicube.cube.load import cube_geobox
    from ndvicube.cube.spec import CloudMask, CubeSpec

    spec = CubeSpec(bbox, CRS, resolution=RESOLUTION, cloud_mask=CloudMask(SCL_CLASSES))
    collection = pystac.ItemCollection.from_file(str(items))
    odc.stac.configure_rio(cloud_defaults=True)
    ds = odc.stac.load(
        collection,
        bands=list(BANDS),
        geobox=cube_geobox(spec),
        groupby="solar_day",
        chunks={"time": 1, "x": chunk, "y": chunk},
        resampling="nearest",
    )
    # scale/offset of each solar day, from its items' raster:bands (the same for both scenes)
    lon = (bbox[0] + bbox[2]) / 2
    offsets: dict[np.datetime64, dict[str, tuple[float, float]]] = {}
    for item in collection:
        day = np.datetime64((item.datetime + dt.timedelta(hours=lon / 15)).date(), "ns")
        offsets.setdefault(
            day,
            {
                b: (item.assets[b].extra_fields["raster:bands"][0]["scale"],
                    item.assets[b].extra_fields["raster:bands"][0]["offset"])
                for b in ("red", "nir")
            },
        )  # fmt: skip
    days = ds["time"].values.astype("datetime64[D]").astype("datetime64[ns]")

    def reflectance(band: str) -> xr.DataArray:
        scale = xr.DataArray([offsets[d][band][0] for d in days], dims="time").astype("float32")
        offset = xr.DataArray([offsets[d][band][1] for d in days], dims="time").astype("float32")
        return ds[band].astype("float32") * scale + offset

    red, nir = reflectance("red"), reflectance("nir")
    ndvi = (nir - red) / (nir + red)
    valid = (ds.scl != 0) & (ds.red != 0) & (ds.nir != 0) & ~ds.scl.isin(list(SCL_CLASSES))
    ndvi = ndvi.where(valid & np.isfinite(ndvi)).astype("float32")
    ndvi = ndvi.chunk({"time": TIME_CHUNK, "y": chunk, "x": chunk})
    with dask.config.set(scheduler="threads"):
        ndvi.to_dataset(name="ndvi").drop_vars("spatial_ref", errors="ignore").to_zarr(
            out, mode="w", zarr_format=2, consolidated=True
        )
    return {"wall": time.perf_counter() - started}


def process_age_s() -> float:
    """Seconds since this process started (Linux ``/proc``): the interpreter, every import and
    the work - what a job or a plain script costs as a whole."""
    with open("/proc/self/stat") as stat, open("/proc/uptime") as uptime:
        started = int(stat.read().rsplit(")", 1)[1].split()[19])
        return float(uptime.read().split()[0]) - started / os.sysconf("SC_CLK_TCK")


def peak_rss_mb() -> float:
    """This program's peak RSS: ``VmHWM``, the high-water mark of its own memory map from
    ``exec`` on (``ru_maxrss`` keeps the parent's RSS at ``fork`` across ``exec`` on Linux,
    which overstates a small child of a large benchmark process)."""
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def report(result: dict) -> None:
    """Print a trial's JSON line, with its peak RSS, CPU time and process age, and leave.

    async-tiff / obstore may crash the interpreter's finalisation after all work is done
    (bench/_floor.py): leave without finalising, the store is written.
    """
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result |= {"rss_mb": peak_rss_mb(), "cpu_s": usage.ru_utime + usage.ru_stime}
    result["process_s"] = process_age_s()
    print(json.dumps(result), flush=True)
    sys.stderr.flush()
    os._exit(0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("method", choices=["ndvicube", "floor", "odc-stac", "snakemake"])
    parser.add_argument("items", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--bbox", type=float, nargs=4, required=True)
    parser.add_argument("--spatial-chunk", type=int, default=256)
    args = parser.parse_args()
    run = {"ndvicube": ndvicube, "floor": floor, "odc-stac": odc_stac, "snakemake": snakemake}[
        args.method
    ]
    report(run(args.items, args.out, tuple(args.bbox), args.spatial_chunk))


if __name__ == "__main__":
    main()

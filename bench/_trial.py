"""One timed trial of the speed benchmark, in a fresh process (so GDAL's caches start empty).

Usage: python bench/_trial.py {notebook|ndvicube|snakemake} --api URL --work DIR
Prints one JSON line: wall seconds of the measured part and the peak RSS in MB.

* notebook - the origin notebook's method: pystac-client search, odc-stac load of red, green,
  blue, nir, scl with ``chunks={}`` and ``groupby="solar_day"``, hard-coded scale/offset, SCL
  mask, NDVI, ``.interp(method="nearest")`` at the point, ``.compute()`` with Dask's defaults
  and GDAL's defaults;
* ndvicube - the functions the rules call (search, cube to Zarr, series), in this process;
* snakemake - the whole ``snakemake --cores 2`` run from an empty results/ (start-up and
  scheduling included), as a child process, then the same command again (a no-op rerun);
* inprocess - all of snakemake's work (search, cube, tables, figures, quick-look) as function
  calls in this one process: what C would cost without a process per job (C's floor).

``--points N`` puts N points in the box (field1 first, then a regular grid).
``NDVICUBE_BENCH_SNAKEMAKE_ARGS`` (e.g. ``--workflow-profile none``) is added to snakemake's
command line, for both of its runs.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

BBOX = (82.599, 27.154, 82.617, 27.172)
POINT = (82.608, 27.163)
START, END = "2023-01-01", "2023-12-31"
ROOT = Path(__file__).resolve().parent.parent
#: Parts of a trial timed on their own (the cube build of B), added to the printed JSON.
PARTS: dict[str, float] = {}


def points_in_box(count: int) -> list[dict]:
    """``count`` points: the notebook's field1, then a regular grid over the box's inside."""
    import math

    points = [{"id": "field1", "lon": POINT[0], "lat": POINT[1]}]
    side = math.ceil(math.sqrt(max(count - 1, 1)))
    for n in range(count - 1):
        row, col = divmod(n, side)
        lon = BBOX[0] + (BBOX[2] - BBOX[0]) * (col + 0.5) / side
        lat = BBOX[1] + (BBOX[3] - BBOX[1]) * (row + 0.5) / side
        points.append({"id": f"p{n:05d}", "lon": round(lon, 6), "lat": round(lat, 6)})
    return points


def notebook(api: str, work: Path, points: int = 1) -> None:
    """The origin notebook, step by step."""
    import odc.stac
    from pyproj import Transformer
    from pystac_client import Client

    catalog = Client.open(api)
    search = catalog.search(collections=["sentinel-2-c1-l2a"], bbox=BBOX, datetime=f"{START}/{END}")
    # The notebook asked the server for eo:cloud_cover < 30 with the Query extension; the
    # loopback API lacks it (and answers such a query with nothing), so filter here.
    items = [i for i in search.items() if i.properties["eo:cloud_cover"] < 30]
    ds = odc.stac.load(
        items,
        bands=["red", "green", "blue", "nir", "scl"],
        bbox=BBOX,
        resolution=10,
        chunks={},
        groupby="solar_day",
    )
    ds = ds.where(ds != 0)
    for band in ("red", "green", "blue", "nir"):
        ds[band] = ds[band] * 0.0001 - 0.1
    ds = ds.where(~ds["scl"].isin([3, 8, 9, 10]))
    ndvi = (ds["nir"] - ds["red"]) / (ds["nir"] + ds["red"])
    x, y = Transformer.from_crs("EPSG:4326", ds.odc.crs, always_xy=True).transform(*POINT)
    series = ndvi.interp(x=x, y=y, method="nearest").compute()
    series.to_pandas().to_csv(work / "notebook.csv")


def search_and_cube(api: str, work: Path) -> Path:
    """The search and cube jobs' functions: ``work/items.json`` and ``work/ndvi.zarr``."""
    started = time.perf_counter()
    from ndvicube.cube.spec import CloudMask, CubeSpec
    from ndvicube.jobs import build_cube, search_area
    from ndvicube.search.stac import SearchRequest

    PARTS["imports_s"] = time.perf_counter() - started
    started = time.perf_counter()

    request = SearchRequest.from_params(
        url=api,
        collection="sentinel-2-c1-l2a",
        bbox=BBOX,
        start=START,
        end=END,
        max_cloud_cover=30,
        area="seed",
    )
    search_area(request, out=work / "items.json")
    PARTS["search_s"] = time.perf_counter() - started
    # The cube build is also timed alone, against the I/O floor (which leaves imports out too).
    started = time.perf_counter()
    import async_geotiff  # noqa: F401
    import obstore  # noqa: F401
    import odc.stac  # noqa: F401
    import zarr  # noqa: F401

    PARTS["imports_s"] += time.perf_counter() - started
    started = time.perf_counter()
    spec = CubeSpec(BBOX, "EPSG:32644", resolution=10, cloud_mask=CloudMask((3, 8, 9, 10)))
    build_cube(spec, items_path=work / "items.json", out=work / "ndvi.zarr")
    PARTS["cube_s"] = time.perf_counter() - started
    return work / "ndvi.zarr"


def ndvicube(api: str, work: Path, points: int = 1) -> None:
    """The functions the workflow's rules call, in one process."""
    from ndvicube.geo import Point
    from ndvicube.jobs import extract_series

    search_and_cube(api, work)
    started = time.perf_counter()
    extract_series(
        cube_path=work / "ndvi.zarr", points=[Point("field1", *POINT)], out=work / "raw.csv"
    )
    PARTS["series_s"] = time.perf_counter() - started


def inprocess(api: str, work: Path, points: int = 1) -> None:
    """Everything the workflow's jobs do, as calls in this one process (no job overhead)."""
    from ndvicube.geo import Point
    from ndvicube.jobs import figures, point_tables, quicklook

    chosen = [Point(**p) for p in points_in_box(points)]
    cube = search_and_cube(api, work)
    tables = {n: work / f"{n}.csv" for n in ("raw", "smoothed", "phenology")}
    point_tables(
        cube_path=cube,
        points=chosen,
        raw_out=tables["raw"],
        smoothed_out=tables["smoothed"],
        phenology_out=tables["phenology"],
        smoothing={},
        phenology={"fraction": 0.5, "min_amplitude": 0.1},
    )
    figures(
        raw_path=tables["raw"],
        smoothed_path=tables["smoothed"],
        points=[p.id for p in chosen[:50]],
        area="seed",
        plots_dir=work / "plots",
        overview=work / "overview.png",
    )
    quicklook(cube_path=cube, points=chosen, area="seed", out=work / "quicklook.png")


def snakemake(api: str, work: Path, points: int = 1) -> None:
    """`snakemake --cores 2` on a config pointing at the loopback API, from an empty results/;
    then the same command again, which has nothing to do (the no-op rerun's time)."""
    import yaml

    chosen = points_in_box(points)
    if points > 50:  # as a user with many points would: a CSV, not thousands of YAML lines
        rows = [f"{p['id']},{p['lon']},{p['lat']}" for p in chosen]
        (work / "points.csv").write_text("id,lon,lat\n" + "\n".join(rows) + "\n")
        chosen = str(work / "points.csv")
    config = {
        "stac": {"url": api, "collection": "sentinel-2-c1-l2a", "max_cloud_cover": 30},
        "start": START,
        "end": END,
        "areas": {"seed": {"bbox": list(BBOX), "points": chosen}},
    }
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    shutil.rmtree(work / "results", ignore_errors=True)
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory"]
    cmd += [str(work), "--configfile", str(work / "config.yaml"), "--cores", "2", "--quiet"]
    cmd += os.environ.get("NDVICUBE_BENCH_SNAKEMAKE_ARGS", "").split()
    env = os.environ | {"NDVICUBE_TIMING": "1"}  # each job logs its start-up (ndvicube.logs)
    started = time.time()
    subprocess.run(cmd, check=True, capture_output=True, env=env)
    wall = time.time() - started
    breakdown = job_times(work / ".snakemake" / "metadata")
    breakdown["startup"] = startup_times(work / ".snakemake" / "metadata", work)
    started = time.time()
    subprocess.run(cmd, check=True, capture_output=True)
    breakdown |= {"wall": wall, "noop": time.time() - started}
    (work / "breakdown.json").write_text(json.dumps(breakdown))


def startup_times(metadata: Path, work: Path) -> dict[str, list[float]]:
    """Per rule, each job's start-up: seconds from its start in Snakemake's process (the
    ``starttime`` of Snakemake's record of the job) to the first line of its log, which every
    job writes when ``NDVICUBE_TIMING`` is set, before its work. For a job of its own process
    that is the interpreter, Snakemake's script preamble and the script's imports; for a job in
    a thread of Snakemake's process (the search, the cube), the thread's start and its ``run:``
    block's imports; for a light job forked from the fork server that imported its libraries
    (ndvicube/jobs/forked.py), the fork."""
    import base64
    import re

    first_line = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3}) ")
    found: dict[str, list[float]] = {}
    seen = set()
    for record in metadata.iterdir():
        if not base64.b64decode(record.name).decode().startswith("results/"):
            continue
        doc = json.loads(record.read_text())
        if doc["job_hash"] in seen or not doc.get("log"):
            continue
        seen.add(doc["job_hash"])
        match = first_line.match((work / doc["log"][0]).read_text())
        if match:
            logged = time.mktime(time.strptime(match[1], "%Y-%m-%d %H:%M:%S")) + int(match[2]) / 1e3
            found.setdefault(doc["rule"], []).append(logged - doc["starttime"])
    return found


def job_times(metadata: Path) -> dict:
    """Per rule: jobs and the sum of their wall times (process start, imports and work), and
    the span from the first job's start to the last one's end, from Snakemake's own records."""
    import base64

    jobs: dict[int, dict] = {}
    for record in metadata.iterdir():
        if base64.b64decode(record.name).decode().startswith("results/"):
            doc = json.loads(record.read_text())
            jobs[doc["job_hash"]] = doc  # the outputs of one job share its record
    rules: dict[str, list[float]] = {}
    for doc in jobs.values():
        rules.setdefault(doc["rule"], []).append(doc["endtime"] - doc["starttime"])
    span = max(d["endtime"] for d in jobs.values()) - min(d["starttime"] for d in jobs.values())
    return {"span": span, "rules": {r: [len(t), sum(t)] for r, t in sorted(rules.items())}}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("method", choices=["notebook", "ndvicube", "snakemake", "inprocess"])
    parser.add_argument("--api", required=True)
    parser.add_argument("--work", required=True, type=Path)
    parser.add_argument("--points", type=int, default=1)
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    globals()[args.method](args.api, args.work, args.points)
    wall = time.perf_counter() - started
    if args.method == "snakemake":  # the first run only; the no-op rerun is reported apart
        breakdown = json.loads((args.work / "breakdown.json").read_text())
        wall = breakdown["wall"]
        PARTS["noop_s"] = breakdown["noop"]
    who = resource.RUSAGE_CHILDREN if args.method == "snakemake" else resource.RUSAGE_SELF
    peak_mb = resource.getrusage(who).ru_maxrss / 1024
    print(json.dumps({"wall": wall, "peak_rss_mb": peak_mb} | PARTS))


if __name__ == "__main__":
    main()

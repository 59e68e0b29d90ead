"""The remote reader's settings, measured: COGs in flight, and the pipeline on or off.

One command, prints a table::

    python bench/bench_reads.py [--latency-ms 100] [--repeats 3]

The cube build alone (``ndvicube.jobs.build_cube``, the cube job's function, imports done
before timing) of bench_speed's demo year (96 items, 288 COGs of red, nir, scl) from the
loopback Range server adding a fixed latency per request, in a fresh process per trial, for
``IN_FLIGHT`` (COGs fetched at once) of 8, 16, 32, 64 and with the pipeline off (each block's
COGs fetched only when Dask reads them). The floor row is bench_speed's: the same windows read
by async-geotiff alone (``bench/_floor.py``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from ndvicube.demo import DemoCatalogSpec, generate_demo_catalog, rewrite_hrefs  # noqa: E402
from ndvicube.testing.rangeserver import RangeHTTPServer  # noqa: E402

CHILD = """
import contextlib, json, sys, time
import async_geotiff, obstore, odc.stac, zarr
from ndvicube import jobs
from ndvicube.cube import build
from ndvicube.demo import cube_spec
from ndvicube.read import remote
in_flight, pipeline, items, out = int(sys.argv[1]), sys.argv[2] == "on", sys.argv[3], sys.argv[4]
remote.IN_FLIGHT = in_flight
if not pipeline:
    build._reads_ahead = lambda *a, **k: contextlib.nullcontext(None)
t = time.perf_counter()
jobs.build_cube(cube_spec(), items_path=items, out=out)
print(json.dumps({"wall": time.perf_counter() - t}))
"""


def trial(in_flight: int, pipeline: str, items: Path, out: Path) -> float:
    cmd = [sys.executable, "-c", CHILD, str(in_flight), pipeline, str(items), str(out)]
    subprocess.run(["rm", "-rf", str(out)], check=True)
    done = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])["wall"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-ms", type=float, default=100.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="ndvicube-reads-"))
    catalog = generate_demo_catalog(tmp / "catalog", DemoCatalogSpec())
    doc = json.loads(catalog.items.read_text())
    doc["features"] = [f for f in doc["features"] if f["properties"]["eo:cloud_cover"] < 30]
    kept = tmp / "kept.json"
    kept.write_text(json.dumps(doc))
    settings = [(8, "on"), (16, "on"), (32, "on"), (64, "on"), (32, "off")]
    with RangeHTTPServer(catalog.root, latency_s=args.latency_ms / 1000) as server:
        served = rewrite_hrefs(kept, tmp / "served.json", server.url, catalog.root)
        times: dict[tuple, list[float]] = {s: [] for s in settings}
        floors = []
        for _ in range(args.repeats):
            for setting in settings:
                times[setting].append(trial(*setting, served, tmp / "ndvi.zarr"))
            floor = subprocess.run(
                [sys.executable, str(HERE / "_floor.py"), str(served)],
                check=True, capture_output=True, text=True,
            )  # fmt: skip
            floors.append(json.loads(floor.stdout.strip().splitlines()[-1])["wall"])
    floor = statistics.median(floors)
    print(f"\ncube build alone, {args.latency_ms:g} ms per request (medians of {args.repeats})\n")
    print("| COGs in flight (`IN_FLIGHT`) | pipeline | cube build s | x floor |")
    print("| ---: | --- | ---: | ---: |")
    for (in_flight, pipeline), walls in times.items():
        wall = statistics.median(walls)
        print(f"| {in_flight} | {pipeline} | {wall:.2f} | {wall / floor:.2f} |")
    print(f"| floor: async-geotiff alone, 32 in flight | - | {floor:.2f} | 1.00 |")


if __name__ == "__main__":
    main()

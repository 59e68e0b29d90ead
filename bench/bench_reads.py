"""The cube engine's concurrency, measured: write blocks computed at once, and COGs in flight.

One command, prints a table::

    python bench/bench_reads.py [--latency-ms 100] [--repeats 3]

The cube build alone (``ndvicube.jobs.build_cube``, the cube job's function, imports done
before timing) of bench_speed's demo year (96 items, 288 COGs of red, nir, scl) from the
loopback Range server adding a fixed latency per request, in a fresh process per trial (2
cores), for ``BLOCKS_PER_CORE`` (write blocks computed at once per core,
:mod:`ndvicube.compute`) of 1, 2, 4 and 8, and ``IN_FLIGHT`` (COGs fetched at once per
process, :mod:`ndvicube.read.remote`) of 16, 32 and 64. The floor row is bench_speed's: the same
windows read by async-geotiff alone (``bench/_floor.py``).
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
import json, sys, time
import async_geotiff, obstore, odc.stac, zarr
from ndvicube import jobs
from ndvicube.compute import Compute
from ndvicube import compute
from ndvicube.demo import cube_spec
from ndvicube.read import remote
blocks, in_flight, items, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
remote.IN_FLIGHT, compute.BLOCKS_PER_CORE = in_flight, blocks
t = time.perf_counter()
jobs.build_cube(cube_spec(), items_path=items, out=out, compute=Compute(threads=2))
print(json.dumps({"wall": time.perf_counter() - t}))
"""


def trial(blocks: int, in_flight: int, items: Path, out: Path) -> float:
    cmd = [sys.executable, "-c", CHILD, str(blocks), str(in_flight), str(items), str(out)]
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
    settings = [(1, 32), (2, 32), (4, 32), (8, 32), (2, 16), (2, 64)]
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
    print("| blocks at once per core (`BLOCKS_PER_CORE`) | COGs in flight (`IN_FLIGHT`) "
          "| cube build s | x floor |")  # fmt: skip
    print("| ---: | ---: | ---: | ---: |")
    for (blocks, in_flight), walls in times.items():
        wall = statistics.median(walls)
        print(f"| {blocks} | {in_flight} | {wall:.2f} | {wall / floor:.2f} |")
    print(f"| floor: async-geotiff alone | 32 | {floor:.2f} | 1.00 |")


if __name__ == "__main__":
    main()

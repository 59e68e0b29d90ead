"""What the composites cost next to the cube they are made from (20 km x 20 km x 293 days).

One command, prints a table::

    python bench/bench_composites.py [--days 293] [--reuse DIR] [--period 1MS]

The cube is the memory benchmark's (``bench/bench_memory.py``: 2,000 x 2,000 px at 10 m, 293
solar days, 4.7 GB of float32), built by ``build_cube`` from the loopback Range server in a
fresh process (its wall time and peak RSS). Then ``build_composites`` - the function the
`composites` rule calls - runs on it in a fresh process, from scratch (every period computed,
every COG written), then again with nothing changed. The floor is reading and decoding every
chunk of the cube once (a Dask sum over the store with the same 2 threads): no composite of
every day can do less.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from bench_memory import build_from, write_items, write_tile  # noqa: E402

COMPOSITE = """
import json, resource, sys, time
from ndvicube.jobs import build_composites
t = time.perf_counter()
computed = build_composites(cube_path=sys.argv[1], out=sys.argv[2], cogs_out=sys.argv[3],
                            period=sys.argv[4], statistic="median", indices=["NDVI"],
                            start="2023-01-01", end="2023-12-31", threads=2)
print(json.dumps({"wall": time.perf_counter() - t, "periods": len(computed),
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

FLOOR = """
import json, sys, time
import dask, dask.array as da
t = time.perf_counter()
with dask.config.set(scheduler="threads", num_workers=2):
    da.from_zarr(sys.argv[1], component="ndvi").sum().compute()
print(json.dumps({"wall": time.perf_counter() - t}))
"""


def in_fresh_process(code: str, *args: str) -> dict:
    """Run ``code`` in a child Python; its last line of output, as JSON."""
    done = subprocess.run([sys.executable, "-c", code, *args], check=True, capture_output=True,
                          text=True)  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=293)
    parser.add_argument("--period", default="1MS")
    parser.add_argument("--reuse", type=Path, help="folder of an earlier run: keep its cube")
    args = parser.parse_args()
    tmp = args.reuse or Path(tempfile.mkdtemp(prefix="ndvicube-compbench-"))
    paths = write_tile(tmp / "cogs")
    bbox = write_items(paths, args.days, tmp / "items.json")
    cube = tmp / "ndvi.zarr"
    build = {"wall": float("nan"), "rss_mb": float("nan")}
    if not (cube / ".zmetadata").is_file():
        build = build_from("http", tmp, bbox)
    for stale in (tmp / ".work", tmp / "composites.zarr", tmp / "composites"):
        shutil.rmtree(stale, ignore_errors=True)
    outputs = (str(cube), str(tmp / "composites.zarr"), str(tmp / "composites"), args.period)
    started = time.perf_counter()
    first = in_fresh_process(COMPOSITE, *outputs)
    again = in_fresh_process(COMPOSITE, *outputs)
    floor = in_fresh_process(FLOOR, str(cube))
    cogs = sorted((tmp / "composites").glob("*.tif"))
    total = time.perf_counter() - started
    print(f"cube: {args.days} days x 2000 x 2000 px; {len(cogs)} COGs; {total:.0f} s in all")
    print("\n| step | wall s | fraction of the cube build | x floor | peak RSS MB |")
    print("| --- | ---: | ---: | ---: | ---: |")
    print(f"| cube build (HTTP, remote reader) | {build['wall']:.1f} | 1 | - "
          f"| {build['rss_mb']:.0f} |")  # fmt: skip
    for name, row in (("composites, from scratch", first), ("composites, nothing changed", again)):
        print(
            f"| {name} ({row['periods']} periods computed) | {row['wall']:.1f} | "
            f"{row['wall'] / build['wall']:.3f} | {row['wall'] / floor['wall']:.2f} | "
            f"{row['rss_mb']:.0f} |"
        )
    print(f"| floor: read and decode the cube once | {floor['wall']:.1f} | "
          f"{floor['wall'] / build['wall']:.3f} | 1 | - |")  # fmt: skip


if __name__ == "__main__":
    main()

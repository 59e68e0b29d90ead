"""What publishing the cube job's store as its output costs (``ndvicube.cube.store.publish``).

One command, prints a table::

    python bench/bench_publish.py [--repeats 3]

The cube job keeps its store in ``results/{area}/.work/`` and publishes ``ndvi.zarr`` as hard
links of it (issue 15: Snakemake's ``update()`` backup copy wedged the working directory after a
kill). This times :func:`~ndvicube.cube.store.publish` on stores of the demo year's shape (one
variable, 200 x 200 px, 73 solar days) and of the memory benchmark's (2000 x 2000 px, 293 days),
chunked as the workflow does (8 days x 256 x 256 px). The floor is a walk that stats every file
of the store: publishing cannot visit fewer. The copy row is what a byte copy of the same store
(``shutil.copytree``, as ``update()``'s backup did) takes.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import xarray as xr

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ndvicube.cube.store import publish, remove

SHAPES = {"demo year": (73, 200, 200), "20 km x 20 km x 293 days": (293, 2000, 2000)}


def make_store(path: Path, days: int, ny: int, nx: int) -> None:
    """A cube store of that shape filled with random values (chunk files as large as real)."""
    rng = np.random.default_rng(0)
    data = xr.DataArray(rng.random((days, ny, nx), dtype=np.float32), dims=("time", "y", "x"))
    data.to_dataset(name="ndvi").chunk({"time": 8, "y": 256, "x": 256}).to_zarr(
        path, zarr_format=2, encoding={"ndvi": {"chunks": (8, 256, 256)}}
    )


def timed(action, repeats: int) -> float:
    """Median seconds of ``action()`` over ``repeats`` runs."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def measure(name: str, shape: tuple[int, int, int], tmp: Path, repeats: int) -> str:
    """One table row: a store of ``shape`` published, walked (the floor) and copied."""
    store, out, copy = tmp / "store.zarr", tmp / "out.zarr", tmp / "copy.zarr"
    make_store(store, *shape)
    files = [p for p in store.rglob("*") if p.is_file()]
    size = sum(p.stat().st_size for p in files) / 1e6
    floor = timed(lambda: [p.stat() for p in store.rglob("*")], repeats)
    linked = timed(lambda: publish(store, out), repeats)
    copied = timed(lambda: (remove(copy), shutil.copytree(store, copy)), 1)
    for path in (store, out, copy):
        remove(path)
    return (
        f"| {name} | {len(files)} | {size:.0f} | {linked:.3f} | {floor:.3f} | "
        f"{linked / floor:.1f} | {copied:.2f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print("| store | files | MB | publish s | floor (stat every file) s | publish / floor "
          "| byte copy s |")  # fmt: skip
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    with tempfile.TemporaryDirectory(dir=Path.cwd()) as tmp:
        for name, shape in SHAPES.items():
            print(measure(name, shape, Path(tmp), args.repeats))


if __name__ == "__main__":
    main()

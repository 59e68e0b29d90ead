"""What publishing the cube job's store costs, and how it compares with Icechunk.

One command, prints two tables::

    python bench/bench_publish.py [--repeats 3] [--compare-only] [--linkless DIR]

First table: :func:`~ndvicube.cube.store.publish`, the hard-linked copy of the job's store in
``results/{area}/.work/`` that the rule's output is (issue 15: Snakemake's ``update()`` backup
copy wedged the working directory after a kill), on stores of the demo year's shape (one
variable, 200 x 200 px, 73 solar days) and of the memory benchmark's (2000 x 2000 px, 293
days), chunked as the workflow does (8 days x 256 x 256 px). The floor is a walk that stats
every file of the store: publishing cannot visit fewer. The copy row is what a byte copy of the
same store (``shutil.copytree``, as ``update()``'s backup did) takes.

Second table (issue 27): two ways to let readers see the old cube or the new one, whole,
while a rerun updates it, on the demo year's shape. Four cubes are published in turn, each
update with new values and one more solar day at the start (as an earlier ``start`` gives:
every later day moves one step), and two are kept:

* versions (what ndvicube does, :mod:`ndvicube.cube.versions`): the job writes a Zarr store
  (``.partial``, renamed into place), publishes it as the rule's output and as a read-only
  version of hard links, points the ``ndvi.zarr`` link at it and deletes the oldest;
* Icechunk (a transactional Zarr repository, https://icechunk.io): the job writes the cube
  into a writable session and commits a snapshot; readers open a session of the branch;
  ``expire_snapshots`` + ``garbage_collect`` keep two.

For each: the write and the publish (commit) times (medians of the 3 updates), the bytes on
disk once 4 cubes were published, and what a handle opened before an update reads after it:
the old cube (``old``), the new one (``new``), or neither (``mixed``). Icechunk is not a
dependency of ndvicube; without it installed, its rows say so.

With ``--linkless DIR`` (a folder on a filesystem without links: vfat, exFAT; e.g. an exFAT
image mounted as tests/conftest.py's ``linkless_dir`` does) a third table instead: what a cube
job's publishing (the rule's output, a version, ``ndvi.zarr``) costs there, where everything is
copied (:mod:`ndvicube.cube.links`), against the same on this folder's filesystem, in seconds
and MB on disk, for the demo year's shape and a 73 days x 1000 x 1000 px cube.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import xarray as xr

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ndvicube.cube.store import publish, remove
from ndvicube.cube.versions import release

SHAPES = {"demo year": (73, 200, 200), "20 km x 20 km x 293 days": (293, 2000, 2000)}
CHUNKS = {"time": 8, "y": 256, "x": 256}
#: Cubes published in the comparison, and how many stay on disk.
CUBES, KEPT = 4, 2


def cube(days: int, ny: int, nx: int, seed: int = 0) -> xr.Dataset:
    """A cube of that shape filled with random values (chunk files as large as real)."""
    rng = np.random.default_rng(seed)
    data = rng.random((days, ny, nx), dtype=np.float32)
    time_axis = np.datetime64("2023-01-01") + np.arange(days) * np.timedelta64(5, "D")
    return xr.Dataset({"ndvi": (("time", "y", "x"), data)}, coords={"time": time_axis})


def make_store(path: Path, days: int, ny: int, nx: int) -> None:
    """A Zarr v2 cube store of that shape, chunked as the workflow's."""
    cube(days, ny, nx).chunk(CHUNKS).to_zarr(
        path, zarr_format=2, encoding={"ndvi": {"chunks": (8, 256, 256)}}
    )


def timed(action: Callable[[], object], repeats: int) -> float:
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


def disk_mb(path: Path) -> float:
    """MB the files under ``path`` take on disk (st_blocks, each hard-linked file once)."""
    stats = {(s.st_dev, s.st_ino): s for s in (p.lstat() for p in path.rglob("*"))}
    return sum(s.st_blocks * 512 for s in stats.values()) / 1e6


def seen(handle: xr.Dataset, old: xr.Dataset, new: xr.Dataset) -> str:
    """Which cube a handle's read gives: ``old``, ``new`` or ``mixed`` (neither, whole)."""
    values = handle["ndvi"].values
    for name, reference in (("old", old), ("new", new)):
        same_axis = np.array_equal(handle["time"].values, reference["time"].values)
        if same_axis and np.array_equal(values, reference["ndvi"].values):
            return name
    return "mixed"


def updates(shape: tuple[int, int, int]) -> list[xr.Dataset]:
    """The cubes published in turn: each has one more solar day, at the start, and new values."""
    days, ny, nx = shape
    return [cube(days + k, ny, nx, seed=k) for k in range(CUBES)]


def versions_row(shape: tuple[int, int, int], tmp: Path) -> str:
    """ndvicube's way: a Zarr store per update, published as a read-only version."""
    area = tmp / "versions/results/seed"
    link, out, work = area / "ndvi.zarr", area / "cube/workflow.zarr", area / ".work/ndvi.zarr"
    cubes, writes, publishes, handles = updates(shape), [], [], {}
    for k, dataset in enumerate(cubes):
        started = time.perf_counter()
        partial = work.with_name("ndvi.zarr.partial")
        dataset.chunk(CHUNKS).to_zarr(partial, mode="w", zarr_format=2, consolidated=True)
        remove(work)
        os.replace(partial, work)
        written = time.perf_counter()
        publish(work, out)
        release(work, link, keep=KEPT)
        writes.append(written - started)
        publishes.append(time.perf_counter() - written)
        if k == 0:  # opened on the first cube, read after the second is published
            handles["pinned version"] = xr.open_zarr(os.path.realpath(link), consolidated=True)
            handles["path through the link"] = xr.open_zarr(link, consolidated=True)
        if k == 1:
            handles = {n: seen(h, cubes[0], cubes[1]) for n, h in handles.items()}
    handle = ", ".join(f"{n}: {s}" for n, s in handles.items())
    return (
        f"| versions (hard links, symlink) | {statistics.median(writes[1:]):.3f} | "
        f"{statistics.median(publishes[1:]):.4f} | {disk_mb(area):.1f} | {handle} | yes |"
    )


def icechunk_row(shape: tuple[int, int, int], tmp: Path) -> str:
    """Icechunk's way: each update written into a session and committed as a snapshot."""
    try:
        import icechunk
    except ImportError:
        return "| Icechunk | not installed (pip install icechunk) | | | | |"
    repo = icechunk.Repository.create(icechunk.local_filesystem_storage(str(tmp / "repo")))
    cubes, writes, commits, snapshots, held = updates(shape), [], [], [], None
    for k, dataset in enumerate(cubes):
        session = repo.writable_session("main")
        started = time.perf_counter()
        # icechunk.xarray.to_icechunk (1.1) passes xarray an argument it no longer takes:
        # to_zarr on the session's store, under Dask's threads, is the same write.
        dataset.chunk(CHUNKS).to_zarr(session.store, mode="w", consolidated=False)
        written = time.perf_counter()
        session.commit(f"cube {k + 1}")
        writes.append(written - started)
        commits.append(time.perf_counter() - written)
        snapshots.append(dt.datetime.now(dt.UTC))
        if k == 0:
            held = xr.open_zarr(repo.readonly_session(branch="main").store, consolidated=False)
        if k == 1:
            held = seen(held, cubes[0], cubes[1])
    before_gc = disk_mb(tmp / "repo")
    started = time.perf_counter()
    repo.expire_snapshots(older_than=snapshots[-KEPT - 1] + dt.timedelta(milliseconds=1))
    repo.garbage_collect(delete_object_older_than=dt.datetime.now(dt.UTC))
    pruned = time.perf_counter() - started
    return (
        f"| Icechunk {icechunk.__version__} (commit, snapshots) | "
        f"{statistics.median(writes[1:]):.3f} | {statistics.median(commits[1:]):.4f} | "
        f"{disk_mb(tmp / 'repo'):.1f} ({before_gc:.1f} before expiry + GC, {pruned:.2f} s) | "
        f"session opened on the branch: {held} | no |"
    )


def compare(shape: tuple[int, int, int], tmp: Path) -> None:
    """The second table: versions against Icechunk on one shape."""
    one_cube = disk_mb_of(cube(*shape), tmp / "one.zarr")
    print(f"\n{CUBES} cubes of {shape[0]}+ days x {shape[1]} x {shape[2]} px published in turn, "
          f"{KEPT} kept; one cube is {one_cube:.1f} MB on disk\n")  # fmt: skip
    print("| approach | write s | publish s | disk MB, 4 published, 2 kept | a handle opened "
          "before an update reads after it | plain Zarr path (GDAL, xr.open_zarr) |")  # fmt: skip
    print("| --- | ---: | ---: | ---: | --- | --- |")
    print(versions_row(shape, tmp))
    print(icechunk_row(shape, tmp))


def disk_mb_of(dataset: xr.Dataset, path: Path) -> float:
    """MB one cube takes on disk as the workflow writes it."""
    dataset.chunk(CHUNKS).to_zarr(path, mode="w", zarr_format=2, consolidated=True)
    size = disk_mb(path)
    remove(path)
    return size


#: Shapes of the third table (the large one of the first table would not fit a small image).
LINKLESS_SHAPES = {"demo year": (73, 200, 200), "73 days x 1000 x 1000 px": (73, 1000, 1000)}


def publishing_row(name: str, shape: tuple[int, int, int], where: Path, label: str) -> str:
    """One row: a finished store in ``where`` published as a cube job does, and its cost."""
    from ndvicube.cube.links import copies_made, copies_reported

    area = where / "results/seed"
    store = area / ".work/ndvi.zarr"
    make_store(store, *shape)
    started = time.perf_counter()
    with copies_reported(area):
        publish(store, area / "cube/workflow.zarr")
        release(store, area / "ndvi.zarr")
        copies = copies_made().files
    seconds = time.perf_counter() - started
    store_mb, total_mb = disk_mb(store), disk_mb(area)
    remove(area)
    return (
        f"| {name} | {label} | {seconds:.3f} | {copies} | {store_mb:.0f} | "
        f"{total_mb - store_mb:.0f} |"
    )


def linkless(folder: Path, tmp: Path) -> None:
    """The third table: publishing on a filesystem without links and on this one."""
    print("| store | filesystem | publish s (output, version, ndvi.zarr) | files copied | "
          "store MB | MB added by publishing |")  # fmt: skip
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for name, shape in LINKLESS_SHAPES.items():
        print(publishing_row(name, shape, tmp, "with links (this folder's)"))
        print(publishing_row(name, shape, folder, f"without links ({folder})"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--compare-only", action="store_true", help="only the versions / Icechunk table"
    )
    parser.add_argument(
        "--linkless", type=Path, help="a folder on a filesystem without links: only that table"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=Path.cwd()) as tmp:
        if args.linkless:
            linkless(args.linkless, Path(tmp))
            return
        if not args.compare_only:
            print("| store | files | MB | publish s | floor (stat every file) s | publish / "
                  "floor | byte copy s |")  # fmt: skip
            print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
            for name, shape in SHAPES.items():
                print(measure(name, shape, Path(tmp), args.repeats))
        compare(SHAPES["demo year"], Path(tmp))


if __name__ == "__main__":
    main()

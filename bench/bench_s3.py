"""The cube written straight to S3 (``cube_store``) against the same build on disk.

One command, prints one table::

    python bench/bench_s3.py [--box-km 20] [--days 26] [--blocksize 1024] [--cache DIR]

The catalog is bench_engine's (synthetic, cached; its COGs served by the loopback Range server);
the bucket is moto's server on loopback (``ndvicube.testing.s3server``), so the S3 numbers are
those of a Python S3 server on the same two cores, not of AWS. Each build runs in a fresh
process (``--trial``):

* ``disk``: ``build_cube(..., out=...zarr)``, the cube on the local disk, as today;
* ``s3``: ``build_cube(..., cube_store="s3://bench/run")``: the block tasks PUT their chunks
  into ``bench/run/box/cube/v1.zarr`` through zarr's ``ObjectStore`` over obstore, then the
  pointer; the only local file is the manifest;
* ``s3, counted``: the same through a counting proxy (``ndvicube.testing.faultproxy``): PUT
  requests and bytes (slower: each request crosses one more Python server);
* ``staged``: what a user would do instead: the disk build, then its files uploaded (obstore,
  64 in flight, as ``aws s3 sync`` would) - the whole store on local disk first;
* ``floor``: the upload alone, 64 PUTs in flight: the least time the bucket takes for these
  bytes from one process.

Peak local disk is sampled every 0.1 s over the build's working folder (store, manifest and
its TMPDIR).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

BUCKET = "bench"
STORE = f"s3://{BUCKET}/run"
AREA = "box"


def trial(kind: str, items: Path, out: Path, bbox: tuple[float, ...]) -> dict:
    """One build (in this fresh process): its wall time from after ``import ndvicube.jobs``."""
    from ndvicube.jobs import build_cube

    started = time.perf_counter()
    from ndvicube.compute import Compute
    from ndvicube.cube.spec import Chunking, CloudMask, CubeSpec

    spec = CubeSpec(
        bbox, "EPSG:32644", resolution=10, cloud_mask=CloudMask((3, 8, 9, 10)),
        cube=Chunking(time_chunk=8, spatial_chunk=256),
    )  # fmt: skip
    store = None if kind == "disk" else kind  # an s3:// URL
    build_cube(spec, items_path=items, out=out, compute=Compute(threads=2), area=AREA,
               cube_store=store)  # fmt: skip
    return {"wall": time.perf_counter() - started}


def folder_bytes(folder: Path) -> int:
    """Bytes of the files under ``folder`` now (files vanishing meanwhile are skipped)."""
    total = 0
    for root, _, files in os.walk(folder):
        for name in files:
            with contextlib.suppress(FileNotFoundError):  # a file gone meanwhile
                total += os.lstat(os.path.join(root, name)).st_size
    return total


def run(kind: str, items: Path, folder: Path, bbox, env: dict[str, str]) -> dict:
    """``trial`` in a fresh process, ``folder`` its working folder; with its peak disk use."""
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "tmp").mkdir(parents=True)
    out = folder / ("cube.zarr" if kind == "disk" else "workflow.json")  # kind: or a URL
    cmd = [sys.executable, __file__, "--trial", kind, str(items), str(out), *map(str, bbox)]
    peak, done = [0], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], folder_bytes(folder))
            time.sleep(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    tmp = {"TMPDIR": str(folder / "tmp")}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env | tmp)
    done.set()
    sampler.join()
    if proc.returncode:
        sys.stderr.write(proc.stderr[-4000:])
        raise SystemExit(f"{kind} trial failed")
    return json.loads(proc.stdout.strip().splitlines()[-1]) | {"peak_disk": peak[0], "out": out}


def store_files(store: Path) -> tuple[int, int, int, int]:
    """(chunk files, their bytes, all files, all bytes) of a store on disk."""
    files = [p for p in store.rglob("*") if p.is_file()]
    chunks = [p for p in files if not p.name.startswith(".")]
    return (len(chunks), sum(p.stat().st_size for p in chunks), len(files),
            sum(p.stat().st_size for p in files))  # fmt: skip


def upload(store: Path, url: str, prefix: str, files: list[Path] | None = None) -> float:
    """Seconds to PUT ``files`` of ``store`` (default: every file) under ``prefix``, 64 in
    flight (obstore); bench_icechunk's versions row uploads the same way."""
    import asyncio

    import obstore
    from obstore.store import S3Store

    from ndvicube.testing.s3server import ACCESS_KEY, REGION, SECRET_KEY

    s3 = S3Store(BUCKET, endpoint=url, access_key_id=ACCESS_KEY, secret_access_key=SECRET_KEY,
                 region=REGION, client_options={"allow_http": True})  # fmt: skip
    if files is None:
        files = [p for p in store.rglob("*") if p.is_file()]

    async def every() -> None:
        limit = asyncio.Semaphore(64)

        async def one(path: Path) -> None:
            async with limit:
                key = f"{prefix}/{path.relative_to(store).as_posix()}"
                await obstore.put_async(s3, key, path.read_bytes())

        await asyncio.gather(*(one(p) for p in files))

    started = time.perf_counter()
    asyncio.run(every())
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trial", nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--box-km", type=float, default=20.0)
    parser.add_argument("--days", type=int, default=26)
    parser.add_argument("--blocksize", type=int, default=1024, choices=[256, 512, 1024])
    parser.add_argument("--cache", type=Path, help="catalog folder (kept between runs)")
    args = parser.parse_args()
    if args.trial:
        kind, items, out, *bbox = args.trial
        print(json.dumps(trial(kind, Path(items), Path(out), tuple(map(float, bbox)))))
        return

    from bench_engine import CACHE_VERSION, make_catalog, served

    from ndvicube.testing.faultproxy import FaultProxy
    from ndvicube.testing.faults import Faults
    from ndvicube.testing.rangeserver import RangeHTTPServer
    from ndvicube.testing.s3server import ACCESS_KEY, REGION, SECRET_KEY, S3Server

    cache = args.cache or Path(tempfile.gettempdir()) / f"ndvicube-bench-engine-{CACHE_VERSION}"
    cache = cache.resolve()
    cache.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="ndvicube-bench-s3-"))
    catalog = make_catalog(cache, args.box_km, args.blocksize, args.days)
    try:
        with RangeHTTPServer(cache, latency_s=0) as cogs, S3Server() as s3:
            s3.client().create_bucket(
                Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION}
            )
            items = served(catalog, cogs.url)
            env = dict(os.environ) | {
                "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
                "AWS_REGION": REGION, "AWS_ENDPOINT_URL": s3.url,
                "PYTHONPATH": str(HERE.parent),
            }  # fmt: skip
            disk = run("disk", items, work / "disk", catalog.bbox, env)
            direct = run(STORE, items, work / "s3", catalog.bbox, env)
            with FaultProxy(s3.url, Faults()) as proxy:  # another prefix: a build from scratch
                counted = run(f"{STORE}-counted", items, work / "s3c", catalog.bbox,
                              env | {"AWS_ENDPOINT_URL": proxy.url})  # fmt: skip
                puts = [r for r in proxy.records if r.method == "PUT"]
                put_bytes = sum(len(r.body) for r in puts)
                other = len(proxy.records) - len(puts)
            floor = upload(disk["out"], s3.url, "staged/v1.zarr")
    finally:
        store = work / "disk" / "cube.zarr"
        chunks, chunk_bytes, files, all_bytes = store_files(store) if store.exists() else (0,) * 4
        shutil.rmtree(work, ignore_errors=True)
    h, w = catalog.shape
    print(
        f"\n## The cube to S3: {args.box_km:g} km box, {catalog.days} days x {h} x {w} px, "
        f"chunks (8, 256, 256); COGs on the loopback Range server, bucket on moto (loopback)\n"
    )
    print(f"store on disk: {files} files, {all_bytes / 1e6:.1f} MB "
          f"({chunks} chunk files, {chunk_bytes / 1e6:.1f} MB)\n")  # fmt: skip
    print("| build | s | x disk | PUT requests | MB PUT | other requests | peak local disk MB |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    mb = 1e6

    def row(name, seconds, put="-", put_mb="-", others="-", peak=None) -> None:
        ratio = seconds / disk["wall"]
        peak_text = "-" if peak is None else f"{peak / mb:.4f}"
        print(f"| {name} | {seconds:.1f} | {ratio:.2f} | {put} | {put_mb} | {others} "
              f"| {peak_text} |")  # fmt: skip

    row("disk (today)", disk["wall"], peak=disk["peak_disk"])
    row("s3 (cube_store)", direct["wall"], peak=direct["peak_disk"])
    row("s3, through the counting proxy", counted["wall"], len(puts), f"{put_bytes / mb:.1f}",
        other, counted["peak_disk"])  # fmt: skip
    row("staged: disk, then upload (64 in flight)", disk["wall"] + floor, files,
        f"{all_bytes / mb:.1f}", "-", disk["peak_disk"])  # fmt: skip
    row("floor: the upload alone", floor, files, f"{all_bytes / mb:.1f}")
    print(f"\ntarget: s3 <= 1.3 x disk; measured {direct['wall'] / disk['wall']:.2f} x")


if __name__ == "__main__":
    main()

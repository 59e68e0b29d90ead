"""Publishing a cube on S3: ndvicube's versions and pointer against an Icechunk commit.

One command, prints one table::

    pip install icechunk   # (the bench extra; not a dependency of ndvicube)
    python bench/bench_icechunk.py [--box-km 5] [--days 16] [--cache DIR]

A cube is built once on disk (bench_engine's catalog, ``build_cube``), then published three
times into moto's S3 server on loopback, each through the counting proxy
(``ndvicube.testing.faultproxy``: requests by method, bytes PUT):

* ``versions + pointer`` (ndvicube's ``cube_store``): every file of the store PUT under
  ``v1.zarr/`` (64 in flight, obstore), ``.zmetadata`` last, then ``ndvi.json``;
* the same written by ``xarray.to_zarr`` into zarr's ``ObjectStore`` (chunks decoded and
  encoded again, as Icechunk's row must: its format is Zarr 3);
* ``icechunk``: ``xarray.open_zarr(store).to_zarr(session.store)`` on a writable session of an
  Icechunk repository in the same bucket, then ``session.commit`` (Icechunk writes chunks,
  manifests, a snapshot, then moves the branch ref with a conditional PUT);
* ``icechunk, rerun``: a second commit adding nothing (what a no-op rerun would cost).

It also says whether the server honours conditional writes (``If-None-Match: *`` on a key that
exists must answer 412), which Icechunk's commit needs for safety against concurrent writers.
"""

from __future__ import annotations

import argparse
import collections
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

BUCKET = "bench"


def counted(proxy) -> tuple[dict[str, int], float]:
    """Requests by method and MB PUT, since the proxy's log was cleared."""
    methods = collections.Counter(r.method for r in proxy.records)
    put_mb = sum(len(r.body) for r in proxy.records if r.method == "PUT") / 1e6
    return dict(methods), put_mb


def publish_versions(store: Path, endpoint: str) -> float:
    """ndvicube's layout: the store's files under ``v1.zarr/`` (metadata last), the pointer."""
    import obstore
    from bench_s3 import upload
    from obstore.store import S3Store

    from ndvicube.testing.s3server import ACCESS_KEY, REGION, SECRET_KEY

    s3 = S3Store(BUCKET, endpoint=endpoint, access_key_id=ACCESS_KEY, secret_access_key=SECRET_KEY,
                 region=REGION, client_options={"allow_http": True})  # fmt: skip
    files = [p for p in store.rglob("*") if p.is_file() and p.name != ".zmetadata"]
    started = time.perf_counter()
    upload(store, endpoint, "versions/box/cube/v1.zarr", files)
    obstore.put(s3, "versions/box/cube/v1.zarr/.zmetadata", (store / ".zmetadata").read_bytes())
    obstore.put(s3, "versions/box/ndvi.json", b'{"version": 1}')
    return time.perf_counter() - started


def publish_versions_reencoded(store: Path, endpoint: str) -> float:
    """ndvicube's layout written as Icechunk's row writes: ``xarray.to_zarr`` (chunks decoded
    and encoded again) into zarr's ``ObjectStore``, consolidated, then the pointer."""
    import obstore
    import xarray as xr
    import zarr
    from obstore.store import S3Store
    from zarr.storage import ObjectStore

    from ndvicube.testing.s3server import ACCESS_KEY, REGION, SECRET_KEY

    options = dict(endpoint=endpoint, access_key_id=ACCESS_KEY, secret_access_key=SECRET_KEY,
                   region=REGION, client_options={"allow_http": True})  # fmt: skip
    started = time.perf_counter()
    target = ObjectStore(S3Store(BUCKET, prefix="reencoded/box/cube/v1.zarr", **options))
    cube = xr.open_zarr(store, consolidated=True)
    cube.to_zarr(target, zarr_format=2, consolidated=False, mode="w-")
    zarr.consolidate_metadata(target)
    obstore.put(S3Store(BUCKET, **options), "reencoded/box/ndvi.json", b'{"version": 1}')
    return time.perf_counter() - started


def rerun_check(endpoint: str) -> float:
    """What ndvicube's no-op rerun asks the bucket: the versions listed, the newest's metadata
    (HEAD, then the cube opened: ``.zmetadata`` and its coordinates)."""
    import os

    from ndvicube.cube import objectstore
    from ndvicube.cube.store import open_cube
    from ndvicube.testing.s3server import ACCESS_KEY, REGION, SECRET_KEY

    os.environ |= {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": ACCESS_KEY,
                   "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "AWS_REGION": REGION}  # fmt: skip
    objectstore.reset()
    started = time.perf_counter()
    newest = objectstore.newest_finished(f"s3://{BUCKET}/versions/box")
    open_cube(newest).attrs.get("ndvicube:days")
    return time.perf_counter() - started


def publish_icechunk(store: Path, endpoint: str, *, again: bool = False) -> float:
    """The store written into an Icechunk repository's session and committed."""
    import icechunk
    import xarray as xr

    from ndvicube.testing.s3server import ACCESS_KEY, REGION, SECRET_KEY

    storage = icechunk.s3_storage(
        bucket=BUCKET, prefix="icechunk/box", endpoint_url=endpoint, allow_http=True,
        region=REGION, access_key_id=ACCESS_KEY, secret_access_key=SECRET_KEY,
        force_path_style=True,
    )  # fmt: skip
    started = time.perf_counter()
    if again:  # a no-op rerun: open the branch's snapshot and read the cube's metadata
        session = icechunk.Repository.open(storage).readonly_session(branch="main")
        xr.open_zarr(session.store, consolidated=False).attrs.get("ndvicube:days")
        return time.perf_counter() - started
    session = icechunk.Repository.create(storage).writable_session("main")
    cube = xr.open_zarr(store, consolidated=True)
    for variable in cube.variables.values():
        variable.encoding = {k: v for k, v in variable.encoding.items() if k == "chunks"}
    cube.to_zarr(session.store, zarr_format=3, consolidated=False, mode="w")
    session.commit("build")
    return time.perf_counter() - started


def conditional_writes(endpoint: str) -> str:
    """What the server answers to ``If-None-Match: *`` on an existing key."""
    import boto3
    from botocore.exceptions import ClientError

    from ndvicube.testing.s3server import ACCESS_KEY, REGION, SECRET_KEY

    client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=ACCESS_KEY,
                          aws_secret_access_key=SECRET_KEY, region_name=REGION)  # fmt: skip
    client.put_object(Bucket=BUCKET, Key="probe", Body=b"1")
    try:
        client.put_object(Bucket=BUCKET, Key="probe", Body=b"2", IfNoneMatch="*")
    except ClientError as error:
        return f"yes ({error.response['Error']['Code']})"
    return "no (the second PUT replaced the object)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--box-km", type=float, default=5.0)
    parser.add_argument("--days", type=int, default=16)
    parser.add_argument("--cache", type=Path, help="catalog folder (kept between runs)")
    args = parser.parse_args()
    try:
        import icechunk
    except ImportError:
        raise SystemExit("pip install icechunk (the bench extra) to run this comparison") from None

    from bench_engine import CACHE_VERSION, make_catalog, served

    from ndvicube.compute import Compute
    from ndvicube.cube.spec import Chunking, CloudMask, CubeSpec
    from ndvicube.jobs import build_cube
    from ndvicube.testing.faultproxy import FaultProxy
    from ndvicube.testing.faults import Faults
    from ndvicube.testing.rangeserver import RangeHTTPServer
    from ndvicube.testing.s3server import REGION, S3Server

    cache = args.cache or Path(tempfile.gettempdir()) / f"ndvicube-bench-engine-{CACHE_VERSION}"
    cache.mkdir(parents=True, exist_ok=True)
    catalog = make_catalog(cache.resolve(), args.box_km, 1024, args.days)
    work = Path(tempfile.mkdtemp(prefix="ndvicube-bench-icechunk-"))
    rows = {}
    try:
        with RangeHTTPServer(cache.resolve(), latency_s=0) as cogs, S3Server() as s3:
            spec = CubeSpec(catalog.bbox, "EPSG:32644", resolution=10,
                            cloud_mask=CloudMask((3, 8, 9, 10)),
                            cube=Chunking(time_chunk=8, spatial_chunk=256))  # fmt: skip
            store = build_cube(spec, items_path=served(catalog, cogs.url), out=work / "c.zarr",
                               compute=Compute(threads=2))  # fmt: skip
            s3.client().create_bucket(
                Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION}
            )
            conditional = conditional_writes(s3.url)
            with FaultProxy(s3.url, Faults()) as proxy:
                for name, publish in (
                    ("versions + pointer (ndvicube)", lambda: publish_versions(store, proxy.url)),
                    ("versions + pointer, re-encoded by xarray (as icechunk's row)",
                     lambda: publish_versions_reencoded(store, proxy.url)),
                    ("versions, no-op rerun check", lambda: rerun_check(proxy.url)),
                    (f"icechunk {icechunk.__version__} commit",
                     lambda: publish_icechunk(store, proxy.url)),
                    ("icechunk, no-op rerun check",
                     lambda: publish_icechunk(store, proxy.url, again=True)),
                ):  # fmt: skip
                    proxy.records.clear()
                    seconds = publish()
                    rows[name] = (seconds, *counted(proxy))
            files = sum(1 for p in store.rglob("*") if p.is_file())
            size = sum(p.stat().st_size for p in store.rglob("*") if p.is_file()) / 1e6
    finally:
        shutil.rmtree(work, ignore_errors=True)
    h, w = catalog.shape
    print(f"\n## Publishing a {args.box_km:g} km x {catalog.days} day cube ({h} x {w} px, "
          f"{files} files, {size:.1f} MB) into moto's S3 on loopback\n")  # fmt: skip
    print(f"moto honours conditional writes (If-None-Match: *): {conditional}\n")
    print("| publish | s | PUT | GET | HEAD | LIST/other | MB PUT |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, (seconds, methods, put_mb) in rows.items():
        other = sum(v for k, v in methods.items() if k not in ("PUT", "GET", "HEAD"))
        print(f"| {name} | {seconds:.2f} | {methods.get('PUT', 0)} | {methods.get('GET', 0)} "
              f"| {methods.get('HEAD', 0)} | {other} | {put_mb:.1f} |")  # fmt: skip


if __name__ == "__main__":
    main()

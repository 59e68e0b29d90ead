"""The cube written straight to S3 (``cube_store``), against a real S3-compatible server on
loopback (moto in server mode), its requests counted by a proxy in front of it: the same values
as on disk, versions published by a pointer written last, reruns that copy in the bucket, a
kill mid-write, refused keys, and no credential anywhere."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest
import xarray as xr

from ndvicube.cube import objectstore
from ndvicube.cube.store import open_cube
from ndvicube.errors import ConfigError
from ndvicube.jobs import build_cube
from ndvicube.testing.faultproxy import FaultProxy, Refusal
from ndvicube.testing.faults import Faults
from ndvicube.testing.s3server import ACCESS_KEY, REGION, SECRET_KEY, S3Server
from tests.fault_helpers import CUBE, items_subset

ROOT = Path(__file__).resolve().parent.parent

BUCKET = "ndvicube-results"
STORE = f"s3://{BUCKET}/runs/demo"
AREA = f"{STORE}/demo"
AWS_VARIABLES = (
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION",
    "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_S3_ENDPOINT", "AWS_NO_SIGN_REQUEST",
    "AWS_PROFILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE", "AWS_SKIP_SIGNATURE",
)  # fmt: skip


@pytest.fixture(scope="module")
def server():
    with S3Server() as s3:
        s3.client().create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION}
        )
        yield s3


@pytest.fixture
def s3(server, monkeypatch, tmp_path):
    """A counting proxy in front of the server; the environment (only) names both, the bucket
    emptied and this process's stores forgotten."""
    for name in AWS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    client = server.client()
    for batch in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        for obj in batch.get("Contents", []):
            client.delete_object(Bucket=BUCKET, Key=obj["Key"])
    with FaultProxy(server.url, Faults()) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        monkeypatch.setenv("AWS_REGION", REGION)
        objectstore.reset()
        yield proxy
    objectstore.reset()


@pytest.fixture(scope="module")
def items(catalog, tmp_path_factory):
    """The fault tests' 10 solar days, and the first 8 of them (one whole time chunk)."""
    folder = tmp_path_factory.mktemp("s3cube")
    every = items_subset(catalog, folder / "items.json")
    doc = json.loads(every.read_text())
    days = sorted({f["properties"]["datetime"][:10] for f in doc["features"]})
    assert len(days) == 10
    doc["features"] = [f for f in doc["features"] if f["properties"]["datetime"][:10] in days[:8]]
    (folder / "first8.json").write_text(json.dumps(doc))
    return {10: every, 8: folder / "first8.json"}


@pytest.fixture(scope="module")
def on_disk(items, tmp_path_factory):
    out = tmp_path_factory.mktemp("disk") / "ndvi.zarr"
    return open_cube(build_cube(CUBE, items_path=items[10], out=out)).load()


def requests(proxy: FaultProxy, method: str | None = None) -> list:
    return [r for r in proxy.records if method is None or r.method == method]


def chunk_key(record) -> bool:
    """A request for a chunk object (``.../ndvi/0.0.0``), not metadata (``.zarray``...)."""
    return "/ndvi/" in record.path and record.path.rsplit("/", 1)[-1][0] != "."


def test_cube_built_into_s3_equals_the_cube_on_disk(s3, items, on_disk, tmp_path, caplog):
    from obstore.store import S3Store
    from zarr.storage import ObjectStore

    caplog.set_level("DEBUG")
    manifest = build_cube(
        CUBE, items_path=items[10], out=tmp_path / "workflow.json", area="demo", cube_store=STORE
    )
    recorded = json.loads(manifest.read_text())
    assert recorded["store"] == f"{AREA}/cube/v1.zarr" and recorded["version"] == 1
    for opened in (open_cube(manifest), open_cube(AREA), open_cube(recorded["store"])):
        xr.testing.assert_identical(opened.load(), on_disk)
    # A pinned version opens with plain xarray + zarr + obstore (no ndvicube).
    plain = S3Store(
        BUCKET, prefix="runs/demo/demo/cube/v1.zarr", endpoint=os.environ["AWS_ENDPOINT_URL"],
        client_options={"allow_http": True},
    )  # fmt: skip
    values = xr.open_zarr(ObjectStore(plain, read_only=True), consolidated=True)["ndvi"].values
    np.testing.assert_array_equal(values, on_disk["ndvi"].values)
    # The block tasks PUT the chunks into the version; the pointer is the last PUT.
    puts = requests(s3, "PUT")
    assert [r for r in puts if chunk_key(r)]
    assert all("/cube/v1.zarr/" in r.path for r in puts if chunk_key(r))
    assert puts[-1].path == f"/{BUCKET}/runs/demo/demo/ndvi.json"
    assert not list(tmp_path.glob("**/*.zarr*"))  # nothing of the cube on the local disk
    # No credential in the manifest, the logs, or any object written (provenance included).
    written = b"".join(r.body for r in puts) + manifest.read_bytes() + caplog.text.encode()
    assert SECRET_KEY.encode() not in written and ACCESS_KEY.encode() not in written


def build_through_faults(server, items: Path, out: Path) -> dict[str, int]:
    """A build meeting 503/500 answers and dropped connections; the faults injected."""
    faults = Faults(error_rate=0.06, error_statuses=(503, 500), drop_rate=0.04, seed=3)
    endpoint = os.environ["AWS_ENDPOINT_URL"]
    with FaultProxy(server.url, faults) as flaky:
        os.environ["AWS_ENDPOINT_URL"] = flaky.url
        objectstore.reset()
        build_cube(CUBE, items_path=items, out=out, area="demo", cube_store=STORE)
        faulted = flaky.faulted()
    os.environ["AWS_ENDPOINT_URL"] = endpoint
    objectstore.reset()
    return faulted


def test_reruns_copy_in_the_bucket_readers_see_whole_versions_kills_lose_nothing(
    server, s3, items, on_disk, tmp_path
):
    # The first build meets server errors and dropped connections: retried, the cube whole.
    out = tmp_path / "workflow.json"
    faulted = build_through_faults(server, items[8], out)
    assert faulted.get("error", 0) >= 3 and faulted.get("drop", 0) >= 2
    xr.testing.assert_equal(open_cube(out).load(), on_disk.isel(time=slice(0, 8)))
    seen, stop, failures = [], threading.Event(), []

    def read_loop() -> None:  # a reader opening the published cube again and again
        while not stop.is_set():
            try:
                cube = open_cube(AREA)
                n = cube.sizes["time"]
                expected = on_disk["ndvi"].isel(time=slice(0, n)).values
                np.testing.assert_array_equal(cube["ndvi"].values, expected)
                seen.append(n)
            except Exception as error:
                failures.append(error)
                return

    reader = threading.Thread(target=read_loop)
    reader.start()
    s3.records.clear()
    try:
        build_cube(CUBE, items_path=items[10], out=out, area="demo", cube_store=STORE)
    finally:
        stop.set()
        reader.join()
    assert not failures, failures
    assert set(seen) <= {8, 10} and 8 in seen
    assert open_cube(AREA).sizes["time"] == 10
    # The 8 old days (time chunk 0) were copied inside the bucket: CopyObject PUTs (no body)
    # into v2, none of v1's chunks read through the tasks; only the new days' chunk written.
    copies = [r for r in requests(s3, "PUT") if chunk_key(r) and r.body == b""]
    assert {r.path.rsplit("/", 1)[-1] for r in copies} == {"0.0.0"}
    assert all("/cube/v2.zarr/" in r.path for r in copies)
    v1_reads = [r for r in requests(s3, "GET") if chunk_key(r) and "/v1.zarr/" in r.path]
    assert len(v1_reads) <= seen.count(8)  # the reader's own, one per read of v1
    # A rerun with nothing new: no write, no chunk read; versions beyond the kept one pruned.
    s3.records.clear()
    build_cube(CUBE, items_path=items[10], out=out, area="demo", cube_store=STORE, versions_kept=1)
    methods = {r.method for r in s3.records if "/v1.zarr" not in r.path and "delete" not in r.path}
    assert methods <= {"GET", "HEAD"}
    assert not [r for r in s3.records if chunk_key(r)]
    assert sorted(objectstore.versions(AREA)) == [2]
    # A rerun (back to 8 days) killed while it writes: v3 unfinished, v2 still what readers get.
    script = (
        "import sys; from ndvicube.jobs import build_cube; from tests.fault_helpers import CUBE\n"
        "build_cube(CUBE, items_path=sys.argv[1], out=sys.argv[2], area='demo', "
        f"cube_store={STORE!r})"
    )
    killed = subprocess.run(
        [sys.executable, "-c", script, str(items[8]), str(out)],
        env=os.environ | {"NDVICUBE_CRASH_AT": "consolidate", "PYTHONPATH": str(ROOT)},
        start_new_session=True, capture_output=True, timeout=120,
    )  # fmt: skip
    assert killed.returncode == -9, killed.stderr.decode()[-2000:]
    assert sorted(objectstore.versions(AREA)) == [2, 3]
    assert not objectstore.is_finished(f"{AREA}/cube/v3.zarr")
    xr.testing.assert_identical(open_cube(AREA).load(), on_disk)
    assert json.loads(out.read_text())["version"] == 2
    # The rerun completes; the unfinished v3 is pruned.
    build_cube(CUBE, items_path=items[8], out=out, area="demo", cube_store=STORE)
    xr.testing.assert_equal(open_cube(out).load(), on_disk.isel(time=slice(0, 8)))
    assert sorted(objectstore.versions(AREA)) == [2, 4]


def test_a_local_cluster_writes_the_chunks_from_its_workers(s3, catalog, cogs, on_disk, tmp_path):
    # The workers (a process of a LocalCluster) get URLs only: COGs over HTTP, the version in
    # the bucket; they write every chunk there and the job's folder holds only the manifest.
    from ndvicube.compute import Compute

    items = items_subset(catalog, tmp_path / "items.json", base_url=cogs.url)
    results = tmp_path / "results"
    out = build_cube(
        CUBE, items_path=items, out=results / "workflow.json", area="demo", cube_store=STORE,
        compute=Compute(scheduler="local", threads=1),
    )  # fmt: skip
    xr.testing.assert_equal(open_cube(out).load(), on_disk)
    assert [r for r in requests(s3, "PUT") if chunk_key(r)]
    assert [p.name for p in results.rglob("*")] == ["workflow.json"]


def test_a_refused_key_fails_at_once_naming_the_cause(server, s3, items, tmp_path):
    denied = Refusal(
        "", status=403,
        body=b"<Error><Code>InvalidAccessKeyId</Code><Message>The AWS Access Key Id you "
        b"provided does not exist in our records.</Message></Error>",
    )  # fmt: skip
    with FaultProxy(server.url, Faults(), refusal=denied) as refusing:
        os.environ["AWS_ENDPOINT_URL"] = refusing.url
        objectstore.reset()
        with pytest.raises(objectstore.ObjectStoreAccessError) as raised:
            build_cube(
                CUBE, items_path=items[10], out=tmp_path / "m.json", area="demo",
                cube_store=STORE,
            )  # fmt: skip
        asked = len(refusing.records)
    message = str(raised.value)
    assert "InvalidAccessKeyId" in message and f"{AREA}" in message
    assert SECRET_KEY not in message and ACCESS_KEY not in message
    assert asked == 1  # not retried
    assert not (tmp_path / "m.json").exists()


def test_expired_credentials_are_read_again_and_the_request_sent_again(server, s3, caplog):
    # A finished version (its consolidated metadata) and a store that refuses the pointer's
    # first PUT as S3 does a session token past its expiry: the stores are made again from the
    # environment and the PUT sent again.
    key = "runs/demo/demo/cube/v1.zarr/.zmetadata"
    server.client().put_object(Bucket=BUCKET, Key=key, Body=b"{}")
    expired = Refusal(
        '"version"', status=400, times=1,
        body=b"<Error><Code>ExpiredToken</Code><Message>The provided token has expired."
        b"</Message></Error>",
    )  # fmt: skip
    with FaultProxy(server.url, Faults(), refusal=expired) as proxy:
        os.environ["AWS_ENDPOINT_URL"] = proxy.url
        objectstore.reset()
        pointer = objectstore.release(AREA, keep=2)
        puts = [r.fault for r in proxy.records if r.method == "PUT"]
    assert pointer["store"] == f"{AREA}/cube/v1.zarr" and puts == ["refused", None]
    assert "credentials expired: reading them again" in caplog.text


def test_bad_cube_store_url_is_a_config_error(catalog):
    from ndvicube.config import validate_config
    from tests.workflow_helpers import demo_config

    config = demo_config(str(catalog.items), [{"id": "p", "lon": 82.605, "lat": 27.16}])
    for bad in ("results/cube", "s3://", "s3://Bad_Bucket/x", "s3://bucket//x", "gs://b/x"):
        with pytest.raises(ConfigError, match=r"cube_store: .* is not an object-store URL"):
            validate_config(config | {"cube_store": bad})
    settings = validate_config(config | {"cube_store": "s3://my-bucket/a/b/"})
    assert settings.cube_store == "s3://my-bucket/a/b"
    assert validate_config(config).cube_store is None
    config["areas"]["seed"]["tiles"] = [1, 2]
    config["cube"] = {"spatial_chunk": 64}
    assert validate_config(config | {"cube_store": "s3://my-bucket"}).cube_store  # in place


def test_tiles_write_in_place_and_join_without_a_chunk_read_or_copied(
    server, s3, items, on_disk, catalog, cogs, tmp_path
):
    # Two tile jobs write their chunks at their places in one pending version they both name;
    # the join writes the area's metadata and the pointer: no chunk key read, copied or listed.
    from ndvicube.cube.spec import Chunking
    from ndvicube.cube.tiles import all_tiles
    from ndvicube.demo import cube_spec
    from ndvicube.jobs import join_tiles

    chunking = Chunking(spatial_chunk=64)
    whole = build_cube(cube_spec(cube=chunking), items_path=items[8], out=tmp_path / "whole.zarr")
    manifests = [
        build_cube(
            cube_spec(cube=chunking, tile=tile),
            items_path=items[8],
            area="demo",
            out=tmp_path / f"tiles/{tile.name}.json",
            cube_store=STORE,
        )
        for tile in all_tiles(1, 2)
    ]
    [version] = objectstore.versions(AREA).values()  # one pending version, both tiles' chunks
    assert not objectstore.is_finished(version) and objectstore.read_pointer(AREA) is None
    assert {json.loads(m.read_text())["store"].rsplit("/_tiles/")[0] for m in manifests} == {
        version
    }
    s3.records.clear()

    async def in_a_running_loop() -> Path:  # as a light job in a thread of Snakemake's process
        return join_tiles(
            tile_paths=manifests, split=[1, 2], out=tmp_path / "workflow.json",
            crs=cube_spec().crs, cube_store=STORE, area="demo",
        )  # fmt: skip

    out = asyncio.run(in_a_running_loop())
    joined = list(s3.records)
    # Per tile: its metadata and coordinates (about 19 small GETs); then one PUT per key of
    # the area's metadata and coordinates, .zmetadata last, then the pointer. 63 in all here.
    assert len(joined) < 80
    assert not [r for r in joined if chunk_key(r)]  # no GET, PUT (copy) or HEAD of a chunk
    listings = [r.path.split("prefix=")[1] for r in joined if "list-type" in r.path]
    assert listings == ["runs%2Fdemo%2Fdemo%2Fcube%2F"]  # the versions (release), not the chunks
    assert joined[-1].method == "PUT" and joined[-1].path.endswith("/demo/ndvi.json")
    assert json.loads(out.read_text())["store"] == version
    xr.testing.assert_identical(open_cube(AREA).load(), open_cube(whole).load())

    # A rerun with two more days: the first tile written (a build killed before its other
    # tile and its join) leaves the published cube as it was; the rerun, same name, completes.
    # Its items (the same ids) name the COGs on the Range server, whose log shows what is read.
    ranged = items_subset(catalog, tmp_path / "ranged.json", base_url=cogs.url)
    features = json.loads(ranged.read_text())["features"]
    new_days = sorted({f["properties"]["datetime"][:10] for f in features})[8:]
    new_cogs = {
        urlsplit(a["href"]).path
        for f in features
        if f["properties"]["datetime"][:10] in new_days
        for a in f["assets"].values()
    }
    old_chunks = {
        o["Key"].rsplit("/", 1)[-1]
        for o in server.client().list_objects_v2(
            Bucket=BUCKET, Prefix=version.split(f"{BUCKET}/")[1] + "/ndvi/"
        )["Contents"]
    }

    def tile_jobs(tiles, policy: str = "fail") -> list[Path]:
        return [
            build_cube(
                cube_spec(cube=chunking, tile=tile),
                items_path=ranged,
                area="demo",
                out=tmp_path / f"tiles/{tile.name}.json",
                cube_store=STORE,
                on_missing_asset=policy,
            )
            for tile in tiles
        ]

    tile_jobs(all_tiles(1, 2)[:1])
    assert len(objectstore.versions(AREA)) == 2 and open_cube(AREA).sizes["time"] == 8
    s3.records.clear()
    cogs.reset_log()
    tile_jobs(all_tiles(1, 2))
    [_, pending] = objectstore.versions(AREA).values()
    # Each tile copied its whole old time chunk (days 1-8) from the same tile of the published
    # version inside the bucket (CopyObject: PUTs without a body, at the area's keys), read no
    # chunk of it, and read COGs of the two new days only.
    copies = [r for r in requests(s3, "PUT") if chunk_key(r) and r.body == b""]
    assert copies and all(r.path.startswith(pending.removeprefix("s3:/") + "/") for r in copies)
    assert {r.path.rsplit("/", 1)[-1] for r in copies if r.status == 200} == {
        k for k in old_chunks if k.startswith("0.")
    }
    assert not [r for r in requests(s3, "GET") if chunk_key(r) and version.split("/")[-1] in r.path]
    read = {r.path for r in cogs.requests}
    assert read and read <= new_cogs
    join_tiles(
        tile_paths=manifests, split=[1, 2], out=out, crs=cube_spec().crs, cube_store=STORE,
        area="demo", versions_kept=1,
    )  # fmt: skip
    assert objectstore.read_pointer(AREA)["store"] == pending
    assert list(objectstore.versions(AREA).values()) == [pending]
    np.testing.assert_array_equal(open_cube(AREA)["ndvi"].values, on_disk["ndvi"].values)
    # The tile jobs run again on the same inputs: their version is finished, nothing written.
    s3.records.clear()
    tile_jobs(all_tiles(1, 2))
    assert {r.method for r in s3.records} == {"GET", "HEAD"}  # a listing and .zmetadata
    # Another build of the same days (another policy: another version): every day copied from
    # the published tiles, no COG read, and the new version joined whole.
    cogs.reset_log()
    tile_jobs(all_tiles(1, 2), policy="skip")
    join_tiles(
        tile_paths=manifests, split=[1, 2], out=out, crs=cube_spec().crs, cube_store=STORE,
        area="demo",
    )  # fmt: skip
    assert objectstore.read_pointer(AREA)["store"] != pending and not cogs.requests
    np.testing.assert_array_equal(open_cube(AREA)["ndvi"].values, on_disk["ndvi"].values)

"""The workflow's outputs in S3 through Snakemake's own storage plugin (issue 36, docs/cloud.md):
the demo field set run with ``--workflow-profile profiles/s3`` against a real S3-compatible
server on loopback (moto's server mode) writes to the bucket what the local run (``demo_run``,
tests/conftest.py) writes to ``results/``, byte for byte, keeps on the local disk only what
docs/cloud.md says, plans nothing when run again, and writes the credentials it was given
nowhere: no object, no local file, no line of Snakemake's output, not the report."""

from __future__ import annotations

import base64
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pytest
import xarray as xr

from tests.workflow_helpers import planned_jobs, ran_jobs, snakemake

pytestmark = pytest.mark.workflow

ROOT = Path(__file__).resolve().parent.parent
BUCKET, PREFIX = "ndvicube-results", "runs/demo"
#: What the run signs with: distinctive, so that a copy of either anywhere is found.
ACCESS_KEY, SECRET_KEY = "AKIANDVICUBES3FLOW01", "s3flow/Secret+Key/Never-Written-0123456789"
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": ACCESS_KEY,
    "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
    "AWS_DEFAULT_REGION": "us-east-1",
}
#: What a local run writes that stays on the local disk: the demo's catalog (it stands for the
#: archive), the stores the jobs keep between runs, the quick-look's tile cache, and the links
#: readers open with the versions they name (an object store has no links).
LOCAL_ONLY = re.compile(
    r"^results/(_demo_catalog/|\.index\.lock$|[^/]+/(\.work|\.viewer-tiles)/"
    r"|[^/]+/(ndvi|composites)\.zarr$|[^/]+/(cube|composites\.versions)/v\d+\.zarr/)"
)


@dataclass
class S3Run:
    """The demo field set run into the bucket: its folder, Snakemake's answers, the objects."""

    work: Path
    ran: dict[str, int]
    output: str
    noop: dict[str, int]
    noop_output: str
    objects: dict[str, bytes]


@pytest.fixture(scope="module")
def s3_run(demo_run, tmp_path_factory) -> S3Run:
    """demo_run's config and polygons, run with the S3 profile into a moto bucket: the run,
    then the same command as a dry run, then the report."""
    import boto3

    from ndvicube.testing.s3server import S3Server

    local, *_ = demo_run
    work = tmp_path_factory.mktemp("demo_fields_s3")
    shutil.copytree(local / "config", work / "config")
    config = shutil.copy(local / "config.yaml", work / "config.yaml")
    with S3Server() as server:
        client = boto3.client("s3", endpoint_url=server.url, region_name="us-east-1",
                              aws_access_key_id="admin", aws_secret_access_key="admin")  # fmt: skip
        client.create_bucket(Bucket=BUCKET)
        flags = (
            *("--workflow-profile", str(ROOT / "profiles/s3")),
            *("--default-storage-prefix", f"s3://{BUCKET}/{PREFIX}"),
            *("--storage-s3-endpoint-url", server.url),
        )
        done = snakemake(work, config, "--cores", "2", *flags, env=CREDENTIALS, timeout=1200)
        assert done.returncode == 0, done.stderr[-3000:]
        noop = snakemake(work, config, "--dry-run", *flags, env=CREDENTIALS)
        assert noop.returncode == 0, noop.stderr[-3000:]
        report = snakemake(work, config, "--report", "report.html", *flags, env=CREDENTIALS)
        assert report.returncode == 0, report.stderr[-3000:]
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
        keys = [o["Key"] for page in pages for o in page.get("Contents", [])]
        objects = {
            key.removeprefix(f"{PREFIX}/"): client.get_object(Bucket=BUCKET, Key=key)["Body"].read()
            for key in keys
        }
    return S3Run(work, ran_jobs(done), done.stdout + done.stderr, planned_jobs(noop),
                 noop.stdout + noop.stderr, objects)  # fmt: skip


def local_outputs(work: Path) -> dict[str, Path]:
    """Every file a local run wrote under ``results/`` that is an output (not LOCAL_ONLY)."""
    files = {}
    for folder, dirs, names in os.walk(work / "results"):
        for name in names + [d for d in dirs if os.path.islink(os.path.join(folder, d))]:
            path = Path(folder, name)
            relative = path.relative_to(work).as_posix()
            if not LOCAL_ONLY.match(relative):
                files[relative] = path
    return files


def test_the_bucket_holds_every_output_of_the_local_run_and_no_more(s3_run, demo_run):
    """The same files, and the same bytes: tables, figures, COGs, the viewer, both Zarr stores'
    chunks; the items and the cube's provenance name the working directory (the demo catalog's
    COG paths), and nothing else differs; logs are compared by what they say."""
    local, _, ran_local = demo_run
    outputs = local_outputs(local)
    assert set(s3_run.objects) == set(outputs) | {"results/logs/areas_index.log"}
    assert s3_run.ran == ran_local | {"areas_index": 1}
    differ = [
        key
        for key, path in outputs.items()
        if "/logs/" not in key
        and s3_run.objects[key].replace(bytes(s3_run.work), bytes(local)) != path.read_bytes()
    ]
    assert differ == []
    cube = "results/fields/cube/workflow.zarr/.zattrs"
    assert bytes(s3_run.work / "results/_demo_catalog") in s3_run.objects[cube]
    assert {k for k in outputs if k.endswith(".csv")} >= {
        f"results/fields/{t}.csv" for t in ("series_raw", "polygons_raw", "polygons_phenology")
    }
    listing = s3_run.objects["results/index.html"].decode()
    assert '<a href="fields/viewer/index.html">fields</a>' in listing
    # boto3 says where it found the credentials each time GDAL's environment opens: not logged.
    assert b"Found credentials" not in s3_run.objects["results/fields/logs/cube.log"]


def test_the_cube_in_the_bucket_holds_the_local_cube_values(s3_run, demo_run, tmp_path):
    local, *_ = demo_run
    store = tmp_path / "workflow.zarr"
    for key, body in s3_run.objects.items():
        if key.startswith("results/fields/cube/workflow.zarr/"):
            path = store / key.removeprefix("results/fields/cube/workflow.zarr/")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(body)
    with xr.open_zarr(store) as got, xr.open_zarr(local / "results/fields/ndvi.zarr") as want:
        assert list(got.data_vars) == list(want.data_vars) and got.sizes == want.sizes
        assert int(got["ndvi"].count()) > 0
        for name in want.data_vars:
            np.testing.assert_array_equal(got[name].values, want[name].values)


def test_only_the_documented_conveniences_stay_on_the_local_disk(s3_run):
    """No results/ file but the quick-look's tile cache and the demo catalog; the stores the
    jobs keep between runs sit in Snakemake's local copy of the bucket; no link or version."""
    results = {p.relative_to(s3_run.work).as_posix() for p in (s3_run.work / "results").rglob("*")
               if p.is_file()}  # fmt: skip
    assert results and all(LOCAL_ONLY.match(r) for r in results)
    assert {r.split("/")[2] for r in results if not r.startswith("results/_demo_catalog/")} == {
        ".viewer-tiles"
    }
    mirror = s3_run.work / ".snakemake/storage/s3" / BUCKET / PREFIX / "results/fields"
    assert (mirror / "cube/.work/workflow.zarr/zarr.json").exists() or (
        mirror / "cube/.work/workflow.zarr/.zmetadata"
    ).exists()
    assert not list(s3_run.work.rglob("ndvi.zarr")) and not list(s3_run.work.rglob("v1.zarr"))


def test_a_rerun_plans_nothing(s3_run):
    assert s3_run.noop == {}
    assert "Nothing to be done" in s3_run.noop_output


def test_the_credentials_are_written_nowhere(s3_run):
    """Not in an object, not in any local file the runs wrote (Snakemake's logs and metadata,
    the local copies, the report), not in Snakemake's output; nor URL-quoted (the secret holds
    ``/`` and ``+``) or base64-encoded, as a page or a JSON file might carry it."""
    forms = {s.encode() for s in (ACCESS_KEY, SECRET_KEY, quote(SECRET_KEY, safe=""))}
    forms.add(base64.b64encode(SECRET_KEY.encode()))
    assert (s3_run.work / "report.html").stat().st_size > 100_000
    leaks = [key for key, body in s3_run.objects.items() if any(f in body for f in forms)]
    leaks += [
        str(path)
        for path in s3_run.work.rglob("*")
        if path.is_file() and not path.is_symlink() and any(f in path.read_bytes() for f in forms)
    ]
    said = (s3_run.output + s3_run.noop_output).encode()
    leaks += [form.decode() for form in forms if form in said]
    assert leaks == []


def test_a_credential_on_the_command_line_stops_the_run_before_anything_is_written(tmp_path):
    """Snakemake prints its command line and keeps it in .snakemake/log/: a key given there
    would be, so the workflow refuses it (an abbreviated flag too) and points to the
    environment. No bucket is needed: it stops while the Snakefile is read."""
    from tests.workflow_helpers import demo_config, write_config

    config = write_config(
        tmp_path / "config.yaml",
        demo_config("items.json", [{"id": "p", "lon": 82.608, "lat": 27.163}]),
    )
    done = snakemake(
        tmp_path, config, "--dry-run", "--workflow-profile", str(ROOT / "profiles/s3"),
        "--default-storage-prefix", f"s3://{BUCKET}/{PREFIX}",
        "--storage-s3-access-key", ACCESS_KEY, "--storage-s3-secret", SECRET_KEY,
    )  # fmt: skip
    said = done.stdout + done.stderr
    assert done.returncode == 1
    assert "--storage-s3-access-key, --storage-s3-secret given on the command line" in said
    assert "AWS_ACCESS_KEY_ID" in said
    written = [p for p in tmp_path.rglob("*") if p.is_file() and p != config]
    assert not any(SECRET_KEY.encode() in p.read_bytes() for p in written)
    assert not list(tmp_path.glob(".snakemake/log/*.log"))

"""``s3://`` hrefs read natively by the remote reader (obstore's S3 client), against a real
S3-compatible server on loopback (moto in server mode): the cube equals the one read over HTTP,
signed with the environment's or the standard files' credentials, or unsigned; requester-pays
asked for when configured (seen in the headers the server received)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from urllib.parse import parse_qs

import pytest

from ndvicube.cube.store import open_cube
from ndvicube.demo import cube_spec, rewrite_hrefs
from ndvicube.jobs import build_cube
from ndvicube.read import remote
from ndvicube.read.retries import is_permanent
from ndvicube.read.s3 import s3_options
from ndvicube.testing.faults import Faults
from ndvicube.testing.rangeserver import RangeHTTPServer
from ndvicube.testing.s3server import ACCESS_KEY, REGION, SECRET_KEY, S3Server
from tests.test_cogs import chunk_bytes, subset

BUCKET = "sentinel-cogs"
SESSION_TOKEN = "ndvicube-test-session-token-4242"
AWS_VARIABLES = (
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION",
    "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_S3_ENDPOINT", "AWS_NO_SIGN_REQUEST",
    "AWS_REQUEST_PAYER", "AWS_PROFILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE",
    "AWS_HTTPS", "AWS_VIRTUAL_HOSTING", "AWS_SKIP_SIGNATURE",
)  # fmt: skip


@pytest.fixture(autouse=True)
def clean_aws(monkeypatch, tmp_path):
    """No AWS setting of the machine leaks in; a fresh store per test (settings are per store)."""
    for name in AWS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    remote.reset()
    yield
    remote.reset()


@pytest.fixture(scope="module")
def s3(catalog, tmp_path_factory):
    """The demo COGs of one month in a bucket of a moto server; the HTTP-built cube beside."""
    work = tmp_path_factory.mktemp("s3")
    local = subset(catalog, work / "local.json")
    with S3Server() as server:
        uploaded = server.upload(catalog.root, BUCKET)
        items = rewrite_hrefs(local, work / "s3.json", f"s3://{BUCKET}", catalog.root)
        with RangeHTTPServer(catalog.root) as http:
            served = rewrite_hrefs(local, work / "http.json", http.url, catalog.root)
            build_cube(cube_spec(), items_path=served, out=work / "http.zarr")
        yield {"server": server, "items": items, "work": work, "uploaded": uploaded}


def build(s3, name: str) -> Path:
    out = s3["work"] / f"{name}.zarr"
    shutil.rmtree(out, ignore_errors=True)
    build_cube(cube_spec(), items_path=s3["items"], out=out)
    return out


def test_s3_hrefs_signed_from_the_environment_give_the_http_cube(s3, monkeypatch):
    hrefs = {a["href"] for f in json.loads(s3["items"].read_text())["features"]
             for a in f["assets"].values()}  # fmt: skip
    assert s3["uploaded"] > 100 and all(h.startswith(f"s3://{BUCKET}/cogs/") for h in hrefs)
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3["server"].url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_REGION", REGION)
    out = build(s3, "env")
    assert chunk_bytes(out) == chunk_bytes(s3["work"] / "http.zarr")
    assert int(open_cube(out)["ndvi"].count()) > 10_000  # clear pixels, not an empty cube


def test_s3_hrefs_signed_from_the_standard_files_give_the_http_cube(s3, monkeypatch, tmp_path):
    aws = tmp_path / "home" / ".aws"
    aws.mkdir(parents=True)
    (aws / "credentials").write_text(
        f"[default]\naws_access_key_id = wrong\naws_secret_access_key = wrong\n\n"
        f"[survey]\naws_access_key_id = {ACCESS_KEY}\naws_secret_access_key = {SECRET_KEY}\n"
    )
    (aws / "config").write_text(f"[profile survey]\nregion = {REGION}\n")
    monkeypatch.setenv("AWS_PROFILE", "survey")
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3["server"].url)
    assert s3_options() == {
        "endpoint": s3["server"].url,
        "region": REGION,
        "access_key_id": ACCESS_KEY,
        "secret_access_key": SECRET_KEY,
    }
    out = build(s3, "files")
    assert chunk_bytes(out) == chunk_bytes(s3["work"] / "http.zarr")


def test_s3_hrefs_of_a_public_bucket_are_read_unsigned(s3, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3["server"].url)
    monkeypatch.setenv("AWS_REGION", REGION)
    assert s3_options()["skip_signature"] is True  # no credentials anywhere: unsigned
    out = build(s3, "unsigned")
    assert chunk_bytes(out) == chunk_bytes(s3["work"] / "http.zarr")


def test_requester_pays_and_signatures_reach_the_server(catalog, tmp_path, monkeypatch):
    """The Range server stands in for S3 (path-style) to show the headers each request had."""
    local = subset(catalog, tmp_path / "local.json")
    items = rewrite_hrefs(local, tmp_path / "s3.json", f"s3://{catalog.root.name}", catalog.root)
    with RangeHTTPServer(catalog.root.parent) as server:
        monkeypatch.setenv("AWS_ENDPOINT_URL", server.url)
        monkeypatch.setenv("AWS_REGION", REGION)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        monkeypatch.setenv("AWS_REQUEST_PAYER", "requester")  # GDAL's and obstore's name
        build_cube(cube_spec(), items_path=items, out=tmp_path / "paid.zarr")
        paid = [parse_qs(r.query) for r in server.requests]
        server.reset_log()
        remote.reset()
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REQUEST_PAYER"):
            monkeypatch.delenv(name)
        monkeypatch.setenv("AWS_NO_SIGN_REQUEST", "YES")  # GDAL's name for unsigned
        build_cube(cube_spec(), items_path=items, out=tmp_path / "free.zarr")
        free = [dict(r.headers) for r in server.requests]
    # Signed requests carry their credential in a presigned URL's query (see the redirect test).
    assert paid and all(q.get("x-amz-request-payer") == ["requester"] for q in paid)
    assert all(q["X-Amz-Credential"][0].startswith(ACCESS_KEY) for q in paid)
    assert free and not any("authorization" in h or "x-amz-request-payer" in h for h in free)
    assert chunk_bytes(tmp_path / "paid.zarr") == chunk_bytes(tmp_path / "free.zarr")


def test_s3_options_follow_gdal_names():
    env = {"AWS_S3_ENDPOINT": "minio.lan:9000", "AWS_HTTPS": "NO", "AWS_VIRTUAL_HOSTING": "FALSE",
           "AWS_NO_SIGN_REQUEST": "YES"}  # fmt: skip
    assert s3_options(env, home=Path("/nonexistent")) == {
        "endpoint": "http://minio.lan:9000",
        "virtual_hosted_style_request": False,
        "skip_signature": True,
    }
    keys = {"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s", "AWS_REGION": "eu-central-1"}
    assert s3_options(keys, home=Path("/nonexistent")) == {}  # obstore reads these itself


def test_signed_s3_requests_redirected_to_another_host_carry_no_credential_there(
    s3, catalog, monkeypatch, tmp_path
):
    """The remote reader follows an S3 endpoint's redirect, and never sends a credential - the
    signature, the key id, the session token - on to the host the redirect names (issue 33:
    obstore's client sent ``x-amz-security-token`` there on every request)."""
    files = tmp_path / "files" / BUCKET
    files.mkdir(parents=True)
    subprocess.run(["cp", "-al", str(Path(catalog.root) / "cogs"), str(files)], check=True)
    with (
        RangeHTTPServer(tmp_path / "files", host="127.0.0.2") as target,
        RangeHTTPServer(tmp_path, faults=Faults(redirect_to=target.url)) as endpoint,
    ):
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint.url)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        monkeypatch.setenv("AWS_SESSION_TOKEN", SESSION_TOKEN)
        monkeypatch.setenv("AWS_REGION", REGION)
        out = build(s3, "redirected")
    assert target.requests
    for request in target.requests:
        sent = " ".join(f"{k}: {v}" for k, v in request.headers) + " " + request.query
        assert not any(word in sent for word in (SESSION_TOKEN, ACCESS_KEY, "X-Amz-", "x-amz-"))
    assert chunk_bytes(out) == chunk_bytes(s3["work"] / "http.zarr")
    signed = [parse_qs(r.query) for r in endpoint.requests]  # presigned: the query holds it
    assert signed and all(q["X-Amz-Security-Token"] == [SESSION_TOKEN] for q in signed)
    assert all(q["X-Amz-Credential"][0].startswith(ACCESS_KEY) for q in signed)


@pytest.mark.parametrize("keep", [0.5, 500])
def test_a_cut_short_s3_object_is_named_as_such(s3, catalog, monkeypatch, keep):
    """An object shorter than its TIFF header says fails at once saying so (issue 33): before,
    obstore handed async-tiff the short body ("rust future panicked") or a bare 416."""
    cog = next(Path(catalog.root).glob("cogs/*/B04.tif"))
    data = cog.read_bytes()
    key = f"short/{keep}.tif"
    s3["server"].client().put_object(
        Bucket=BUCKET,
        Key=key,
        ACL="public-read",
        Body=data[: int(len(data) * keep) if keep < 1 else keep],
    )
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3["server"].url)
    monkeypatch.setenv("AWS_REGION", REGION)
    url = f"s3://{BUCKET}/{key}"
    with pytest.raises(Exception, match="the file is shorter than its TIFF header says") as error:
        layout = remote.layout(url)
        remote.read_pixels(url, slice(0, layout.geobox.shape[0]), slice(0, layout.geobox.shape[1]))
    assert is_permanent(remote.remote_error(error.value, "tiles"))

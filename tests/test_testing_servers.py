"""The loopback servers of ``ndvicube.testing`` against real clients: http.client, GDAL, pystac.

RangeHTTPServer must answer like an object store (ranges, multipart, HEAD, 404/403/416,
keep-alive, latency, an exact request log), because remote-read tests and benchmarks count on it.
StacApiServer runs the real ``rustac serve``; the tests on it pin what it does and does not do
(conformance, Query extension, pagination, the GET next-link bug) so a rustac upgrade that
changes any of it is noticed here, not in a workflow test.
"""

from __future__ import annotations

import copy
import datetime as dt
import http.client
import json
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from pystac_client import Client
from pystac_client.warnings import DoesNotConformTo
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.windows import Window

from ndvicube.testing import RangeHTTPServer, StacApiServer
from ndvicube.testing.rangeserver import parse_range

RANDOM_SIZE = 200_000
GDAL_ENV = {"GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR"}

Response = tuple[int, http.client.HTTPMessage, bytes]


# --- RangeHTTPServer ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder like a bucket: random bytes, a tiled deflate GeoTIFF, JSON, a sub-folder.

    A file beside (outside) it, ``secret.txt``, is what traversal attempts aim at.
    """
    base = tmp_path_factory.mktemp("bucket")
    root = base / "root"
    (root / "scene").mkdir(parents=True)
    (root / "random.bin").write_bytes(np.random.default_rng(42).bytes(RANDOM_SIZE))
    (root / "meta.json").write_text('{"a": 1}\n')
    (base / "secret.txt").write_text("do not serve\n")
    (root / "link.txt").symlink_to(base / "secret.txt")
    _write_geotiff(root / "scene" / "x.tif")
    return root


def _write_geotiff(path: Path) -> None:
    """1024x1024 uint16, 256x256 tiles, deflate: 16 tiles, so a window needs only some."""
    rng = np.random.default_rng(7)
    data = rng.integers(0, 10_000, (1024, 1024), dtype=np.uint16)
    profile = {
        "driver": "GTiff",
        "width": 1024,
        "height": 1024,
        "count": 1,
        "dtype": "uint16",
        "crs": "EPSG:32613",
        "transform": rasterio.Affine(10, 0, 500_000, 0, -10, 4_500_000),
        "tiled": True,
        "blockxsize": 256,
        "blockysize": 256,
        "compress": "deflate",
        "nodata": 0,
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data, 1)


@pytest.fixture
def server(served: Path) -> Iterator[RangeHTTPServer]:
    """A fresh server per test, so each test sees only its own requests in the log."""
    with RangeHTTPServer(served) as srv:
        yield srv


def _request(
    srv: RangeHTTPServer,
    path: str,
    headers: dict[str, str] | None = None,
    method: str = "GET",
    conn: http.client.HTTPConnection | None = None,
) -> Response:
    """Send one request with the path as given (http.client does not normalise ``..``)."""
    own = conn is None
    conn = conn or http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    try:
        conn.request(method, path, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.headers, response.read()
    finally:
        if own:
            conn.close()


def test_full_get_returns_the_whole_file_with_object_store_headers(server, served):
    status, headers, body = _request(server, "/random.bin")
    assert status == 200
    assert body == (served / "random.bin").read_bytes()
    assert headers["Content-Length"] == str(RANDOM_SIZE)
    assert headers["Accept-Ranges"] == "bytes"
    assert headers["Content-Type"] == "application/octet-stream"
    assert re.fullmatch(r'"[0-9a-f]+-[0-9a-f]+"', headers["ETag"])
    modified = dt.datetime.strptime(headers["Last-Modified"], "%a, %d %b %Y %H:%M:%S GMT")
    mtime = dt.datetime.fromtimestamp((served / "random.bin").stat().st_mtime, dt.UTC)
    assert abs(modified.replace(tzinfo=dt.UTC) - mtime) < dt.timedelta(seconds=1)


def test_an_absolute_form_target_is_served_as_its_path_and_logged_with_its_host(server, served):
    status, _, body = _request(server, "http://acct.blob.core.windows.net/meta.json?a=1")
    assert (status, body) == (200, (served / "meta.json").read_bytes())
    (record,) = server.requests
    assert (record.host, record.path) == ("acct.blob.core.windows.net", "/meta.json")
    assert record.query == "a=1"
    _request(server, "/meta.json")
    assert server.requests[-1].host == f"127.0.0.1:{server.port}"  # the Host header


def test_with_a_sas_token_only_requests_carrying_it_are_answered(served):
    with RangeHTTPServer(served, sas_token="sv=1&sig=abc") as srv:
        assert _request(srv, "/meta.json?sv=1&sig=abc")[0] == 200
        assert _request(srv, "/meta.json")[0] == 403
        assert _request(srv, "/meta.json?sv=1&sig=abd")[0] == 403
        assert [r.status for r in srv.requests] == [200, 403, 403]


@pytest.mark.parametrize(
    ("path", "content_type"),
    [("/scene/x.tif", "image/tiff"), ("/meta.json", "application/json")],
)
def test_content_type_follows_the_extension(server, served, path, content_type):
    status, headers, body = _request(server, path)
    assert (status, headers["Content-Type"]) == (200, content_type)
    assert body == (served / path.lstrip("/")).read_bytes()


@pytest.mark.parametrize(
    ("header", "first", "last"),
    [
        ("bytes=0-0", 0, 0),
        ("bytes=10-99", 10, 99),
        ("bytes=199990-", 199_990, RANDOM_SIZE - 1),
        ("bytes=-100", RANDOM_SIZE - 100, RANDOM_SIZE - 1),
        ("bytes=199000-999999999", 199_000, RANDOM_SIZE - 1),  # end clamped
        ("bytes=-999999999", 0, RANDOM_SIZE - 1),  # suffix longer than the file
    ],
)
def test_a_range_returns_that_slice(server, served, header, first, last):
    status, headers, body = _request(server, "/random.bin", {"Range": header})
    assert status == 206
    assert headers["Content-Range"] == f"bytes {first}-{last}/{RANDOM_SIZE}"
    assert headers["Content-Length"] == str(last - first + 1)
    assert body == (served / "random.bin").read_bytes()[first : last + 1]


@pytest.mark.parametrize("header", ["bytes=200000-", "bytes=500000-600000", "bytes=-0"])
def test_an_unsatisfiable_range_is_416(server, header):
    status, headers, _ = _request(server, "/random.bin", {"Range": header})
    assert status == 416
    assert headers["Content-Range"] == f"bytes */{RANDOM_SIZE}"


@pytest.mark.parametrize("header", ["bytes=5-1", "items=0-1", "bytes=abc", "bytes=", "bytes=-"])
def test_a_malformed_range_is_ignored(server, header):
    """RFC 9110: a server ignores a Range header it cannot parse and sends the whole file."""
    status, _, body = _request(server, "/random.bin", {"Range": header})
    assert (status, len(body)) == (200, RANDOM_SIZE)


def test_if_range_with_a_stale_etag_gives_the_whole_file(server):
    _, headers, _ = _request(server, "/random.bin", method="HEAD")
    fresh = _request(server, "/random.bin", {"Range": "bytes=0-9", "If-Range": headers["ETag"]})
    stale = _request(server, "/random.bin", {"Range": "bytes=0-9", "If-Range": '"stale"'})
    assert (fresh[0], len(fresh[2])) == (206, 10)
    assert (stale[0], len(stale[2])) == (200, RANDOM_SIZE)


def test_several_ranges_give_a_multipart_body_of_those_slices(server, served):
    data = (served / "random.bin").read_bytes()
    status, headers, body = _request(server, "/random.bin", {"Range": "bytes=0-9,100-199,-5"})
    assert status == 206
    assert headers["Content-Length"] == str(len(body))
    parts = _parse_byteranges(body, headers["Content-Type"])
    assert parts == [
        ("application/octet-stream", f"bytes 0-9/{RANDOM_SIZE}", data[0:10]),
        ("application/octet-stream", f"bytes 100-199/{RANDOM_SIZE}", data[100:200]),
        (
            "application/octet-stream",
            f"bytes {RANDOM_SIZE - 5}-{RANDOM_SIZE - 1}/{RANDOM_SIZE}",
            data[-5:],
        ),
    ]


def test_several_ranges_of_which_one_is_satisfiable_give_a_plain_206(server, served):
    status, headers, body = _request(server, "/random.bin", {"Range": "bytes=0-9,999999-"})
    assert (status, headers["Content-Range"]) == (206, f"bytes 0-9/{RANDOM_SIZE}")
    assert body == (served / "random.bin").read_bytes()[:10]


def _parse_byteranges(body: bytes, content_type: str) -> list[tuple[str, str, bytes]]:
    """Strict RFC 9110 section 14.6 parse: each part's length is taken from its Content-Range."""
    match = re.fullmatch(r"multipart/byteranges; boundary=(\S+)", content_type)
    assert match, content_type
    delimiter = f"--{match.group(1)}".encode()
    parts, pos = [], 0
    while True:
        assert body.startswith(delimiter, pos), body[pos : pos + 80]
        pos += len(delimiter)
        if body[pos:] == b"--\r\n":
            return parts
        head_end = body.index(b"\r\n\r\n", pos)
        fields = dict(
            line.split(": ", 1) for line in body[pos + 2 : head_end].decode().split("\r\n")
        )
        first, last = map(int, re.match(r"bytes (\d+)-(\d+)/", fields["Content-Range"]).groups())
        start = head_end + 4
        parts.append(
            (
                fields["Content-Type"],
                fields["Content-Range"],
                body[start : start + last - first + 1],
            )
        )
        pos = start + last - first + 1
        assert body[pos : pos + 2] == b"\r\n"
        pos += 2


def test_head_gives_the_length_and_no_body_on_a_kept_alive_connection(server):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        head = _request(server, "/random.bin", method="HEAD", conn=conn)
        sock = conn.sock
        ranged = _request(server, "/random.bin", {"Range": "bytes=-3"}, method="HEAD", conn=conn)
        get = _request(server, "/meta.json", conn=conn)
        assert conn.sock is sock  # one connection for all three: keep-alive works
    finally:
        conn.close()
    assert (head[0], head[1]["Content-Length"], head[2]) == (200, str(RANDOM_SIZE), b"")
    assert (ranged[0], ranged[1]["Content-Length"], ranged[2]) == (206, "3", b"")
    assert (get[0], get[2]) == (200, b'{"a": 1}\n')
    assert [(r.method, r.status, r.bytes_sent) for r in server.requests] == [
        ("HEAD", 200, 0),
        ("HEAD", 206, 0),
        ("GET", 200, 9),
    ]


@pytest.mark.parametrize("path", ["/nope.bin", "/scene/", "/scene", "/", "/random.bin/x"])
def test_missing_files_and_directories_are_404(server, path):
    status, headers, body = _request(server, path)
    assert (status, body) == (404, b"404 Not Found\n")
    assert headers.get("Connection") != "close"  # an error does not cost GDAL its connection


@pytest.mark.parametrize(
    "path",
    [
        "/../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E%2Fsecret.txt",
        "/scene/../../secret.txt",
        "/link.txt",  # a symlink inside the root leading out of it
    ],
)
def test_paths_leading_out_of_the_root_are_refused(server, path):
    status, _, body = _request(server, path)
    assert status == 403
    assert b"do not serve" not in body


def test_other_methods_are_405(server):
    status, headers, _ = _request(server, "/random.bin", method="POST")
    assert (status, headers["Allow"]) == (405, "GET, HEAD")


def test_latency_is_added_to_every_request_and_overlaps_across_threads(served):
    latency = 0.1
    with RangeHTTPServer(served, latency_s=latency) as srv:
        t0 = time.perf_counter()
        for path in ("/meta.json", "/nope", "/meta.json"):
            _request(srv, path)
        sequential = time.perf_counter() - t0
        srv.reset_log()
        threads = [threading.Thread(target=_request, args=(srv, "/meta.json")) for _ in range(4)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        parallel = time.perf_counter() - t0
        records = srv.requests
    assert sequential >= 3 * latency
    assert len(records) == 4
    assert all(r.duration >= latency for r in records)
    assert parallel < 3 * latency  # four requests, one latency each, served concurrently


def test_the_log_counts_requests_and_body_bytes(served, tmp_path):
    log_file = tmp_path / "requests.jsonl"
    with RangeHTTPServer(served, log_file=log_file) as srv:
        before = time.time()
        _request(srv, "/random.bin")
        _request(srv, "/random.bin", {"Range": "bytes=10-19"})
        _request(srv, "/random.bin", method="HEAD")
        _request(srv, "/scene/missing.tif")
        records = srv.requests
        assert srv.stats("/random") == {"requests": 3, "bytes": RANDOM_SIZE + 10, "files": 1}
        assert srv.stats("/scene/") == {"requests": 1, "bytes": len(b"404 Not Found\n"), "files": 1}
        assert srv.stats() == {"requests": 4, "bytes": RANDOM_SIZE + 24, "files": 2}
        srv.reset_log()
        assert srv.requests == []
        assert srv.stats() == {"requests": 0, "bytes": 0, "files": 0}
    assert [(r.method, r.path, r.range, r.status, r.bytes_sent) for r in records] == [
        ("GET", "/random.bin", None, 200, RANDOM_SIZE),
        ("GET", "/random.bin", "bytes=10-19", 206, 10),
        ("HEAD", "/random.bin", None, 200, 0),
        ("GET", "/scene/missing.tif", None, 404, 14),
    ]
    assert all(before <= r.started <= time.time() and r.duration >= 0 for r in records)
    # The file gets a line as each request finishes; its start time orders it.
    lines = sorted(
        (json.loads(line) for line in log_file.read_text().splitlines()), key=lambda d: d["started"]
    )
    assert [(d["path"], d["status"], d["bytes_sent"]) for d in lines] == [
        (r.path, r.status, r.bytes_sent) for r in records
    ]


def test_the_log_holds_a_request_as_soon_as_the_client_has_its_answer(server):
    """The client may read the last byte before the handler thread logs: the log must wait."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        for n in range(1, 201):
            _request(server, "/meta.json", conn=conn)
            assert server.stats() == {"requests": n, "bytes": 9 * n, "files": 1}
    finally:
        conn.close()


def test_kept_alive_requests_are_not_held_back_by_nagle(server):
    """Headers and body leave in separate writes; with Nagle on each answer took ~40 ms."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        t0 = time.perf_counter()
        for _ in range(50):
            assert _request(server, "/meta.json", conn=conn)[0] == 200
        elapsed = time.perf_counter() - t0
    finally:
        conn.close()
    assert elapsed < 50 * 0.01  # ~0.3 ms each here; 40 ms each with the delayed-ACK stall


def test_stop_cuts_kept_alive_connections_and_refuses_new_ones(served):
    srv = RangeHTTPServer(served).start()
    port = srv.port
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    assert _request(srv, "/meta.json", conn=conn)[0] == 200
    srv.stop()
    with pytest.raises((http.client.HTTPException, OSError)):
        _request(srv, "/meta.json", conn=conn)
    conn.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5)
    with pytest.raises(RuntimeError, match="not started"):
        _ = srv.url


def test_parse_range_spec_cases():
    assert parse_range("bytes=0-9, 20-", 30) == [(0, 9), (20, 29)]
    assert parse_range("bytes=-5", 3) == [(0, 2)]
    assert parse_range("bytes=0-", 0) == []  # nothing is satisfiable in an empty file
    assert parse_range("bytes=1-0", 10) is None
    assert parse_range("bytes=١-٢", 10) is None  # non-ASCII digits are not digits here


def test_rasterio_reads_a_window_over_vsicurl_like_the_local_file(server, served):
    local = served / "scene" / "x.tif"
    window = Window(300, 300, 200, 200)  # inside tile (1, 1) alone
    with rasterio.open(local) as src:
        expected = src.read(1, window=window)
    with (
        rasterio.Env(**GDAL_ENV),
        rasterio.open(f"/vsicurl/{server.url}/scene/x.tif") as src,
    ):
        got = src.read(1, window=window)
        assert (src.crs, src.transform, src.block_shapes) == (
            CRS.from_epsg(32613),
            rasterio.Affine(10, 0, 500_000, 0, -10, 4_500_000),
            [(256, 256)],
        )
    np.testing.assert_array_equal(got, expected)
    stats = server.stats("/scene/x.tif")
    assert stats["files"] == 1
    assert 0 < stats["bytes"] < local.stat().st_size / 2  # a window, not the whole file
    assert {r.status for r in server.requests} <= {200, 206}
    assert all(r.path == "/scene/x.tif" for r in server.requests)  # no sidecar probing


def test_gdal_single_get_multirange_parses_our_multipart_answer(server, served):
    """``GDAL_HTTP_MULTIRANGE=SINGLE_GET`` sends one GET with several ranges: a real parser."""
    window = Window(0, 0, 256, 768)  # tile column 0 of rows 0-2: three disjoint byte ranges
    with rasterio.open(served / "scene" / "x.tif") as src:
        expected = src.read(1, window=window)
    env = {**GDAL_ENV, "GDAL_HTTP_MULTIRANGE": "SINGLE_GET"}
    with rasterio.Env(**env), rasterio.open(f"/vsicurl/{server.url}/scene/x.tif") as src:
        got = src.read(1, window=window)
    np.testing.assert_array_equal(got, expected)
    (multi,) = [r for r in server.requests if r.range and "," in r.range]
    ranges = parse_range(multi.range, (served / "scene" / "x.tif").stat().st_size)
    assert len(ranges) == 3
    assert multi.status == 206
    assert multi.bytes_sent > sum(last - first + 1 for first, last in ranges)  # part headers


def test_rasterio_reads_an_overview_of_a_real_cog(shared_fixtures):
    """The real decimated Sentinel-2 B04 COG (with overviews) reads the same remotely."""
    folder = shared_fixtures / "real-cogs" / "S2A_29RKH_20200219_0_L2A"
    out_shape = (1, 137, 137)
    with rasterio.open(folder / "B04.tif") as src:
        expected = src.read(out_shape=out_shape, resampling=Resampling.nearest)
        size = (folder / "B04.tif").stat().st_size
    with (
        RangeHTTPServer(folder) as srv,
        rasterio.Env(**GDAL_ENV),
        rasterio.open(f"/vsicurl/{srv.url}/B04.tif") as src,
    ):
        got = src.read(out_shape=out_shape, resampling=Resampling.nearest)
        fetched = srv.stats()["bytes"]
    np.testing.assert_array_equal(got, expected)
    assert fetched < size / 2  # the overview, not the full-resolution tiles


def test_cli_serves_with_latency_and_writes_the_log(served, tmp_path):
    log_file = tmp_path / "cli.jsonl"
    command = [
        sys.executable,
        "-m",
        "ndvicube.testing.rangeserver",
        str(served),
        "--port",
        "0",
        "--latency-ms",
        "20",
        "--log-file",
        str(log_file),
    ]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        banner = proc.stdout.readline()
        url = re.search(r"at (http://127\.0\.0\.1:\d+)", banner).group(1)
        t0 = time.perf_counter()
        with urllib.request.urlopen(f"{url}/meta.json", timeout=10) as response:
            assert response.read() == b'{"a": 1}\n'
        assert time.perf_counter() - t0 >= 0.02
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert "1 request(s), 9 byte(s) sent" in stderr
    (line,) = log_file.read_text().splitlines()
    assert json.loads(line)["path"] == "/meta.json"


# --- StacApiServer (rustac serve) --------------------------------------------------------------

COLLECTION = "sentinel-2-c1-l2a"
#: The 10 real items of MGRS 13TDE, newest first (their order in the fixture).
REAL_IDS = [
    "S2A_T13TDE_20240422T174753_L2A",
    "S2B_T13TDE_20240420T175329_L2A",
    "S2B_T13TDE_20240417T174407_L2A",
    "S2A_T13TDE_20240415T180048_L2A",
    "S2A_T13TDE_20240412T175055_L2A",
    "S2B_T13TDE_20240410T175332_L2A",
    "S2B_T13TDE_20240407T174209_L2A",
    "S2A_T13TDE_20240405T175934_L2A",
    "S2A_T13TDE_20240402T174230_L2A",
    "S2B_T13TDE_20240331T175111_L2A",
]
#: The real items acquired 2024-04-05..2024-04-15 (all cover MGRS 13TDE, so any bbox inside).
APRIL_5_TO_15 = {
    "S2A_T13TDE_20240415T180048_L2A",
    "S2A_T13TDE_20240412T175055_L2A",
    "S2B_T13TDE_20240410T175332_L2A",
    "S2B_T13TDE_20240407T174209_L2A",
    "S2A_T13TDE_20240405T175934_L2A",
}
#: Inside the footprint of every real item (north of Denver).
BBOX = [-105.2, 40.0, -105.0, 40.2]
#: The same box 20 degrees east, where the "M2" copies were moved.
BBOX_EAST = [-85.2, 40.0, -85.0, 40.2]
#: The observed conformance of rustac serve (memory backend): no query/filter/sort/fields.
RUSTAC_CONFORMANCE = {
    "https://api.stacspec.org/v1.0.0/core",
    "https://api.stacspec.org/v1.0.0/ogcapi-features",
    "https://api.stacspec.org/v1.0.0/collections",
    "https://api.stacspec.org/v1.0.0/item-search",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
}


@pytest.fixture(scope="module")
def stac_files(shared_fixtures: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """The real collection and 25 items: the 10 real ones, 10 copies a month later, and 5
    copies a month later still moved 20 degrees east (outside any Colorado bbox).
    """
    source = shared_fixtures / "earth-search-v1"
    real = json.loads((source / "sentinel-2-c1-l2a_13TDE_2024-04.json").read_text())["features"]
    features = [_standalone(f) for f in real]
    features += [_copy(f, days=30, tag="M1") for f in features[:10]]
    features += [_copy(f, days=60, tag="M2", east=20.0) for f in features[:5]]
    items = tmp_path_factory.mktemp("stac") / "items.json"
    items.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return [source / "sentinel-2-c1-l2a_collection.json", items]


def _standalone(feature: dict[str, Any]) -> dict[str, Any]:
    """Without Earth Search's links: rustac appends its own, and pystac would take the first
    ``self`` (Earth Search's) as the item's location."""
    return {**copy.deepcopy(feature), "links": []}


def _copy(feature: dict[str, Any], *, days: int, tag: str, east: float = 0.0) -> dict[str, Any]:
    """A new item: ``days`` later, id suffixed with ``tag``, footprint shifted ``east`` degrees."""
    item = copy.deepcopy(feature)
    item["id"] = f"{feature['id']}_{tag}"
    when = dt.datetime.fromisoformat(feature["properties"]["datetime"]) + dt.timedelta(days=days)
    item["properties"]["datetime"] = when.isoformat().replace("+00:00", "Z")
    item["bbox"] = [v + east if i % 2 == 0 else v for i, v in enumerate(item["bbox"])]
    item["geometry"]["coordinates"] = [
        [[x + east, y] for x, y in ring] for ring in item["geometry"]["coordinates"]
    ]
    return item


@pytest.fixture(scope="module")
def stac_api(stac_files: list[Path]) -> Iterator[StacApiServer]:
    with StacApiServer(*stac_files) as api:
        yield api


def _get_json(url: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    """GET, or POST ``body`` as JSON; the decoded answer."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def _ids(answer: dict[str, Any]) -> list[str]:
    return [f["id"] for f in answer["features"]]


def test_rustac_serve_starts_fast_and_advertises_only_core_and_item_search(stac_api):
    assert stac_api.url == f"http://127.0.0.1:{stac_api.port}"
    assert 0 < stac_api.startup_s < 10
    root = _get_json(f"{stac_api.url}/")
    assert set(root["conformsTo"]) == RUSTAC_CONFORMANCE
    assert set(_get_json(f"{stac_api.url}/conformance")["conformsTo"]) == RUSTAC_CONFORMANCE
    searches = {link.get("method") for link in root["links"] if link["rel"] == "search"}
    assert searches == {"GET", "POST"}
    collections = _get_json(f"{stac_api.url}/collections")["collections"]
    assert [c["id"] for c in collections] == [COLLECTION]


def test_pystac_client_bbox_and_datetime_search_finds_the_right_items(stac_api):
    client = Client.open(stac_api.url)

    def ids(bbox: list[float], datetime: str) -> set[str]:
        search = client.search(
            collections=[COLLECTION], bbox=bbox, datetime=datetime, max_items=None
        )
        return {item.id for item in search.items()}

    assert ids(BBOX, "2024-04-05/2024-04-15") == APRIL_5_TO_15
    # The copies 30 days later all fall in May but the one of 2024-03-31 (now 2024-04-30).
    may = {f"{i}_M1" for i in REAL_IDS if i != "S2B_T13TDE_20240331T175111_L2A"}
    assert ids(BBOX, "2024-05-01/2024-05-31") == may
    # The copies 60 days later were moved east: June is empty here and full there.
    assert ids(BBOX, "2024-06-01/2024-06-30") == set()
    assert ids(BBOX_EAST, "2024-06-01/2024-06-30") == {f"{i}_M2" for i in REAL_IDS[:5]}


def test_pystac_client_follows_pagination_to_the_last_item(stac_api, stac_files):
    expected = [f["id"] for f in json.loads(stac_files[1].read_text())["features"]]
    search = Client.open(stac_api.url).search(collections=[COLLECTION], limit=4, max_items=None)
    pages = list(search.pages_as_dicts())
    assert [len(p["features"]) for p in pages] == [4, 4, 4, 4, 4, 4, 1]
    assert [i for p in pages for i in _ids(p)] == expected  # load order, no duplicates
    next_link = next(link for link in pages[0]["links"] if link["rel"] == "next")
    assert next_link["method"] == "POST"
    assert next_link["body"] == {"collections": [COLLECTION], "limit": 4, "skip": 4}
    with pytest.warns(UserWarning, match="numberMatched"):
        assert search.matched() is None  # neither numberMatched nor context


def test_default_page_is_10_and_limit_has_no_upper_bound(stac_api):
    first = _get_json(f"{stac_api.url}/search")
    assert len(first["features"]) == 10
    assert [link["href"] for link in first["links"] if link["rel"] == "next"] == [
        f"{stac_api.url}/search?skip=10"
    ]
    everything = _get_json(f"{stac_api.url}/search?limit=5000")
    assert len(everything["features"]) == 25
    assert not [link for link in everything["links"] if link["rel"] == "next"]


def test_query_extension_is_not_honoured_post_gives_nothing_get_ignores_it(stac_api):
    """Observed: pystac-client warns, POSTs the query, and rustac answers with no items."""
    query = {"eo:cloud_cover": {"lt": 30}}
    client = Client.open(stac_api.url)
    with pytest.warns(DoesNotConformTo, match="QUERY"):
        search = client.search(collections=[COLLECTION], query=query, max_items=None)
        assert list(search.items()) == []
    assert _get_json(f"{stac_api.url}/search", {"query": query})["features"] == []
    encoded = urllib.parse.quote(json.dumps(query))
    ignored = _get_json(f"{stac_api.url}/search?limit=100&query={encoded}")
    assert len(ignored["features"]) == 25


def test_filter_gives_nothing_and_sortby_is_ignored(stac_api, stac_files):
    cql2 = {"op": "<", "args": [{"property": "eo:cloud_cover"}, 30]}
    body = {"filter-lang": "cql2-json", "filter": cql2, "limit": 100}
    assert _get_json(f"{stac_api.url}/search", body)["features"] == []
    expected = [f["id"] for f in json.loads(stac_files[1].read_text())["features"]]
    sortby = [{"field": "properties.eo:cloud_cover", "direction": "asc"}]
    answer = _get_json(f"{stac_api.url}/search", {"sortby": sortby, "limit": 100})
    assert _ids(answer) == expected


def test_get_search_with_a_list_parameter_fails_when_there_is_a_next_page(stac_api):
    """rustac cannot encode lists into a GET next link: 500 unless one page holds everything."""
    with pytest.raises(urllib.error.HTTPError) as error:
        _get_json(f"{stac_api.url}/search?collections={COLLECTION}&limit=2")
    assert error.value.code == 500
    assert error.value.read() == b"unsupported value"
    one_page = _get_json(f"{stac_api.url}/search?collections={COLLECTION}&limit=100")
    assert len(one_page["features"]) == 25


def test_items_without_a_loaded_collection_get_one(stac_files):
    with StacApiServer(stac_files[1]) as api:
        collections = _get_json(f"{api.url}/collections")["collections"]
        everything = _get_json(f"{api.url}/search?limit=100")
    assert [c["id"] for c in collections] == [COLLECTION]
    assert len(everything["features"]) == 25


def test_a_failing_start_reports_what_rustac_said(tmp_path):
    with pytest.raises(RuntimeError, match=r"exited with status 1.*\n.*not found"):
        StacApiServer(tmp_path / "missing.json").start()

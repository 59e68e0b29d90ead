"""Reliability, third round (issue 27): only what a retry can fix is retried, and as the server
asks.

* A COG server answering 429/503 with ``Retry-After`` is not asked again before that time, by
  either reader; other requests to that host wait too. Counted from the Range server's log.
* A COG the remote reader cannot decode (striped, a compression async-tiff lacks) goes to GDAL
  at once: no retry, no warning, the cube of a clean build.
"""

from __future__ import annotations

import collections
import json
import logging
import math
import os
import re
import shutil
import time
from pathlib import Path

import pytest
import rasterio

from ndvicube.compute import Compute
from ndvicube.errors import UnreadableAssetError
from ndvicube.jobs import build_cube
from ndvicube.read import remote
from ndvicube.read.retries import THROTTLE, retry_after_s, with_retries
from ndvicube.search.stac import search
from ndvicube.testing.rangeserver import THROTTLED, RangeHTTPServer, Throttle
from tests.fault_helpers import (
    CUBE,
    cog_path,
    demo_request,
    items_subset,
    ndvi_chunks,
    served_features,
)

# --- formats no retry can fix ------------------------------------------------------------------


def rewrite_cogs(catalog, out: Path, paths: dict[str, dict]) -> Path:
    """A copy of the catalog's COG tree at ``out`` (hard links), with the COGs at URL
    ``paths`` rewritten by GDAL with the creation options given for each (same pixels, grid
    and nodata)."""
    shutil.copytree(catalog.root / "cogs", out / "cogs", copy_function=os.link)
    for path, options in paths.items():
        target = out / path.lstrip("/")
        with rasterio.open(target) as src:
            profile = src.profile | {"driver": "GTiff"} | options
            profile = {k: v for k, v in profile.items() if v is not None}
            pixels = src.read()
        target.unlink()  # a hard link: the catalog's own file stays as it is
        with rasterio.open(target, "w", **profile) as dst:
            dst.write(pixels)
    return out


def test_striped_and_packbits_cogs_go_to_gdal_without_a_retry(catalog, clean, tmp_path, caplog):
    """Striped TIFFs were read as tiled ones, failed as "corrupt tile: Not a tiled TIFF" and
    were retried 4 times before GDAL read them; PackBits failed 5 times and the job with it."""
    with RangeHTTPServer(catalog.root) as probe:
        features = served_features(catalog, tmp_path, probe.url)
    striped = {"tiled": False, "blockysize": 16, "blockxsize": None}
    odd = {cog_path(f, "red"): striped for f in features[:6]}
    odd |= {cog_path(f, "nir"): {"compress": "packbits"} for f in features[3:9]}
    root = rewrite_cogs(catalog, tmp_path / "served", odd)
    with RangeHTTPServer(root) as server:
        items = items_subset(catalog, tmp_path / "items.json", base_url=server.url)
        remote.reset()
        with caplog.at_level(logging.WARNING):
            build_cube(CUBE, items_path=items, out=tmp_path / "ndvi.zarr")
        requests = [r for r in server.requests if r.path in odd]
    assert ndvi_chunks(tmp_path / "ndvi.zarr") == ndvi_chunks(clean)
    assert "retry" not in caplog.text and "Striped" not in caplog.text
    per_cog = collections.defaultdict(list)
    for r in requests:
        per_cog[r.path].append((r.method, r.range, r.status))
    assert set(per_cog) == set(odd)
    for path, seen in per_cog.items():
        # The remote reader's one header request, then GDAL's own reads of the file (after
        # ndvicube's look for a redirect, as the href is signed: tests/test_credentials.py).
        assert seen[0] == ("GET", "bytes=0-4095", 206), path
        assert [s for s in seen if s[1] == "bytes=0-4095"] == [seen[0]], path
        assert [s for s in seen if s[1] == "bytes=0-0"] == [("GET", "bytes=0-0", 206)], path
        assert all(status in (200, 206) for _, _, status in seen) and len(seen) <= 5, path


def test_the_header_names_what_the_remote_reader_leaves_to_gdal(catalog, tmp_path):
    with RangeHTTPServer(catalog.root) as probe:
        (feature,) = served_features(catalog, tmp_path, probe.url)[:1]
    odd = {
        cog_path(feature, "red"): {"tiled": False, "blockysize": 16, "blockxsize": None},
        cog_path(feature, "nir"): {"compress": "packbits"},
    }
    root = rewrite_cogs(catalog, tmp_path / "served", odd)
    red, nir = odd
    with RangeHTTPServer(root) as server:
        with pytest.raises(remote.UseGdal, match=r"a striped \(not tiled\) TIFF"):
            remote.layout(f"{server.url}{red}")
        with pytest.raises(remote.UseGdal, match=r"compression PackBits \(32773\)"):
            remote.layout(f"{server.url}{nir}")
        assert len(server.requests) == 2  # one header each, nothing retried


def test_a_codec_gdal_lacks_fails_at_once():
    """GDAL's words for a compression it was built without: not retried."""
    from rasterio.errors import RasterioIOError

    calls = []

    def read(attempt: int):
        calls.append(attempt)
        raise RasterioIOError("Cannot open TIFF file due to missing codec for jxl.")

    with pytest.raises(Exception, match="missing codec"):
        with_retries(read, "http://host/B04.tif", sleep=lambda s: None)
    assert calls == [1]


# --- throttling: 429/503 with Retry-After -------------------------------------------------------

FEW = 4  # items (12 COGs): a quick build that still reads many COGs at once


def few_items(catalog, out: Path, *, base_url: str | None = None) -> Path:
    """The first FEW items of the fault tests' subset (hrefs on ``base_url`` if given)."""
    doc = json.loads(items_subset(catalog, out, base_url=base_url).read_text())
    doc["features"] = doc["features"][:FEW]
    out.write_text(json.dumps(doc))
    return out


@pytest.fixture(scope="module")
def few_clean(catalog, tmp_path_factory) -> Path:
    """The cube of those items from local files, no fault anywhere."""
    work = tmp_path_factory.mktemp("few")
    build_cube(CUBE, items_path=few_items(catalog, work / "items.json"), out=work / "ndvi.zarr")
    return work / "ndvi.zarr"


def build_throttled(catalog, tmp_path, throttle: Throttle, reader: str, **compute) -> list:
    """Build the few items' cube from a Range server that throttles; its COG requests."""
    THROTTLE.clear()
    remote.reset()
    with RangeHTTPServer(catalog.root, throttle=throttle) as server:
        items = few_items(catalog, tmp_path / "items.json", base_url=server.url)
        try:
            build_cube(
                CUBE,
                items_path=items,
                out=tmp_path / "ndvi.zarr",
                compute=Compute(reader=reader, **compute),
            )
        finally:
            requests = [r for r in server.requests if r.path.endswith(".tif")]
    return requests


@pytest.mark.parametrize("reader", ["range", "gdal"])
def test_a_throttling_host_is_asked_again_only_when_it_said(
    catalog, few_clean, tmp_path, caplog, reader
):
    """The server throttles every COG request for 3 s once the job is under way. Before: 5
    requests per COG within 1.2 s (obstore's retries), GDAL's own retries after 0.5 and 1.2 s.
    Now each COG gets at most one 429, and no request leaves once the first 429 is in: the
    whole host waits, the other COGs too."""
    throttle = Throttle(retry_after_s=3, scope="host", after=3)
    with caplog.at_level(logging.WARNING):
        requests = build_throttled(catalog, tmp_path, throttle, reader)
    assert ndvi_chunks(tmp_path / "ndvi.zarr") == ndvi_chunks(few_clean)
    throttled = [r for r in requests if r.fault == THROTTLED]
    per_cog = collections.Counter(r.path for r in throttled)
    assert throttled and max(per_cog.values()) == 1
    first = min(throttled, key=lambda r: r.started)
    # Only requests already on their way when the first 429 came were throttled (a second of
    # slack for a loaded machine; the window is 3 s): nothing was sent during the window.
    assert max(r.started for r in throttled) <= first.started + 1.0
    served = [r for r in requests if r.started > first.started and r.fault is None]
    assert served and min(r.started for r in served) >= first.started + 3 - 0.05
    assert "retry 1/4" not in caplog.text  # waited within the request, not failed


def test_retry_after_as_an_http_date_on_a_503_is_obeyed_per_cog(catalog, few_clean, tmp_path):
    """Every COG's first request is answered 503 with an HTTP date 2 s ahead (on a whole
    second), and so is any request for it before then."""
    throttle = Throttle(retry_after_s=2, scope="path", status=503, http_date=True)
    requests = build_throttled(catalog, tmp_path, throttle, "range")
    assert ndvi_chunks(tmp_path / "ndvi.zarr") == ndvi_chunks(few_clean)
    per_cog = collections.Counter(r.path for r in requests if r.fault == THROTTLED)
    assert set(per_cog.values()) == {1} and len(per_cog) == 3 * FEW
    for path in per_cog:
        seen = [r for r in requests if r.path == path]
        date = math.ceil(seen[0].started + 2)  # the second the server named
        assert seen[0].status == 503 and all(r.started >= date for r in seen[1:]), path


@pytest.mark.parametrize("reader", ["range", "gdal"])
def test_a_retry_after_past_the_read_deadline_fails_at_once_saying_so(catalog, tmp_path, reader):
    throttle = Throttle(retry_after_s=600, scope="host")
    started = time.monotonic()
    with pytest.raises(UnreadableAssetError) as error:
        build_throttled(catalog, tmp_path, throttle, reader, read_deadline_s=5)
    message = str(error.value)
    assert re.search(r"asked to wait (59\d|600) s more \(Retry-After\)", message)
    assert "past the read deadline of 5 s" in message
    assert "/cogs/" in message and time.monotonic() - started < 20  # not 600 s, nor 5 retries


def test_the_stac_search_waits_as_retry_after_says(catalog):
    """Already so (urllib3's Retry honours Retry-After): one 429 per page, then the items."""
    throttle = Throttle(retry_after_s=2, scope="path", only=(".json",))
    with RangeHTTPServer(catalog.root, throttle=throttle) as server:
        found = search(demo_request(f"{server.url}/items.json", "2023-01-31"))
        log = server.requests
    assert found and [r.status for r in log] == [429, 200]
    assert log[1].started >= log[0].started + 2


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("3", 3.0), ("0.5", 0.5), ("Thu, 01 Jan 2026 00:00:10 GMT", 10.0), ("soon", None), ("", None)],
)
def test_retry_after_is_read_as_seconds_or_an_http_date(value, seconds):
    now = 1767225600.0  # 2026-01-01T00:00:00Z
    assert retry_after_s(value, now) == seconds


def test_the_range_servers_throttle_answers_as_a_rate_limited_store():
    """The fault mode itself: per path, the first request and any before the time it named;
    per host, a window for every path once ``after`` requests were served."""
    per_path = Throttle(retry_after_s=3, scope="path")
    assert per_path.decide("/a.tif", 100.0) == "3"
    assert per_path.decide("/a.tif", 101.2) == "2"  # asked too early: throttled again
    assert per_path.decide("/b.tif", 101.2) == "3"  # another file: its own first request
    assert per_path.decide("/a.tif", 103.0) is None and per_path.decide("/x.json", 100) is None
    window = Throttle(retry_after_s=3, scope="host", after=1, http_date=True)
    assert window.decide("/a.tif", 100.5) is None  # the first request is served
    assert window.decide("/b.tif", 100.5) == "Thu, 01 Jan 1970 00:01:44 GMT"  # ceil(103.5)
    assert window.decide("/c.tif", 103.9) is not None and window.decide("/c.tif", 104.0) is None


# --- the client's threads -------------------------------------------------------------------------


def test_the_http_client_reuses_a_few_threads_for_many_requests(tmp_path, monkeypatch):
    """Each request of the range reader's client runs in a thread (urllib3 blocks), but not
    a new one each (issue 35): 60 requests, 20 at a time, are served by at most 20 threads
    and every byte arrives."""
    import asyncio
    import threading

    from ndvicube.read import http_store
    from ndvicube.read.http_store import HttpStore

    if hasattr(http_store, "_Workers"):  # none started yet: other tests' would serve too
        monkeypatch.setattr(http_store, "_WORKERS", http_store._Workers(64))
    (tmp_path / "f.bin").write_bytes(bytes(range(256)) * 64)
    threads: set[threading.Thread] = set()

    class Recorded(HttpStore):
        def _fetch(self, url, start, end):
            threads.add(threading.current_thread())  # the objects: an ident may be reused
            return super()._fetch(url, start, end)

    async def read_all(store) -> list[bytes]:
        out = []
        for wave in range(3):
            starts = [(wave * 20 + n) * 100 for n in range(20)]
            out += await asyncio.gather(
                *(store.get_range_async("f.bin", start=s, length=10) for s in starts)
            )
        return out

    with RangeHTTPServer(tmp_path) as server:
        got = asyncio.run(read_all(Recorded(server.url)))
        assert len(server.requests) == 60
    data = (tmp_path / "f.bin").read_bytes()
    assert got == [data[n * 100 : n * 100 + 10] for n in range(60)]
    assert 1 <= len(threads) <= 20 and all(t.daemon for t in threads)

"""Reliability, third round (issue 27): only what a retry can fix is retried, and as the server
asks.

* A COG server answering 429/503 with ``Retry-After`` is not asked again before that time, by
  either reader; other requests to that host wait too. Counted from the Range server's log.
* A COG the remote reader cannot decode (striped, a compression async-tiff lacks) goes to GDAL
  at once: no retry, no warning, the cube of a clean build.
"""

from __future__ import annotations

import collections
import logging
import os
import shutil
from pathlib import Path

import pytest
import rasterio

from ndvicube.jobs import build_cube
from ndvicube.read import remote
from ndvicube.read.retries import with_retries
from ndvicube.testing.rangeserver import RangeHTTPServer
from tests.fault_helpers import CUBE, cog_path, items_subset, ndvi_chunks, served_features

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
        # The remote reader's one header request, then GDAL's own reads of the file.
        assert seen[0] == ("GET", "bytes=0-4095", 206), path
        assert [s for s in seen if s[1] == "bytes=0-4095"] == [seen[0]], path
        assert all(status in (200, 206) for _, _, status in seen) and len(seen) <= 4, path


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

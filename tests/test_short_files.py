"""A COG shorter than its own header says (a truncated or incomplete upload, issue 33).

The server says so itself: a range past the end of the file gets 416, one reaching past it a 206
whose ``Content-Range`` gives the file's size. No retry can mend that, so the read fails at once
with one message naming the item, the asset, the URL, the cause and the fix (before: "corrupt
tile: ... Array::try_new. Got data length 0, expected 262144" or "HTTP response code: 416 for
the header", each after 4 retries). A connection cut mid-body (a network fault) is still retried:
``tests/test_faults.py::test_cog_faults_are_retried_and_the_cube_is_identical``.

``compute.reader: gdal`` too: GDAL never asks past the size it was told, so its failure
("TIFFReadEncodedTile() failed"; for a header cut short, no CRS) is followed by one check of the
header and of the last byte it points to (:mod:`ndvicube.read.short_file`), then the same
message, not retried (before: 4 retries of "TIFFReadEncodedTile() failed", or an
``AssertionError`` from odc-loader).
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest
import tifffile

from ndvicube.compute import Compute
from ndvicube.errors import UnreadableAssetError
from ndvicube.jobs import build_cube
from ndvicube.read.remote import HEADER_BYTES
from ndvicube.testing.faults import Faults
from ndvicube.testing.rangeserver import RangeHTTPServer
from tests.fault_helpers import CUBE, items_subset


@pytest.mark.parametrize("reader", ["range", "gdal"])
@pytest.mark.parametrize(
    "keep, size_said",
    [(0.5, None), (500, "it is 500 bytes long")],
    ids=["truncated-tiles", "short-header"],
)
def test_a_cog_shorter_than_its_header_says_fails_at_once_saying_so(
    catalog, tmp_path, caplog, keep, size_said, reader
):
    root = tmp_path / "archive"
    shutil.copytree(catalog.root / "cogs", root / "cogs", copy_function=shutil.copy)
    features = json.loads(items_subset(catalog, tmp_path / "local.json").read_text())["features"]
    victim = features[3]
    cog = root / Path(victim["assets"]["red"]["href"]).resolve().relative_to(catalog.root.resolve())
    data = cog.read_bytes()
    cog.write_bytes(data[: int(len(data) * keep) if keep < 1 else keep])
    caplog.set_level(logging.WARNING)
    with RangeHTTPServer(root) as server:
        url = server.url
        items = items_subset(catalog, tmp_path / "items.json", base_url=url)
        with pytest.raises(UnreadableAssetError) as error:
            build_cube(
                CUBE, items_path=items, out=tmp_path / "ndvi.zarr", compute=Compute(reader=reader)
            )
    asked = [r for r in server.requests if r.path.endswith(cog.name) and cog.parent.name in r.path]
    message = str(error.value)
    assert f"asset 'red' of item '{victim['id']}'" in message and url in message
    assert "the file is shorter than its TIFF header says" in message
    assert "truncated, or its upload did not complete" in message and "upload the file" in message
    assert size_said is None or size_said in message
    assert "retry" not in caplog.text and "attempts" not in message  # asked once, not 5 times
    if reader == "range":
        assert len(asked) <= 2  # its header, and its tiles once
    else:  # GDAL's one read, then the check: the header, and the last byte it points to (416)
        check = asked[-2:]
        assert check[0].range == f"bytes=0-{HEADER_BYTES - 1}" and check[1].status == 416
        assert len(asked) - len(check) <= 4  # the redirect probe, GDAL's size, header, tiles


def test_a_body_cut_mid_answer_through_gdal_is_checked_once_then_retried(catalog, tmp_path, caplog):
    """A whole file whose answers are cut (a network fault) fails GDAL's read in the same words;
    the check finds the file whole (its last byte is there), and the read is retried as before."""
    features = json.loads(items_subset(catalog, tmp_path / "local.json").read_text())["features"]
    cog = Path(features[3]["assets"]["red"]["href"]).resolve().relative_to(catalog.root.resolve())
    suffix = "/" + cog.as_posix()
    last = f"bytes={last_byte(catalog.root / cog)}-{last_byte(catalog.root / cog)}"
    caplog.set_level(logging.WARNING)
    faults = Faults(truncate_rate=0.5, only=(suffix,), seed=2)  # GDAL's tile reads cut, once
    with RangeHTTPServer(catalog.root, faults=faults) as server:
        items = items_subset(catalog, tmp_path / "items.json", base_url=server.url)
        build_cube(
            CUBE, items_path=items, out=tmp_path / "ndvi.zarr", compute=Compute(reader="gdal")
        )
    ranges = [r.range for r in server.requests if r.path.endswith(suffix)]
    assert "TIFFReadEncodedTile() failed.); retry 1/4" in caplog.text
    assert "shorter" not in caplog.text and (tmp_path / "ndvi.zarr").exists()
    check = ranges.index(f"bytes=0-{HEADER_BYTES - 1}")  # the check: the header, the last byte
    assert ranges[check + 1] == last and ranges.count(last) == 1  # after the first failure only
    assert ranges[check + 2] == "bytes=0-0"  # then the retry (its redirect probe first)


def last_byte(path: Path) -> int:
    """The last byte of ``path`` its TIFF header points to (its last tile's), read by tifffile."""
    with tifffile.TiffFile(path) as tif:
        blocks = [zip(p.dataoffsets, p.databytecounts, strict=True) for p in tif.pages]
        return max(o + n for page in blocks for o, n in page) - 1

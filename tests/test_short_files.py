"""A COG shorter than its own header says (a truncated or incomplete upload, issue 33).

The server says so itself: a range past the end of the file gets 416, one reaching past it a 206
whose ``Content-Range`` gives the file's size. No retry can mend that, so the read fails at once
with one message naming the item, the asset, the URL, the cause and the fix (before: "corrupt
tile: ... Array::try_new. Got data length 0, expected 262144" or "HTTP response code: 416 for
the header", each after 4 retries). A connection cut mid-body (a network fault) is still retried:
``tests/test_faults.py::test_cog_faults_are_retried_and_the_cube_is_identical``.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest

from ndvicube.compute import Compute
from ndvicube.errors import UnreadableAssetError
from ndvicube.jobs import build_cube
from ndvicube.testing.rangeserver import RangeHTTPServer
from tests.fault_helpers import CUBE, items_subset


@pytest.mark.parametrize(
    "keep, size_said",
    [(0.5, None), (500, "it is 500 bytes long")],
    ids=["truncated-tiles", "short-header"],
)
def test_a_cog_shorter_than_its_header_says_fails_at_once_saying_so(
    catalog, tmp_path, caplog, keep, size_said
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
            build_cube(CUBE, items_path=items, out=tmp_path / "ndvi.zarr", compute=Compute())
    asked = [r for r in server.requests if r.path.endswith(cog.name) and cog.parent.name in r.path]
    message = str(error.value)
    assert f"asset 'red' of item '{victim['id']}'" in message and url in message
    assert "the file is shorter than its TIFF header says" in message
    assert "truncated, or its upload did not complete" in message and "upload the file" in message
    assert size_said is None or size_said in message
    assert "retry" not in caplog.text and "attempts" not in message  # asked once, not 5 times
    assert len(asked) <= 2  # its header, and its tiles once

"""Helpers of the fault tests: the items of two months, served with a fake signed-URL token."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from ndvicube.demo import cube_spec
from ndvicube.search.stac import SearchRequest

BBOX = (82.599, 27.154, 82.617, 27.172)
CUBE = cube_spec()
MONTHS = ("2023-02", "2023-03")
TOKEN = "X-Amz-Signature=FAKE-TOKEN-4242"


def items_subset(catalog, out: Path, *, base_url: str | None = None, edit=None) -> Path:
    """The catalog's items of MONTHS under the cloud limit (as `scenes` would store them).

    With ``base_url`` the hrefs point at the Range server, with a fake signed-URL token.
    """
    doc = json.loads(catalog.items.read_text())
    doc["features"] = [
        f
        for f in doc["features"]
        if f["properties"]["datetime"][:7] in MONTHS and f["properties"]["eo:cloud_cover"] < 30
    ]
    root = Path(catalog.root).resolve().as_posix()
    for feature in doc["features"]:
        for asset in feature["assets"].values():
            if base_url:
                relative = Path(asset["href"]).resolve().as_posix()[len(root) :]
                asset["href"] = f"{base_url}{relative}?{TOKEN}"
        if edit:
            edit(feature)
    out.write_text(json.dumps(doc))
    return out


def served_features(catalog, tmp_path: Path, url: str) -> list[dict]:
    """The subset's features with hrefs on ``url`` (to learn assets' URL paths there)."""
    return json.loads(items_subset(catalog, tmp_path / "probe.json", base_url=url).read_text())[
        "features"
    ]


def ndvi_chunks(store: Path) -> dict[str, bytes]:
    """Chunk files of a cube's ndvi array, by name."""
    return {p.name: p.read_bytes() for p in sorted((store / "ndvi").glob("*.*.*"))}


def cog_path(feature: dict, key: str) -> str:
    """URL path of an item's asset on the Range server."""
    href = feature["assets"][key]["href"]
    return "/" + href.split("/", 3)[3].split("?")[0]


def demo_request(url: str, end: str, page_size: int = 100) -> SearchRequest:
    """A search of the demo box from 2023-01-01 to ``end`` at ``url``."""
    request = SearchRequest.from_params(
        url=url,
        collection="sentinel-2-c1-l2a",
        bbox=BBOX,
        start="2023-01-01",
        end=end,
        max_cloud_cover=30,
    )
    return dataclasses.replace(request, page_size=page_size)

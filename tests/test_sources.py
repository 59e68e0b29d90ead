"""Every kind of source the config's stac.url may name, and s3:// asset hrefs.

All run for real on loopback: a STAC API (rustac serve) with small pages, an ItemCollection
served over HTTP, a static catalog written by pystac, and COGs read through GDAL's S3 client
from the Range HTTP server standing in for an S3 endpoint.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pystac
import pytest
import rioxarray  # noqa: F401  (.rio on opened cubes: open_cube leaves that import to callers)

from ndvicube.cube.load import load_ndvi
from ndvicube.cube.spec import CubeSpec
from ndvicube.demo import expected_series, read_truth
from ndvicube.search.stac import SearchRequest, search
from ndvicube.testing.rangeserver import RangeHTTPServer
from ndvicube.testing.stacserver import StacApiServer
from ndvicube.timeseries.points import Point, extract_points
from tests.workflow_helpers import END, START, kept_items

BBOX = (82.599, 27.154, 82.617, 27.172)


def _request(url: str, **kw) -> SearchRequest:
    return SearchRequest(
        url=url,
        collection="sentinel-2-c1-l2a",
        bbox=BBOX,
        start=dt.date.fromisoformat(START),
        end=dt.date.fromisoformat(END),
        max_cloud_cover=30,
        **kw,
    )


def test_stac_api_pages_are_followed(catalog):
    with StacApiServer(catalog.collection, catalog.items) as api:
        found = search(_request(api.url, page_size=7))
    assert [i.id for i in found] == [f["id"] for f in kept_items(catalog)]
    assert len(found) > 7 * 5  # many pages


def test_remote_item_collection_over_http(catalog):
    with RangeHTTPServer(catalog.root) as server:
        found = search(_request(f"{server.url}/items.json"))
        assert any(r.path == "/items.json" for r in server.requests)
    assert [i.id for i in found] == [f["id"] for f in kept_items(catalog)]


def test_static_catalog_is_walked(catalog, tmp_path):
    static = pystac.Catalog(id="demo", description="demo catalog as a static STAC catalog")
    for item in pystac.ItemCollection.from_file(str(catalog.items)):
        static.add_item(item)
    static.normalize_hrefs(str(tmp_path / "static"))
    static.save(catalog_type=pystac.CatalogType.SELF_CONTAINED)
    found = search(_request(str(tmp_path / "static" / "catalog.json")))
    assert [i.id for i in found] == [f["id"] for f in kept_items(catalog)]
    # Asset hrefs stay usable: they point at the generated COGs.
    assert all(i.assets["red"].get_absolute_href().endswith("B04.tif") for i in found)


def test_unreachable_source_names_the_url():
    with pytest.raises(Exception, match=r"127\.0\.0\.1:9/v1.*configfile config/demo\.yaml"):
        search(_request("http://127.0.0.1:9/v1"))


@pytest.mark.parametrize("reader", ["range", "gdal"])
def test_s3_hrefs_are_read_with_gdals_settings_by_both_readers(catalog, monkeypatch, reader):
    # The Range server stands in for an S3 endpoint (path-style: /bucket/key), configured by
    # GDAL's variable names; nothing is signed (AWS_NO_SIGN_REQUEST). The remote reader
    # (obstore's S3 client) and GDAL (/vsis3/) read the same s3:// hrefs (moto: test_s3.py).
    from ndvicube.read import remote

    remote.reset()
    items = list(pystac.ItemCollection.from_file(str(catalog.items)))[:6]
    items = [i for i in items if i.properties["eo:cloud_cover"] < 30]
    root = catalog.root
    for item in items:
        for asset in item.assets.values():
            rel = asset.href[len(str(root.parent)) + 1 :]
            asset.href = f"s3://{rel}"  # bucket = the catalog folder's name
    with RangeHTTPServer(root.parent) as server:
        host = server.url.removeprefix("http://")
        for key, value in {
            "AWS_S3_ENDPOINT": host,
            "AWS_HTTPS": "NO",
            "AWS_VIRTUAL_HOSTING": "FALSE",
            "AWS_NO_SIGN_REQUEST": "YES",
        }.items():
            monkeypatch.setenv(key, value)
        cube = load_ndvi(items, CubeSpec(bbox=BBOX, crs="EPSG:32644"), reader=reader).compute()
        remote.reset()  # its S3 store was made from this test's environment
        paths = {r.path for r in server.requests}
    assert all(p.startswith(f"/{root.name}/cogs/") for p in paths)
    assert {p.rsplit("/", 1)[-1] for p in paths} == {"B04.tif", "B08.tif", "SCL.tif"}
    points = [Point(r.id, r.lon, r.lat) for r in pd.read_csv(catalog.points).itertuples()]
    got = extract_points(cube.rio.write_crs("EPSG:32644"), points)
    truth = expected_series(read_truth(catalog.truth), max_cloud_cover=30)
    merged = got.merge(truth, on=["point", "time"], suffixes=("", "_truth"), how="left")
    np.testing.assert_array_equal(merged["ndvi"].isna(), merged["ndvi_truth"].isna())
    np.testing.assert_allclose(merged["ndvi"], merged["ndvi_truth"], atol=1e-5, equal_nan=True)
    assert merged["ndvi"].notna().sum() >= 5

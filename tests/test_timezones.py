"""Acquisition times written with any UTC offset give the same cube (issue 27, item 1).

STAC asks for UTC, but a catalog may write the same instant as ``2023-01-16T19:10:39+14:00``,
``2023-01-15T17:10:39-12:00`` or with no zone at all. The demo catalog's items are rewritten
that way (the instants unchanged), searched as a JSON document and as a real STAC API (rustac),
and built into cubes by the cube job with both readers, COGs on a loopback Range server: the
point series must equal the ground truth, with one time step per pass.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ndvicube.compute import Compute
from ndvicube.cube.load import load_ndvi
from ndvicube.cube.store import open_cube
from ndvicube.demo import (
    DemoCatalogSpec,
    cube_spec,
    expected_series,
    generate_demo_catalog,
    read_truth,
    rewrite_hrefs,
)
from ndvicube.errors import NoScenesError
from ndvicube.jobs import build_cube
from ndvicube.search.stac import SearchRequest, read_items, search, write_items
from ndvicube.testing.rangeserver import RangeHTTPServer
from ndvicube.testing.stacserver import StacApiServer
from ndvicube.timeseries.points import Point, extract_points

#: Three passes: 2023-01-06 and 2023-01-11 (both tiles), 2023-01-16 (tile 44RPR only).
START, END = "2023-01-06", "2023-01-16"
PASSES = 3
#: How each item's time is written: an offset, ``Z``, no zone, or per tile (one pass, two offsets).
STYLES = {
    "Z": {},
    "naive": {},
    "+05:30": {},
    "+14:00": {},
    "-12:00": {},
    "mixed": {"44RPR": "+14:00", "44RQR": "Z"},
}


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """Eleven days of the demo catalog (5 items), its COGs on a Range server."""
    root = tmp_path_factory.mktemp("timezones")
    catalog = generate_demo_catalog(root, DemoCatalogSpec(start=START, end=END))
    with RangeHTTPServer(catalog.root) as server:
        served = rewrite_hrefs(catalog.items, root / "served.json", server.url, catalog.root)
        yield catalog, served


def written(utc: str, style: str) -> str:
    """The instant ``utc`` (``...Z``) written in ``style``: ``Z``, ``naive`` or an offset."""
    when = dt.datetime.fromisoformat(utc)
    if style == "Z":
        return utc
    if style == "naive":
        return when.replace(tzinfo=None).isoformat()
    hours, minutes = int(style[:3]), int(style[0] + style[4:])
    return when.astimezone(dt.timezone(dt.timedelta(hours=hours, minutes=minutes))).isoformat()


def with_times(items_json: Path, out: Path, style: str) -> Path:
    """A copy of ``items_json`` with every item's time written in ``style`` (per tile for
    ``mixed``)."""
    doc = json.loads(items_json.read_text())
    for feature in doc["features"]:
        props = feature["properties"]
        tile_style = STYLES[style].get(feature["id"].split("_")[1][1:], style)
        props["datetime"] = written(props["datetime"], tile_style)
    out.write_text(json.dumps(doc))
    return out


def request(url: str, start: str = START, end: str = END) -> SearchRequest:
    """A search of the demo box, every cloud cover kept (the truth has every item)."""
    return SearchRequest.from_params(
        url=url,
        collection="sentinel-2-c1-l2a",
        bbox=cube_spec().bbox,
        start=start,
        end=end,
        max_cloud_cover=101,
    )


def assert_series_equal_truth(cube, catalog) -> None:
    """Every point's series equals the truth, on the truth's solar days and no others."""
    points = [Point(r.id, r.lon, r.lat) for r in pd.read_csv(catalog.points).itertuples()]
    series = extract_points(cube, points)
    truth = expected_series(read_truth(catalog.truth), max_cloud_cover=101)
    assert sorted(set(series["time"])) == sorted(set(truth["time"]))
    merged = series.merge(truth, on=["point", "time"], suffixes=("", "_truth"), validate="1:1")
    assert len(merged) == len(truth) and merged["ndvi_truth"].notna().sum() > 10
    np.testing.assert_array_equal(merged["ndvi"].isna(), merged["ndvi_truth"].isna())
    np.testing.assert_allclose(merged["ndvi"], merged["ndvi_truth"], atol=1e-5, equal_nan=True)


@pytest.mark.parametrize("reader", ["range", "gdal"])
@pytest.mark.parametrize("style", list(STYLES))
def test_any_offset_gives_the_true_series_with_one_step_per_pass(small, tmp_path, style, reader):
    catalog, served = small
    original = {
        f["id"]: f["properties"]["datetime"] for f in json.loads(served.read_text())["features"]
    }
    found = search(request(str(with_times(served, tmp_path / "offsets.json", style))))
    write_items(found, tmp_path / "items.json")
    # Stored once in UTC: items.json holds the catalog's own instants, written with Z.
    assert {i.id: i.properties["datetime"] for i in read_items(tmp_path / "items.json")} == original
    out = build_cube(
        cube_spec(),
        items_path=tmp_path / "items.json",
        out=tmp_path / "ndvi.zarr",
        compute=Compute(reader=reader),
    )
    cube = open_cube(out)
    assert cube.sizes["time"] == PASSES
    assert cube["scenes"].values.tolist() == [2, 2, 1]
    assert_series_equal_truth(cube, catalog)


@pytest.mark.parametrize("style", ["mixed", "-12:00"])
def test_odc_stac_load_sees_the_same_solar_days(small, tmp_path, style):
    """The odc-stac path (``load_cube``) over items read with offsets: one step per pass."""
    catalog, _ = small
    items = read_items(with_times(catalog.items, tmp_path / "offsets.json", style))
    assert all(i.properties["datetime"].endswith("Z") for i in items)
    cube = load_ndvi(items, cube_spec())
    assert cube.sizes["time"] == PASSES
    assert_series_equal_truth(cube.to_dataset(), catalog)


DAYS = ("2023-01-15", "2023-01-16", "2023-01-17")


@pytest.mark.parametrize(
    ("style", "source"), [("-12:00", "json"), ("+14:00", "json"), ("-12:00", "api")]
)
def test_a_one_day_search_finds_the_scene_of_that_utc_day(small, tmp_path, style, source):
    """The 2023-01-16 scene (05:10 UTC, written 2023-01-15T17:10-12:00 or 2023-01-16T19:10+14:00)
    is found by a search of 2023-01-16 and of no other day. rustac answers with the times in UTC
    whatever it loaded, so through the API this checks the server's UTC range and the
    client-side filter agree; the JSON document is filtered here alone."""
    catalog, _ = small
    items = with_times(catalog.items, tmp_path / "offsets.json", style)

    def one_day(url: str, day: str) -> list[str]:
        try:
            return [i.id for i in search(request(url, day, day))]
        except NoScenesError:
            return []

    if source == "json":
        found = {day: one_day(str(items), day) for day in DAYS}
    else:
        with StacApiServer(catalog.collection, items) as api:
            found = {day: one_day(api.url, day) for day in DAYS}
    assert found == {DAYS[0]: [], DAYS[1]: ["S2B_T44RPR_20230116T051030_L2A"], DAYS[2]: []}


def test_items_are_rewritten_in_utc_once_where_they_are_read(small, tmp_path):
    """start/end_datetime too; times already in UTC are left as written."""
    catalog, _ = small
    doc = json.loads(catalog.items.read_text())
    first = doc["features"][0]["properties"]
    utc = first["datetime"]
    first["start_datetime"], first["end_datetime"] = written(utc, "-12:00"), utc
    first["datetime"] = written(utc, "+05:30")
    (tmp_path / "items.json").write_text(json.dumps(doc))
    item = read_items(tmp_path / "items.json")[0]
    assert item.datetime == dt.datetime.fromisoformat(utc)
    assert item.datetime.utcoffset() == dt.timedelta(0)
    assert [item.properties[k] for k in ("datetime", "start_datetime", "end_datetime")] == [utc] * 3

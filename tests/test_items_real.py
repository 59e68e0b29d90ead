"""Real Earth Search items: metadata parsing and the reprocessed-duplicate trap."""

from __future__ import annotations

import datetime as dt
import json

import pystac
import pytest

from ndvicube.cube.load import group_scenes
from ndvicube.search.items import (
    band_scaling,
    item_epsg,
    keep_newest_processing,
    processing_baseline,
    solar_day,
    tile_code,
)
from ndvicube.search.stac import SearchRequest, search


@pytest.fixture(scope="module")
def c1_items(shared_fixtures) -> list[pystac.Item]:
    path = shared_fixtures / "earth-search-v1" / "sentinel-2-c1-l2a_13TDE_2024-04.json"
    return list(pystac.ItemCollection.from_file(str(path)))


@pytest.fixture(scope="module")
def duplicate_items(shared_fixtures) -> list[pystac.Item]:
    path = (
        shared_fixtures
        / "earth-search-v1"
        / "sentinel-2-l2a_32T-32U_2020-03_reprocessed-duplicates.json"
    )
    return list(pystac.ItemCollection.from_file(str(path)))


def test_real_c1_items_parse(c1_items):
    assert len(c1_items) == 10
    for item in c1_items:
        assert {"red", "nir", "scl", "green", "blue"} <= set(item.assets)
        assert item_epsg(item) == 32613
        assert tile_code(item) == "13TDE"
        assert band_scaling(item, "red").scale == 0.0001
        assert band_scaling(item, "red").offset == -0.1
        assert band_scaling(item, "nir").nodata == 0
        scl = band_scaling(item, "scl", require_scale=False)
        assert (scl.scale, scl.offset, scl.nodata) == (1.0, 0.0, 0)
        assert processing_baseline(item).startswith("05.")


def test_proj_epsg_and_proj_code_both_read(shared_fixtures):
    path = shared_fixtures / "earth-search-v1" / "sentinel-2-c1-l2a_13TDE_2024-04.json"
    raw = json.loads(path.read_text())["features"][0]
    assert raw["properties"]["proj:epsg"] == 32613  # what Earth Search writes
    as_written = pystac.Item.from_dict(raw, migrate=False)
    assert "proj:code" not in as_written.properties
    assert item_epsg(as_written) == 32613
    migrated = pystac.Item.from_dict(raw)  # pystac >= 1.12 migrates to the newer proj:code
    assert migrated.properties["proj:code"] == "EPSG:32613"
    assert item_epsg(migrated) == 32613


def test_solar_day_of_real_items(c1_items):
    # 17:53 UTC at -105 deg is 10:53 local solar time: same calendar day.
    item = next(i for i in c1_items if i.id == "S2A_T13TDE_20240422T174753_L2A")
    assert solar_day(item, -105.07) == dt.date(2024, 4, 22)
    # At +120 deg the same instant is 01:53 local solar time of the next day.
    assert solar_day(item, 120.0) == dt.date(2024, 4, 23)


def test_real_cloud_filter_is_strict_less_than(c1_items, shared_fixtures, tmp_path):
    path = shared_fixtures / "earth-search-v1" / "sentinel-2-c1-l2a_13TDE_2024-04.json"
    request = SearchRequest(
        url=str(path),
        collection="sentinel-2-c1-l2a",
        bbox=(-105.2, 40.0, -105.0, 40.2),
        start=dt.date(2024, 3, 1),
        end=dt.date(2024, 4, 30),
        max_cloud_cover=30,
    )
    found = search(request)
    expected = sorted(
        (i for i in c1_items if i.properties["eo:cloud_cover"] < 30),
        key=lambda i: (i.datetime, i.id),
    )
    assert [i.id for i in found] == [i.id for i in expected]
    assert 0 < len(found) < len(c1_items)


def test_reprocessed_duplicates_keep_the_newest_processing(duplicate_items):
    kept, dropped = keep_newest_processing(duplicate_items)
    assert len(duplicate_items) == 16
    assert len(kept) == 8 and len(dropped) == 8
    assert all(i.id.endswith("_1_L2A") for i in kept)
    assert all(d.endswith("_0_L2A") for d in dropped)
    assert {band_scaling(i, "red").offset for i in kept} == {-0.1}
    assert {processing_baseline(i) for i in kept} == {"05.00"}


def test_items_of_different_offsets_are_never_fused(duplicate_items):
    # Without de-duplication the same day holds offset 0 and offset -0.1 items: they must land
    # in separate groups, each scaled with its own offset before merging.
    march2 = [i for i in duplicate_items if "20200302" in i.id]
    groups = group_scenes(march2, lon=9.0)
    assert len(groups) == 2
    assert {g.day for g in groups} == {dt.date(2020, 3, 2)}
    assert sorted(g.scaling("red").offset for g in groups) == [-0.1, 0.0]
    for g in groups:
        offsets = {band_scaling(i, "red").offset for i in march2 if i.id in g.item_ids}
        assert offsets == {g.scaling("red").offset}

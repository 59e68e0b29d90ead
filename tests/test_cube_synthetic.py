"""Cube building on the demo catalog through the same function the `cube` rule calls.

Covers what the end-to-end runs do not isolate: the newer ``proj:code`` field, and a scene
listed twice with different offsets (baseline 02.14, offset 0 vs 05.10, offset -0.1), which must
never be fused as raw digital numbers.
"""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pystac
import pytest
import rasterio

from ndvicube.cube.load import group_scenes, load_ndvi
from ndvicube.cube.spec import CloudMask, CubeSpec
from ndvicube.cube.store import open_cube
from ndvicube.demo import (
    DemoCatalogSpec,
    cube_spec,
    expected_series,
    generate_demo_catalog,
    read_truth,
)
from ndvicube.jobs import build_cube
from ndvicube.search.stac import SearchRequest, search, write_items
from ndvicube.timeseries.points import Point, extract_points

BBOX = (82.599, 27.154, 82.617, 27.172)
SPEC = CubeSpec(bbox=BBOX, crs="EPSG:32644", resolution=10)


def _points(catalog) -> list[Point]:
    return [Point(r.id, r.lon, r.lat) for r in pd.read_csv(catalog.points).itertuples()]


def _assert_matches_truth(series: pd.DataFrame, catalog) -> None:
    truth = expected_series(read_truth(catalog.truth), max_cloud_cover=101)
    merged = series.merge(truth, on=["point", "time"], suffixes=("", "_truth"), how="left")
    np.testing.assert_array_equal(merged["ndvi"].isna(), merged["ndvi_truth"].isna())
    np.testing.assert_allclose(merged["ndvi"], merged["ndvi_truth"], atol=1e-5, equal_nan=True)


@pytest.fixture(scope="module")
def short_catalog(tmp_path_factory):
    root = tmp_path_factory.mktemp("short")
    return generate_demo_catalog(root, DemoCatalogSpec(start="2023-02-01", end="2023-02-20"))


def test_proj_code_catalog_gives_the_same_cube(tmp_path_factory):
    root = tmp_path_factory.mktemp("projcode")
    spec = DemoCatalogSpec(start="2023-02-01", end="2023-02-20", proj_key="proj:code")
    catalog = generate_demo_catalog(root, spec)
    raw = json.loads(catalog.items.read_text())["features"][0]["properties"]
    assert raw["proj:code"] == "EPSG:32644" and "proj:epsg" not in raw
    items = list(pystac.ItemCollection.from_file(str(catalog.items)))
    _assert_matches_truth(extract_points(load_ndvi(items, SPEC), _points(catalog)), catalog)


def test_overlapping_tiles_of_a_pass_share_one_solar_day(short_catalog):
    items = list(pystac.ItemCollection.from_file(str(short_catalog.items)))
    groups = group_scenes(items, lon=82.608)
    assert len(groups) == len({i.datetime.date() for i in items})
    both = [g for g in groups if len(g.item_ids) == 2]
    assert both and all({i[5:10] for i in g.item_ids} == {"44RPR", "44RQR"} for g in both)
    cube = load_ndvi(items, SPEC)
    assert cube["scenes"].values.tolist() == [len(g.item_ids) for g in groups]


def _older_processing(item: pystac.Item, folder) -> pystac.Item:
    """The same scene as processed at baseline 02.14: offset 0, DN without the +1000."""
    old = item.clone()
    old.id = item.id.replace("_L2A", "_OLD_L2A")
    old.properties["s2:processing_baseline"] = "02.14"
    for key in ("red", "nir"):
        src_path = item.assets[key].href
        with rasterio.open(src_path) as src:
            data, profile = src.read(1), src.profile
        shifted = np.where(data > 0, data.astype("int32") - 1000, 0).clip(0).astype("uint16")
        dst_path = folder / f"{old.id}_{key}.tif"
        with rasterio.open(dst_path, "w", **profile) as dst:
            dst.write(shifted, 1)
        old.assets[key].href = str(dst_path)
        old.assets[key].extra_fields["raster:bands"][0]["offset"] = 0.0
    return old


def test_reprocessed_scene_is_deduplicated_by_search(short_catalog, tmp_path):
    items = list(pystac.ItemCollection.from_file(str(short_catalog.items)))
    old = _older_processing(items[0], tmp_path)
    write_items([*items, old], tmp_path / "both.json")
    found = search(
        SearchRequest(
            url=str(tmp_path / "both.json"),
            collection="sentinel-2-c1-l2a",
            bbox=BBOX,
            start=dt.date(2023, 2, 1),
            end=dt.date(2023, 2, 20),
            max_cloud_cover=101,
        )
    )
    assert old.id not in [i.id for i in found]
    assert items[0].id in [i.id for i in found]


def test_offsets_are_never_mixed_even_without_deduplication(short_catalog, tmp_path):
    # Both processings of a scene in one load: each is scaled with its own offset before the
    # solar day is merged, so the result still equals the truth (fusing raw DNs would not).
    items = list(pystac.ItemCollection.from_file(str(short_catalog.items)))
    old = _older_processing(items[0], tmp_path)
    both = [old, *items]  # the old processing first, so it wins where both are valid
    groups = group_scenes(both, lon=82.608)
    day = [g for g in groups if g.day == items[0].datetime.date()]
    assert sorted(g.scaling("red").offset for g in day) == [-0.1, 0.0]
    cube = load_ndvi(both, SPEC)
    assert cube.indexes["time"].is_unique
    _assert_matches_truth(extract_points(cube, _points(short_catalog)), short_catalog)


def test_build_cube_writes_a_store_equal_to_the_lazy_cube(short_catalog, tmp_path):
    items = list(pystac.ItemCollection.from_file(str(short_catalog.items)))
    write_items(items, tmp_path / "items.json")
    out = build_cube(cube_spec(), items_path=tmp_path / "items.json", out=tmp_path / "ndvi.zarr")
    import xarray as xr

    stored = xr.open_zarr(out)["ndvi"].values
    np.testing.assert_array_equal(stored, load_ndvi(items, SPEC).values)
    assert not (tmp_path / "ndvi.zarr.partial").exists()


def test_cloud_probability_mask_matches_the_truth_and_adds_cloud_rims(catalog, tmp_path):
    """With cloud_mask.max_probability the `cloud` asset masks too: here the rims SCL misses."""
    from ndvicube.errors import ItemMetadataError

    doc = json.loads(catalog.items.read_text())
    doc["features"] = [f for f in doc["features"] if f["properties"]["eo:cloud_cover"] < 30]
    (tmp_path / "items.json").write_text(json.dumps(doc))
    probability = cube_spec(cloud_mask=CloudMask(max_probability=30))
    build_cube(probability, items_path=tmp_path / "items.json", out=tmp_path / "p.zarr")
    series = extract_points(open_cube(tmp_path / "p.zarr")["ndvi"], _points(catalog))
    truth = read_truth(catalog.truth)
    want = expected_series(truth, max_cloud_cover=30, max_cloud_probability=30)
    merged = series.merge(want, on=["point", "time"], suffixes=("", "_truth"), validate="1:1")
    np.testing.assert_array_equal(merged["ndvi"].isna(), merged["ndvi_truth"].isna())
    np.testing.assert_allclose(merged["ndvi"], merged["ndvi_truth"], atol=1e-5, equal_nan=True)
    build_cube(cube_spec(), items_path=tmp_path / "items.json", out=tmp_path / "scl.zarr")
    with_probability = np.isnan(open_cube(tmp_path / "p.zarr")["ndvi"].values)
    scl_only = np.isnan(open_cube(tmp_path / "scl.zarr")["ndvi"].values)
    assert (with_probability >= scl_only).all()
    assert with_probability.sum() > scl_only.sum() + 1000  # the cloud rims SCL leaves clear
    # An item without the cloud asset cannot be masked so: named, like any missing asset.
    del doc["features"][2]["assets"]["cloud"]
    (tmp_path / "broken.json").write_text(json.dumps(doc))
    with pytest.raises(
        ItemMetadataError, match=f"{doc['features'][2]['id']}' has no asset 'cloud'"
    ):
        build_cube(probability, items_path=tmp_path / "broken.json", out=tmp_path / "b.zarr")


def test_a_store_recorded_with_the_earlier_flat_grid_is_copied_not_read(
    short_catalog, tmp_path, caplog
):
    """Stores written before the config sections record their grid with flat keys
    (``scl_buffer_m``, ``time_chunk``...). Such a store is reused - every day copied, no scene
    read - and written again recording today's nested grid; its values stay byte-identical."""
    import logging

    import zarr

    from ndvicube.cube.store import GRID_ATTR, read_attrs

    items = list(pystac.ItemCollection.from_file(str(short_catalog.items)))
    write_items(items, tmp_path / "items.json")
    spec, out = cube_spec(), tmp_path / "ndvi.zarr"
    build_cube(spec, items_path=tmp_path / "items.json", out=out)
    chunks = {p.name: p.read_bytes() for p in (out / "ndvi").glob("*.*.*")}
    grid = read_attrs(out)[GRID_ATTR]
    flat = {k: v for k, v in grid.items() if k not in ("cloud_mask", "cube")} | {
        "scl_classes": grid["cloud_mask"]["scl_classes"],
        "scl_buffer_m": grid["cloud_mask"]["buffer_m"],
        "max_cloud_probability": grid["cloud_mask"]["max_probability"],
        "time_chunk": grid["cube"]["time_chunk"],
        "spatial_chunk": grid["cube"]["spatial_chunk"],
    }
    zarr.open_group(str(out), mode="r+", zarr_format=2).attrs[GRID_ATTR] = json.dumps(flat)
    zarr.consolidate_metadata(str(out))
    assert read_attrs(out)[GRID_ATTR] == flat
    with caplog.at_level(logging.INFO, logger="ndvicube.cube.build"):
        build_cube(spec, items_path=tmp_path / "items.json", out=out)
    days = len(read_attrs(out)["ndvicube:days"])
    assert f"{days} day(s) copied from the existing cube, 0 scene(s) to read" in caplog.text
    assert read_attrs(out)[GRID_ATTR] == grid
    assert {p.name: p.read_bytes() for p in (out / "ndvi").glob("*.*.*")} == chunks
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="ndvicube.cube.build"):  # now nothing to do
        build_cube(spec, items_path=tmp_path / "items.json", out=out)
    assert "already holds these" in caplog.text

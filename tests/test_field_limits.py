"""One bad field cannot take the machine (issue 33): a field far from the others, a field set whose
grid is too large, a huge field, a GeoJSON in metres read as degrees - each refused or rejected
before any read, named by id and row; a field rejected after the search does not widen the grid;
the cube's metadata and the polygon tables' memory do not follow the grid or the fields' size."""

from __future__ import annotations

import dataclasses
import re

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from shapely.geometry import box

from ndvicube.config import validate_config
from ndvicube.cube.load import area_geobox
from ndvicube.cube.spec import Chunking
from ndvicube.cube.store import open_cube, read_attrs
from ndvicube.errors import ConfigError
from ndvicube.fields.chunks import sparse_spec
from ndvicube.jobs import build_cube
from ndvicube.timeseries.polygons import cell_batches, grid_transform, polygon_series
from tests.fault_helpers import CUBE, items_subset
from tests.workflow_helpers import demo_config

UTM = "EPSG:32644"
X0, Y0 = 659260.0, 3005440.0  # a demo parcel's corner, inside both demo tiles


def parcels(n_side: int = 20) -> gpd.GeoDataFrame:
    """``n_side``² parcels of 1 ha, 150 m apart, around the demo tiles (in degrees)."""
    geoms = [
        box(X0 + 150 * i, Y0 + 150 * j, X0 + 150 * i + 100, Y0 + 150 * j + 100)
        for i in range(n_side)
        for j in range(n_side)
    ]
    frame = gpd.GeoDataFrame({"id": [f"p{k}" for k in range(len(geoms))]}, geometry=geoms, crs=UTM)
    return frame.to_crs(4326)


def field_set_config(catalog, path, **fields_section) -> dict:
    config = demo_config(str(catalog.items), str(catalog.points))
    config["areas"] = {"parcels": {"polygons": str(path)}}
    if fields_section:
        config["fields"] = fields_section
    return config


def with_rows(path, *extra: tuple[str | None, shapely.Geometry]) -> None:
    """The parcels, then ``extra`` rows (id, geometry in degrees), as a GeoPackage."""
    more = gpd.GeoDataFrame({"id": [i for i, _ in extra]}, geometry=[g for _, g in extra], crs=4326)
    pd.concat([parcels(), more], ignore_index=True).to_file(path)


def test_a_field_far_from_the_others_fails_the_config_naming_it(catalog, tmp_path):
    """The issue's case: parcels at 82.6 E and one field at 10 E 50 N (a 750,015 x 271,169 px
    grid): refused when the config is read, naming that field by id and row."""
    with_rows(tmp_path / "f.gpkg", ("far", box(9.9995, 49.9995, 10.0005, 50.0005)))
    with pytest.raises(ConfigError) as err:
        validate_config(field_set_config(catalog, tmp_path / "f.gpkg"), base_dir=tmp_path)
    message = str(err.value)
    assert "areas.parcels.polygons" in message and "more than a UTM zone's width" in message
    assert "'far' (row 401) at lon 10.000, lat 50.000" in message
    assert re.search(r"grid would be [\d,]+ x [\d,]+ pixels \(EPSG:326\d\d\)", message)
    assert "p0" not in message and "\n" not in message


def test_a_grid_above_max_grid_pixels_names_the_outlying_field(catalog, tmp_path):
    """16 km from the parcels (3 km x 3 km), one field: a grid of about 1,900 x 330 px against
    a limit of 300,000 px; named by id and row. With the default limit it is fine."""
    with_rows(tmp_path / "f.gpkg", ("east", box(82.7995, 27.1595, 82.8005, 27.1605)))
    config = field_set_config(catalog, tmp_path / "f.gpkg", max_grid_pixels=300_000)
    expected = (
        r"more pixels than fields.max_grid_pixels \(300,000\)"
        r".*'east' \(row 401\) at lon 82.800.*raise fields.max_grid_pixels"
    )
    with pytest.raises(ConfigError, match=expected):
        validate_config(config, base_dir=tmp_path)
    area = validate_config(field_set_config(catalog, tmp_path / "f.gpkg"), base_dir=tmp_path)
    assert area.areas["parcels"].bbox[2] == pytest.approx(82.8005)


def test_a_huge_field_is_rejected_as_too_large_and_does_not_widen_the_box(catalog, tmp_path):
    """A 1 deg x 1 deg polygon among the parcels: rejected before the box is made (the box is
    the parcels'), and by the fields job as "too large" with its row."""
    from ndvicube.jobs import fields as fields_job

    with_rows(tmp_path / "f.gpkg", ("huge", box(82.0, 27.0, 83.0, 28.0)))
    settings = validate_config(field_set_config(catalog, tmp_path / "f.gpkg"), base_dir=tmp_path)
    assert settings.fields.max_field_km2 == 100
    bbox = settings.areas["parcels"].bbox
    assert bbox == pytest.approx(tuple(parcels().total_bounds), abs=1e-9)
    fields_job(polygons_path=tmp_path / "f.gpkg", items_path=catalog.items, crs=UTM,
               has_points=False, fields_out=tmp_path / "f.parquet",
               rejected_out=tmp_path / "r.csv", max_field_km2=100)  # fmt: skip
    rejected = pd.read_csv(tmp_path / "r.csv")
    too_large = rejected[rejected["reason"] == "too large"].values.tolist()
    assert too_large == [["huge", 401, "too large"]]


def test_a_geojson_in_metres_without_a_crs_is_refused_naming_cause_and_fix(catalog, tmp_path):
    """EPSG:3857 coordinates in a GeoJSON without a `crs` member are read as degrees: refused
    when the config is read (it used to pass, and the search said "Widen the dates")."""
    frame = parcels(2).to_crs(3857)
    path = tmp_path / "f.geojson"
    path.write_text(frame.set_crs(4326, allow_override=True).to_json())
    with pytest.raises(ConfigError) as err:
        validate_config(field_set_config(catalog, path), base_dir=tmp_path)
    message = str(err.value)
    assert re.search(r"coordinates reach x 9\d{6}\.\d \.\. 9\d{6}\.\d, y 3\d{6}", message), message
    assert "not degrees, probably projected metres" in message
    assert "Reproject the file to EPSG:4326" in message and "\n" not in message


def test_a_field_rejected_after_the_search_does_not_widen_the_grid(catalog, tmp_path):
    """The cube of a field set is gridded on its accepted fields: the config's box (which still
    counts a field outside every scene) gives a larger grid than the cube's; an unchanged set
    keeps the config's box to the last digit (a rerun reads nothing again)."""
    kept = parcels(2).to_crs(UTM)
    kept.to_parquet(tmp_path / "kept.parquet")
    far = shapely.box(X0 + 20_000, Y0, X0 + 20_100, Y0 + 100)  # 20 km east, as if rejected
    lonlat = gpd.GeoSeries([*kept.geometry, far], crs=UTM).to_crs(4326)
    spec = dataclasses.replace(CUBE, bbox=tuple(lonlat.total_bounds), cube=Chunking(8, 64))
    fitted = sparse_spec(spec, tmp_path / "kept.parquet", [], fit_grid=True)
    wide, narrow = area_geobox(spec).shape.yx, area_geobox(fitted).shape.yx
    assert narrow[1] < 30 and wide[1] > 2000
    assert sparse_spec(spec, tmp_path / "kept.parquet", [], fit_grid=False).bbox == spec.bbox
    again = dataclasses.replace(spec, bbox=tuple(kept.to_crs(4326).total_bounds))
    assert sparse_spec(again, tmp_path / "kept.parquet", [], fit_grid=True).bbox == again.bbox
    # Built: the store's grid is the fitted one, and the parcels' chunks are all it holds.
    items = items_subset(catalog, tmp_path / "items.json")
    build_cube(spec, items_path=items, out=tmp_path / "ndvi.zarr", fields=tmp_path /
               "kept.parquet", field_points=[], fit_grid=True)  # fmt: skip
    cube = open_cube(tmp_path / "ndvi.zarr")
    assert (cube.sizes["y"], cube.sizes["x"]) == narrow
    assert read_attrs(tmp_path / "ndvi.zarr")["ndvicube:chunks"] == [[0, 0]]


def test_the_metadata_of_a_huge_sparse_grid_costs_no_task_per_chunk(catalog, tmp_path):
    """A grid of 8 million chunks (the issue's took 21.9 GB): one parcel's chunk is built in
    seconds; before, Dask built a task per chunk for the store's metadata."""
    import time

    parcels(1).to_crs(UTM).to_parquet(tmp_path / "one.parquet")
    b = CUBE.bbox
    spec = dataclasses.replace(CUBE, bbox=(b[0] - 2.5, b[1] - 2.5, b[2] + 2.5, b[3] + 2.5),
                               cube=Chunking(8, 16))  # fmt: skip
    items = items_subset(catalog, tmp_path / "items.json")
    start = time.monotonic()
    build_cube(spec, items_path=items, out=tmp_path / "ndvi.zarr",
               fields=tmp_path / "one.parquet", field_points=[])  # fmt: skip
    took = time.monotonic() - start
    height, width = area_geobox(spec).shape.yx
    assert (height // 16) * (width // 16) > 8_000_000
    assert took < 15, took  # measured: 2.6 s; 600 s and more before (killed)


def test_polygon_tables_hold_one_batch_of_cells_at_a_time(clean, tmp_path):
    """Batches of ``batch_cells`` give the same table as one batch; the batches follow the
    setting (a polygon larger than a batch is one of its own)."""
    cube = open_cube(clean)
    x, y = float(cube.x[10]), float(cube.y[10])
    geoms = [box(x + 200 * k, y - 150, x + 200 * k + 150, y) for k in range(6)]
    geoms.append(box(x, y - 1500, x + 1200, y - 300))  # 1.4 ha x 10: 14,400 cells
    polygons = gpd.GeoDataFrame({"id": [f"f{k}" for k in range(7)]}, geometry=geoms, crs=UTM)
    # A 150 m square: 225 cells + 2 x 600 m / 10 m + 4 = 349 estimated.
    batches = cell_batches(polygons, grid_transform(cube), 800)
    assert batches == [slice(0, 2), slice(2, 4), slice(4, 6), slice(6, 7)]
    whole = polygon_series(cube, polygons, store=clean, batch_cells=10**9)
    split = polygon_series(cube, polygons, store=clean, batch_cells=800)
    pd.testing.assert_frame_equal(whole, split)
    assert np.isfinite(split["ndvi_mean"]).sum() > 0

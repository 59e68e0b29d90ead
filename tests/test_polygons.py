"""Polygon series: statistics of the valid pixels inside each polygon, against the cube itself.

The demo's parcels are boxes on the 20 m grid, so every pixel is wholly in or out of them and
the exact (coverage-weighted) statistics are those of the pixels sliced by hand; partly covered
pixels, overlaps and sub-pixel fields are tests/test_zonal.py's."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import Point, box

from ndvicube.cube.spec import CloudMask, CubeSpec
from ndvicube.cube.store import open_cube
from ndvicube.errors import ConfigError
from ndvicube.jobs import build_cube
from ndvicube.timeseries.polygons import polygon_series, read_polygons

BBOX = (82.599, 27.154, 82.617, 27.172)
CRS = "EPSG:32644"


@pytest.fixture(scope="module")
def parcels(catalog, tmp_path_factory):
    """The demo cube of February-March, and the parcels of the calendar's fields (UTM bounds)."""
    work = tmp_path_factory.mktemp("polygons")
    doc = json.loads(catalog.items.read_text())
    doc["features"] = [
        f
        for f in doc["features"]
        if f["properties"]["datetime"][:7] in ("2023-02", "2023-03")
        and f["properties"]["eo:cloud_cover"] < 30
    ]
    (work / "items.json").write_text(json.dumps(doc))
    spec = CubeSpec(
        bbox=BBOX, crs=CRS, resolution=10, cloud_mask=CloudMask(scl_classes=(3, 8, 9, 10))
    )
    cube_path = build_cube(spec, items_path=work / "items.json", out=work / "ndvi.zarr")
    calendar = json.loads(catalog.calendar.read_text())
    fields = [p for p in calendar["points"] if p["cover"] != "water"]
    frame = gpd.GeoDataFrame(
        {"id": [f"parcel_{p['parcel']}" for p in fields]},
        geometry=[box(*p["bounds_utm"]) for p in fields],
        crs=CRS,
    )
    frame.to_file(work / "parcels.gpkg")
    frame.to_crs("EPSG:4326").to_file(work / "parcels.geojson")
    return {"cube": open_cube(cube_path)["ndvi"], "frame": frame, "work": work}


def expected(cube, bounds) -> pd.DataFrame:
    """Mean, median and count of the cube pixels whose centres lie in ``bounds``, by slicing."""
    x0, y0, x1, y1 = bounds
    part = cube.sel(x=slice(x0, x1), y=slice(y1, y0)).values.reshape(cube.sizes["time"], -1)
    return pd.DataFrame(
        {
            "mean": np.nanmean(np.where(np.isfinite(part), part, np.nan), axis=1),
            "median": np.nanmedian(part, axis=1),
            "count": np.isfinite(part).sum(axis=1),
            "pixels": part.shape[1],
        }
    )


@pytest.mark.filterwarnings("ignore:Mean of empty slice", "ignore:All-NaN slice")
def test_polygon_statistics_equal_the_cube_sliced_by_hand(parcels):
    cube, frame = parcels["cube"], parcels["frame"]
    polygons = read_polygons(parcels["work"] / "parcels.gpkg", CRS)
    table = polygon_series(cube, polygons, time_block=3)  # blocks that split the chunks
    assert len(table) == len(frame) * cube.sizes["time"]
    for row in frame.itertuples():
        got = table[table.polygon == row.id].reset_index(drop=True)
        want = expected(cube, row.geometry.bounds)
        np.testing.assert_array_equal(got["count"], want["count"])
        np.testing.assert_allclose(got["ndvi_mean"], want["mean"], rtol=1e-6, equal_nan=True)
        np.testing.assert_allclose(got["ndvi_median"], want["median"], rtol=1e-6, equal_nan=True)
        np.testing.assert_allclose(got["clear_fraction"], want["count"] / want["pixels"])
    assert (table["clear_fraction"] < 1).any() and (table["clear_fraction"] == 1).any()


def test_geojson_in_degrees_gives_the_same_series(parcels):
    cube = parcels["cube"]
    gpkg = polygon_series(cube, read_polygons(parcels["work"] / "parcels.gpkg", CRS))
    geojson = polygon_series(cube, read_polygons(parcels["work"] / "parcels.geojson", CRS))
    # Reprojected to degrees and back, an edge may move by millimetres: a neighbouring cell
    # may enter with a coverage of about 1e-5, which moves a count by as much, a mean by much
    # less, and a weighted median by more (exactextract's median depends on how many cells
    # there are, whatever their weight; docs/polygons.md).
    pd.testing.assert_frame_equal(geojson, gpkg, check_exact=False, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(geojson["ndvi_mean"], gpkg["ndvi_mean"], rtol=1e-6)


def test_mostly_cloudy_dates_are_dropped_by_the_threshold(parcels):
    cube = parcels["cube"]
    polygons = read_polygons(parcels["work"] / "parcels.gpkg", CRS)
    full = polygon_series(cube, polygons)
    kept = polygon_series(cube, polygons, min_clear_fraction=0.9)
    cloudy = full["clear_fraction"] < 0.9
    assert cloudy.any() and (~cloudy & full["ndvi_mean"].notna()).any()
    assert kept.loc[cloudy, ["ndvi_mean", "ndvi_median"]].isna().all().all()
    pd.testing.assert_frame_equal(kept[~cloudy], full[~cloudy])
    pd.testing.assert_series_equal(kept["count"], full["count"])


def test_polygon_file_without_ids_is_refused_and_unusable_rows_are_left_out(tmp_path):
    """No `id` column: the file cannot be used. Points and repeated ids: those rows are left out
    (screened as invalid and duplicated, tests/test_fields.py), the rest is kept."""
    frame = gpd.GeoDataFrame({"name": ["a"]}, geometry=[box(0, 0, 1, 1)], crs="EPSG:4326")
    frame.to_file(tmp_path / "noid.geojson")
    with pytest.raises(ConfigError, match=r"has no `id` column \(its columns: name\)"):
        read_polygons(tmp_path / "noid.geojson", CRS)
    mixed = gpd.GeoDataFrame(
        {"id": ["a", "a", "b"]},
        geometry=[box(82.6, 27.16, 82.601, 27.161), box(82.61, 27.16, 82.611, 27.161),
                  Point(82.605, 27.16)],
        crs="EPSG:4326",
    )  # fmt: skip
    mixed.to_file(tmp_path / "mixed.geojson")
    kept = read_polygons(tmp_path / "mixed.geojson", CRS)
    assert list(kept["id"]) == ["a"] and kept.crs == CRS
    assert kept.to_crs("EPSG:4326").geometry[0].equals_exact(mixed.geometry[0], 1e-9)


def test_workflow_writes_polygon_series_smoothed_with_clear_weights(parcels, catalog, tmp_path):
    from ndvicube.timeseries.smoothing import smooth_series
    from ndvicube.timeseries.tables import read_series
    from tests.workflow_helpers import demo_config, planned_jobs, snakemake, write_config

    config = demo_config(str(catalog.items), str(catalog.points))
    config |= {
        "start": "2023-01-01",
        "end": "2023-04-30",
        "polygon_series": {"min_clear_fraction": 0.5},
    }
    config["smoothing"] = {"method": "whittaker", "lambda": 10}
    config["areas"]["seed"]["polygons"] = str(parcels["work"] / "parcels.gpkg")
    cfg = write_config(tmp_path / "c.yaml", config)
    dry = snakemake(tmp_path, cfg, "--dry-run")
    assert {k: v for k, v in planned_jobs(dry).items() if "polygon" in k} == {"polygon_tables": 1}
    result = snakemake(tmp_path, cfg, "--cores", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    results = tmp_path / "results/seed"
    raw = pd.read_csv(results / "polygons_raw.csv", parse_dates=["time"])
    want = polygon_series(
        open_cube(results / "ndvi.zarr")["ndvi"],
        read_polygons(parcels["work"] / "parcels.gpkg", CRS),
        min_clear_fraction=0.5,
    )
    np.testing.assert_allclose(raw["ndvi_mean"], want["ndvi_mean"], rtol=1e-6, equal_nan=True)
    assert list(raw.columns) == [
        "polygon", "time", "ndvi_mean", "ndvi_median", "count", "clear_fraction"
    ]  # fmt: skip
    smoothed = pd.read_csv(results / "polygons_smoothed.csv", parse_dates=["time"])
    expected_smooth = smooth_series(
        read_series(str(results / "polygons_raw.csv")), method="whittaker", lam=10
    )
    np.testing.assert_allclose(smoothed["ndvi"], expected_smooth["ndvi"], rtol=1e-6, equal_nan=True)
    unweighted = smooth_series(
        read_series(str(results / "polygons_raw.csv")).drop(columns="clear_fraction"),
        method="whittaker",
        lam=10,
    )
    assert not np.allclose(unweighted["ndvi"], smoothed["ndvi"], equal_nan=True)
    seasons = pd.read_csv(results / "polygons_phenology.csv", parse_dates=["pos"])
    calendar = json.loads(catalog.calendar.read_text())
    peaks = {
        f"parcel_{p['parcel']}": pd.Timestamp(s["peak"])
        for p in calendar["points"]
        for s in p["seasons"]
        if "2023-01-01" <= s["peak"] <= "2023-04-30"
    }
    assert sorted(seasons["polygon"]) == sorted(peaks)
    for row in seasons.itertuples():
        assert abs((row.pos - peaks[row.polygon]).days) <= 10


def test_large_tables_are_written_by_pyarrow_with_the_same_values(tmp_path, monkeypatch):
    """From ARROW_FROM_ROWS rows the series tables are written by pyarrow (pandas formats each
    float in Python, 10x slower): the same header and cells as pandas', up to the 7th digit of
    a tie, and ids with a comma or a quote still read back."""
    from ndvicube.timeseries import tables

    rng = np.random.default_rng(3)
    n = 2000
    table = pd.DataFrame(
        {
            "polygon": [f"f{k % 50}" for k in range(n - 1)] + ['a, "b"'],
            "time": np.repeat(pd.date_range("2023-01-01", periods=40, freq="5D"), 50),
            "ndvi_mean": rng.normal(0.4, 0.3, n) * 10.0 ** rng.integers(-6, 3, n),
            "ndvi_median": np.where(rng.random(n) < 0.2, np.nan, rng.normal(0.4, 0.3, n)),
            "count": rng.random(n) * 1000,
            "clear_fraction": rng.random(n).round(2),
        }
    )
    tables.write_polygon_series(table, tmp_path / "pandas.csv")
    monkeypatch.setattr(tables, "ARROW_FROM_ROWS", 1)
    tables.write_polygon_series(table, tmp_path / "arrow.csv")
    by_pandas = pd.read_csv(tmp_path / "pandas.csv", keep_default_na=False, na_values=[""])
    by_arrow = pd.read_csv(tmp_path / "arrow.csv", keep_default_na=False, na_values=[""])
    pd.testing.assert_frame_equal(by_arrow, by_pandas, check_exact=False, rtol=2e-7)
    assert by_arrow["polygon"].iloc[-1] == 'a, "b"'
    lines = (tmp_path / "arrow.csv").read_text().splitlines()
    assert lines[0] == (tmp_path / "pandas.csv").read_text().splitlines()[0]
    np.testing.assert_allclose(by_arrow["ndvi_mean"], table["ndvi_mean"], rtol=5e-7)

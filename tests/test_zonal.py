"""Exact zonal statistics of fields (ndvicube.timeseries.zonal) on the demo cube: weights against
shapely's pixel-by-pixel intersections, means against the cube weighted by them, exactextract's
own result on one date, overlapping and sub-pixel fields, both readers, a sparse store."""

from __future__ import annotations

import dataclasses
import json
import math

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from affine import Affine
from shapely import affinity
from shapely.geometry import MultiPolygon, Point, Polygon, box

from ndvicube.compute import Compute
from ndvicube.cube.spec import Chunking
from ndvicube.cube.store import cube_crs, open_cube
from ndvicube.demo import cube_spec, rewrite_hrefs
from ndvicube.jobs import build_cube
from ndvicube.timeseries.polygons import grid_transform, grid_weights, polygon_series
from ndvicube.timeseries.zonal import CoverageWeights, Segments, weighted_median

CRS = "EPSG:32644"
MONTHS = ("2023-02", "2023-03")
#: Small chunks, so that the fields spread over several and a sparse cube leaves some out.
SPEC = cube_spec(cube=Chunking(spatial_chunk=64))


def demo_fields(transform: Affine) -> gpd.GeoDataFrame:
    """Fields placed on the demo grid (x0, y1: its top-left corner), one of each kind."""
    x0, y1 = transform.c, transform.f

    def at(x: float, y: float) -> tuple[float, float]:
        return x0 + x, y1 - y

    shapes = {
        "rotated": affinity.rotate(box(*at(330, 545), *at(480, 455)), 23),
        "triangle": Polygon([at(900, 300), at(1100, 320), at(1000, 480)]),
        "overlap_a": affinity.rotate(box(*at(600, 1000), *at(760, 880)), 10),
        "overlap_b": affinity.rotate(box(*at(700, 960), *at(850, 820)), -15),
        "donut": Point(*at(1300, 1200)).buffer(60).difference(Point(*at(1300, 1200)).buffer(25)),
        "multi": MultiPolygon(
            [box(*at(200, 1500), *at(260, 1440)), box(*at(320, 1560), *at(345, 1530))]
        ),
        "tiny": box(*at(503, 707), *at(507, 704)),  # 4 m x 3 m inside one pixel
        "tiny_corner": box(*at(1197, 1603), *at(1203, 1597)),  # 6 m x 6 m on 4 pixels' corner
        "hanging": box(*at(-50, 800), *at(55, 700)),  # half off the grid's west edge
        "outside": box(*at(-500, 500), *at(-400, 400)),  # wholly off the grid
    }
    return gpd.GeoDataFrame({"id": list(shapes)}, geometry=list(shapes.values()), crs=CRS)


def pixel_shares(geometry, transform: Affine, shape: tuple[int, int]) -> dict[tuple, float]:
    """{(row, col): share of the pixel inside ``geometry``}: shapely's intersection of each
    pixel's square with it, over the pixel's area (no exactextract)."""
    res, x0, y1 = transform.a, transform.c, transform.f
    minx, miny, maxx, maxy = geometry.bounds
    cols = np.arange(
        max(0, math.floor((minx - x0) / res)), min(shape[1], math.ceil((maxx - x0) / res))
    )
    rows = np.arange(
        max(0, math.floor((y1 - maxy) / res)), min(shape[0], math.ceil((y1 - miny) / res))
    )
    rr, cc = np.meshgrid(rows, cols, indexing="ij")
    squares = shapely.box(x0 + cc * res, y1 - (rr + 1) * res, x0 + (cc + 1) * res, y1 - rr * res)
    share = shapely.area(shapely.intersection(squares, geometry)) / res**2
    keep = share > 1e-9
    return cell_dict(rr[keep], cc[keep], share[keep])


def cell_dict(rows: np.ndarray, cols: np.ndarray, values: np.ndarray) -> dict[tuple, float]:
    """{(row, col): value}."""
    cells = zip(rows.tolist(), cols.tolist(), strict=True)
    return dict(zip(cells, np.asarray(values).tolist(), strict=True))


def expected_series(values: np.ndarray, shares: dict[tuple, float]) -> pd.DataFrame:
    """Mean, count and clear fraction of ``values`` (time, y, x) weighted by ``shares``."""
    if not shares:
        empty = np.zeros(values.shape[0])
        return pd.DataFrame({"mean": empty + np.nan, "count": empty, "clear_fraction": empty})
    rows, cols = (np.array(k) for k in zip(*shares, strict=True))
    area = np.array(list(shares.values()))
    v = values[:, rows, cols].astype("float64")
    clear = np.isfinite(v)
    count = (clear * area).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(clear, v, 0.0) @ area / count
    return pd.DataFrame(
        {
            "mean": np.where(count > 0, mean, np.nan),
            "count": count,
            "clear_fraction": count / area.sum(),
        }
    )


@pytest.fixture(scope="module")
def cubes(catalog, cogs, tmp_path_factory):
    """Two months of the demo cube, built with each reader from the served COGs, and the
    same with only the chunks the fields touch (a sparse store, range reader)."""
    work = tmp_path_factory.mktemp("zonal")
    doc = json.loads(catalog.items.read_text())
    doc["features"] = [
        f
        for f in doc["features"]
        if f["properties"]["datetime"][:7] in MONTHS and f["properties"]["eo:cloud_cover"] < 30
    ]
    (work / "local.json").write_text(json.dumps(doc))
    items = rewrite_hrefs(work / "local.json", work / "items.json", cogs.url, catalog.root)
    stores = {}
    for reader in ("range", "gdal"):
        stores[reader] = build_cube(
            SPEC, items_path=items, out=work / f"{reader}.zarr", compute=Compute(reader=reader)
        )
    cube = open_cube(stores["range"], dask=False)
    fields = demo_fields(grid_transform(cube))
    weights = grid_weights(cube, fields)
    chunk = SPEC.cube.spatial_chunk
    touched = sorted(
        set(zip((weights.rows // chunk).tolist(), (weights.cols // chunk).tolist(), strict=True))
    )
    sparse = dataclasses.replace(SPEC, chunks=tuple(touched))
    stores["sparse"] = build_cube(sparse, items_path=items, out=work / "sparse.zarr")
    return {"stores": stores, "fields": fields, "touched": touched}


@pytest.fixture(scope="module")
def grid(cubes):
    """The dense cube's values (time, y, x), transform and shape."""
    cube = open_cube(cubes["stores"]["range"], dask=False)
    shape = (cube.sizes["y"], cube.sizes["x"])
    values = cube["ndvi"].values
    return {"cube": cube, "values": values, "transform": grid_transform(cube), "shape": shape}


def series(store, fields, **options) -> pd.DataFrame:
    return polygon_series(open_cube(store, dask=False), fields, store=store, **options)


def test_coverage_is_the_share_of_each_pixel_inside_the_field(cubes, grid):
    weights = grid_weights(grid["cube"], cubes["fields"])
    assert isinstance(weights, CoverageWeights) and weights.polygons == len(cubes["fields"])
    for k, geometry in enumerate(cubes["fields"].geometry):
        entries = slice(weights.starts[k], weights.starts[k + 1])
        cells = weights.cells[entries]
        got = cell_dict(weights.rows[cells], weights.cols[cells], weights.coverage[entries])
        want = pixel_shares(geometry, grid["transform"], grid["shape"])
        assert got.keys() == want.keys(), cubes["fields"]["id"][k]
        np.testing.assert_allclose([got[c] for c in want], list(want.values()), atol=1e-6)


@pytest.mark.parametrize("reader", ["range", "gdal"])
def test_field_means_equal_the_cube_weighted_by_pixel_areas(cubes, grid, reader):
    """Every field's mean, count and clear fraction against the cube's values weighted by
    shapely's pixel shares; the readers give the same cube, so the same truth serves both."""
    table = series(cubes["stores"][reader], cubes["fields"])
    assert len(table) == len(cubes["fields"]) * grid["cube"].sizes["time"]
    for field, geometry in zip(cubes["fields"]["id"], cubes["fields"].geometry, strict=True):
        got = table[table["polygon"] == field].reset_index(drop=True)
        want = expected_series(
            grid["values"], pixel_shares(geometry, grid["transform"], grid["shape"])
        )
        np.testing.assert_allclose(
            got["ndvi_mean"], want["mean"], rtol=1e-6, equal_nan=True, err_msg=field
        )
        np.testing.assert_allclose(got["count"], want["count"], atol=1e-5, err_msg=field)
        np.testing.assert_allclose(
            got["clear_fraction"], want["clear_fraction"], atol=1e-6, err_msg=field
        )
    partly = table[(table["clear_fraction"] > 0) & (table["clear_fraction"] < 1)]
    assert len(partly) and table["ndvi_mean"].notna().mean() > 0.5  # clouds on some dates


def test_both_readers_give_the_same_series(cubes):
    pd.testing.assert_frame_equal(
        series(cubes["stores"]["range"], cubes["fields"]),
        series(cubes["stores"]["gdal"], cubes["fields"]),
    )


def test_statistics_equal_exactextract_run_on_one_date(cubes, grid):
    """exactextract's own mean, median and count of the cube's values on a partly cloudy date
    (NaN its nodata): the same definitions, computed once per date by it, once for all by us."""
    from exactextract import exact_extract
    from exactextract.raster import NumPyRasterSource

    table = series(cubes["stores"]["range"], cubes["fields"])
    partly = table.groupby("time")["clear_fraction"].apply(lambda f: ((f > 0) & (f < 1)).sum())
    day = partly.idxmax()
    assert partly[day] >= 2
    values = grid["values"][list(grid["cube"]["time"].values).index(day)]
    t, (height, width) = grid["transform"], grid["shape"]
    raster = NumPyRasterSource(
        values,
        t.c,
        t.f + t.e * height,
        t.c + t.a * width,
        t.f,
        nodata=np.nan,
        srs_wkt=cube_crs(grid["cube"]).to_wkt(),
    )
    found = exact_extract(raster, cubes["fields"], ["mean", "median", "count"], output="pandas")
    mine = table[table["time"] == day].reset_index(drop=True)
    np.testing.assert_allclose(
        mine["ndvi_mean"], found["mean"].astype(float), rtol=1e-6, equal_nan=True
    )
    np.testing.assert_allclose(
        mine["ndvi_median"], found["median"].astype(float), rtol=1e-6, atol=1e-7, equal_nan=True
    )
    np.testing.assert_allclose(mine["count"], found["count"].astype(float), rtol=1e-6)


def test_overlapping_fields_each_keep_their_shared_pixels(cubes, grid):
    fields = cubes["fields"]
    pair = fields[fields["id"].isin(["overlap_a", "overlap_b"])]
    a, b = (pixel_shares(g, grid["transform"], grid["shape"]) for g in pair.geometry)
    assert len(a.keys() & b.keys()) >= 10  # they share pixels
    together = series(cubes["stores"]["range"], pair)
    for field in ("overlap_a", "overlap_b"):
        alone = series(cubes["stores"]["range"], pair[pair["id"] == field])
        pd.testing.assert_frame_equal(
            together[together["polygon"] == field].reset_index(drop=True), alone
        )


def test_a_field_smaller_than_a_pixel_gets_the_pixels_it_lies_on(cubes, grid):
    table = series(cubes["stores"]["range"], cubes["fields"])
    values, (x0, y1) = grid["values"], (grid["transform"].c, grid["transform"].f)
    tiny = table[table["polygon"] == "tiny"].reset_index(drop=True)
    pixel = values[:, 70, 50]  # 4 m x 3 m at x0 + 503..507 m, y1 - 707..704 m
    np.testing.assert_allclose(tiny["ndvi_mean"], pixel, rtol=1e-6, equal_nan=True)
    np.testing.assert_allclose(tiny["count"], np.where(np.isfinite(pixel), 0.12, 0.0), atol=1e-6)
    assert (
        set(tiny["clear_fraction"].round(6)) <= {0.0, 1.0} and tiny["ndvi_mean"].notna().sum() > 5
    )
    corner = table[table["polygon"] == "tiny_corner"].reset_index(drop=True)
    four = values[:, 159:161, 119:121].reshape(len(values), 4)  # 3 m x 3 m in each
    clear = np.isfinite(four).all(axis=1)
    np.testing.assert_allclose(corner["ndvi_mean"][clear], four[clear].mean(axis=1), rtol=1e-6)
    np.testing.assert_allclose(corner["count"][clear], 0.36, atol=1e-6)
    assert (x0, y1) == (grid["transform"].c, grid["transform"].f)


def test_a_field_off_the_grid_keeps_its_rows_without_values(cubes):
    table = series(cubes["stores"]["range"], cubes["fields"])
    outside = table[table["polygon"] == "outside"]
    assert outside["ndvi_mean"].isna().all() and outside["ndvi_median"].isna().all()
    assert (outside["count"] == 0).all() and (outside["clear_fraction"] == 0).all()


def test_a_sparse_store_reads_only_the_touched_chunks_and_gives_the_dense_series(
    cubes, monkeypatch
):
    import zarr

    reads = []
    original = zarr.Array.__getitem__

    def recording(self, selection):
        if isinstance(selection, tuple) and len(selection) == 3:
            reads.append((selection[1].start // 64, selection[2].start // 64))
        return original(self, selection)

    monkeypatch.setattr(zarr.Array, "__getitem__", recording)
    sparse = series(cubes["stores"]["sparse"], cubes["fields"])
    monkeypatch.undo()
    assert set(reads) == set(cubes["touched"])
    present = json.loads(open_cube(cubes["stores"]["sparse"]).attrs["ndvicube:chunks"])
    assert sorted(map(tuple, present)) == cubes["touched"]
    pd.testing.assert_frame_equal(sparse, series(cubes["stores"]["range"], cubes["fields"]))


def test_fields_in_another_crs_are_reprojected_to_the_cube(cubes):
    utm = series(cubes["stores"]["range"], cubes["fields"])
    degrees = series(cubes["stores"]["range"], cubes["fields"].to_crs("EPSG:4326"))
    # Reprojected there and back, an edge moves by millimetres: means and counts move by
    # 1e-11 and 1e-8, but a sliver of a pixel that comes or goes moves a weighted median by up
    # to 5e-4 (exactextract's median depends on the number of cells, whatever their weight).
    np.testing.assert_allclose(degrees["ndvi_mean"], utm["ndvi_mean"], rtol=1e-5)
    np.testing.assert_allclose(degrees["ndvi_median"], utm["ndvi_median"], atol=1e-3)
    np.testing.assert_allclose(degrees["count"], utm["count"], atol=1e-3)


def test_store_and_xarray_reads_give_the_same_series(cubes):
    store = cubes["stores"]["range"]
    by_store = series(store, cubes["fields"])
    by_xarray = polygon_series(open_cube(store), cubes["fields"], time_block=3)
    pd.testing.assert_frame_equal(by_xarray, by_store)


def test_weighted_median_with_equal_weights_is_the_median():
    rng = np.random.default_rng(7)
    lengths = rng.integers(0, 12, 300)
    starts = np.concatenate([[0], np.cumsum(lengths)])
    x = rng.normal(size=(4, starts[-1]))
    x[rng.random(x.shape) < 0.3] = np.nan
    x[:, : starts[3]] = np.round(x[:, : starts[3]], 1)  # ties
    got = weighted_median(x, np.isfinite(x).astype(float), Segments.from_starts(starts))
    for k in range(len(lengths)):
        part = x[:, starts[k] : starts[k + 1]]
        want = [np.median(r[np.isfinite(r)]) if np.isfinite(r).any() else np.nan for r in part]
        np.testing.assert_allclose(got[:, k], want, rtol=1e-12, equal_nan=True)


def test_weighted_median_is_exactextracts_weighted_quantile():
    """exactextract's weighted median worked by hand (src/weighted_quantiles.cpp)."""
    x = np.array([[1.0, 2.0, 5.0, 7.0, 9.0]])
    w = np.array([[1.0, 3.0, 0.25, 0.25, 0.5]])
    segments = Segments.from_starts(np.array([0, 2, 5]))
    # n = 2, s = (0, 1 x 3 + 1 x 1) = (0, 4), h = (2 - 1) x 4 / 2 = 2: halfway, 1.5.
    # n = 3, s = (0, 1 x 0.25 + 2 x 0.25, 2 x 0.5 + 2 x 0.5) = (0, 0.75, 2), h = 2 x 1 / 2 = 1:
    # between 7 (0.75) and 9 (2), a fifth of the way: 7.4.
    np.testing.assert_allclose(weighted_median(x, w, segments), [[1.5, 7.4]])

"""A cube built from a real Sentinel-2 L2A scene equals NDVI computed directly from its rasters.

The scene (../shared/fixtures/real-cogs, baseline 02.14, offset 0) is decimated 10x: 100 m red
and nir, 200 m SCL. Its item's hrefs and grids are rewritten to the local files, the cube is
built at 100 m by the same function the `cube` rule calls, and every pixel is compared with
values read straight from the GeoTIFFs at the pixel's centre.
"""

from __future__ import annotations

import json

import numpy as np
import pystac
import pytest
import rasterio
import rioxarray  # noqa: F401  (.rio on opened cubes: open_cube leaves that import to callers)
import xarray as xr

from ndvicube.cube.spec import CloudMask, CubeSpec
from ndvicube.cube.store import open_cube, read_attrs
from ndvicube.geo import utm_crs_for
from ndvicube.jobs import build_cube
from ndvicube.search.stac import write_items

SCENE = "S2A_29RKH_20200219_0_L2A"
FILES = {"red": "B04.tif", "nir": "B08.tif", "scl": "SCL.tif"}
# A 10 km box with about 20 % cloud (SCL 8/9/10) in the scene's north-east.
BBOX = (-11.06, 25.035, -10.965, 25.12)


@pytest.fixture(scope="module")
def scene_dir(shared_fixtures):
    return shared_fixtures / "real-cogs" / SCENE


@pytest.fixture(scope="module")
def real_cube(scene_dir, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("real")
    item = json.loads((scene_dir / f"{SCENE}.json").read_text())
    for key, name in FILES.items():
        with rasterio.open(scene_dir / name) as src:
            asset = item["assets"][key]
            asset["href"] = str(scene_dir / name)
            asset["proj:shape"] = list(src.shape)
            asset["proj:transform"] = list(src.transform)[:6]
    write_items([pystac.Item.from_dict(item)], tmp / "items.json")
    spec = CubeSpec(
        bbox=BBOX,
        crs=utm_crs_for(-11.0, 25.08),
        resolution=100,
        cloud_mask=CloudMask(scl_classes=(3, 8, 9, 10)),
    )
    out = build_cube(
        spec, items_path=tmp / "items.json", out=tmp / "ndvi.zarr", config={"test": "real scene"}
    )
    return out


def _direct_ndvi(scene_dir, xs, ys):
    """NDVI at pixel centres (xs, ys) read directly from the rasters (offset 0, scale 1e-4)."""
    values = {}
    for key, name in FILES.items():
        with rasterio.open(scene_dir / name) as src:
            data = src.read(1)
            rows, cols = rasterio.transform.rowcol(src.transform, xs.ravel(), ys.ravel())
            values[key] = data[np.asarray(rows), np.asarray(cols)].reshape(xs.shape)
    red = values["red"] * 0.0001 + 0.0
    nir = values["nir"] * 0.0001 + 0.0
    ndvi = (nir - red) / (nir + red)
    masked = (
        (values["red"] == 0)
        | (values["nir"] == 0)
        | (values["scl"] == 0)
        | np.isin(values["scl"], [3, 8, 9, 10])
    )
    return np.where(masked, np.nan, ndvi), values["scl"]


def test_real_scene_cube_equals_direct_ndvi(real_cube, scene_dir):
    cube = open_cube(real_cube)["ndvi"]
    assert cube.dims == ("time", "y", "x")
    assert cube.dtype == np.float32
    assert str(cube["time"].values[0])[:10] == "2020-02-19"
    assert str(cube.rio.crs) == "EPSG:32629"
    xs, ys = np.meshgrid(cube["x"].values, cube["y"].values)
    expected, scl = _direct_ndvi(scene_dir, xs, ys)
    got = cube.isel(time=0).values
    assert got.shape == expected.shape == (97, 98)  # 9.7 km x 9.8 km at 100 m
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    np.testing.assert_allclose(got, expected, atol=1e-6, equal_nan=True)
    cloud_fraction = np.isin(scl, [8, 9, 10]).mean()
    assert 0.05 < cloud_fraction < 0.5  # the box really exercises the mask
    assert 0.0 < np.nanmean(got) < 0.2  # desert: NDVI about 0.07


def test_real_scene_offset_zero_is_used(real_cube):
    # Baseline 02.14 declares offset 0: applying -0.1 would shift NDVI far from the direct value.
    attrs = read_attrs(real_cube)
    [item] = attrs["ndvicube:items"]
    assert item["id"] == SCENE
    assert item["processing_baseline"] == "02.14"
    assert set(item["hrefs"]) == {"red", "nir", "scl"}


def test_real_scene_cube_opens_georeferenced_in_gdal(real_cube):
    cube = open_cube(real_cube)["ndvi"]
    with rasterio.open(f'ZARR:"{real_cube}":/ndvi') as src:
        assert src.crs.to_epsg() == 32629
        assert src.transform == cube.rio.transform()
        assert src.shape == (cube.sizes["y"], cube.sizes["x"])
        np.testing.assert_array_equal(src.read(1), cube.isel(time=0).values)


def test_real_scene_cube_opens_with_xarray_and_rioxarray(real_cube):
    ds = xr.open_zarr(real_cube)
    assert ds["ndvi"].rio.crs.to_epsg() == 32629
    assert ds["ndvi"].rio.resolution() == (100.0, -100.0)

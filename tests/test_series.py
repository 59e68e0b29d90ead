"""Point lookup: the value of the pixel that contains the point, vectorised."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import rioxarray  # noqa: F401
import xarray as xr

from ndvicube.timeseries.points import Point, extract_points


def _cube(values, x0=500000.0, y0=3000000.0, res=10.0):
    t, ny, nx = values.shape
    da = xr.DataArray(
        values.astype("float32"),
        dims=("time", "y", "x"),
        coords={
            "time": pd.date_range("2023-01-01", periods=t, freq="5D"),
            "y": y0 - res / 2 - res * np.arange(ny),
            "x": x0 + res / 2 + res * np.arange(nx),
        },
    )
    return da.rio.write_crs("EPSG:32644")


def test_point_takes_the_pixel_that_contains_it():
    from pyproj import Transformer

    values = np.arange(2 * 4 * 5, dtype="float32").reshape(2, 4, 5)
    cube = _cube(values)
    to_ll = Transformer.from_crs("EPSG:32644", "EPSG:4326", always_xy=True)
    # Just inside the upper-left corner of pixel (row 2, col 3), 0.4 m from two edges.
    lon, lat = to_ll.transform(500000 + 30.4, 3000000 - 20.4)
    # Near the lower-right corner of pixel (row 1, col 0).
    lon2, lat2 = to_ll.transform(500000 + 9.6, 3000000 - 19.6)
    got = extract_points(cube, [Point("a", lon, lat), Point("b", lon2, lat2)])
    assert got["point"].tolist() == ["a", "a", "b", "b"]
    np.testing.assert_array_equal(
        got["ndvi"].to_numpy(), [values[0, 2, 3], values[1, 2, 3], values[0, 1, 0], values[1, 1, 0]]
    )


def test_point_outside_the_cube_is_refused():
    from pyproj import Transformer

    cube = _cube(np.zeros((1, 3, 3)))
    lon, lat = Transformer.from_crs("EPSG:32644", "EPSG:4326", always_xy=True).transform(
        500000 + 45, 3000000 - 5
    )
    with pytest.raises(Exception, match="outside the cube"):
        extract_points(cube, [Point("far", lon, lat)])


def test_quality_counts_clear_pixels_in_the_3x3_window():
    from pyproj import Transformer

    values = np.ones((2, 4, 5), dtype="float32")
    values[0, 0:3, 1:4] = np.nan  # day 0: the window around (1, 2) is all masked...
    values[0, 1, 2] = 0.5  # ...but its centre
    values[1, 0, 0] = np.nan  # day 1: the corner pixel masked
    cube = _cube(values)
    to_ll = Transformer.from_crs("EPSG:32644", "EPSG:4326", always_xy=True)
    inner = to_ll.transform(500000 + 25, 3000000 - 15)  # pixel (1, 2): 9 neighbours
    corner = to_ll.transform(500000 + 5, 3000000 - 5)  # pixel (0, 0): 4 inside the cube
    got = extract_points(cube, [Point("inner", *inner), Point("corner", *corner)])
    inner_rows = got[got.point == "inner"]
    assert inner_rows["ndvi"].tolist() == [0.5, 1.0]
    assert inner_rows["valid_pixels"].tolist() == [1, 9]
    np.testing.assert_allclose(inner_rows["clear_fraction"], [1 / 9, 1.0])
    corner_rows = got[got.point == "corner"]
    assert corner_rows["ndvi"].isna().tolist() == [False, True]
    # Day 0: of (0,0) (0,1) (1,0) (1,1), (0,1) and (1,1) are masked; day 1: (0,0) is.
    assert corner_rows["valid_pixels"].tolist() == [2, 3]
    np.testing.assert_allclose(corner_rows["clear_fraction"], [2 / 4, 3 / 4])

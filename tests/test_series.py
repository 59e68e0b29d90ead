"""Point lookup: the value of the pixel that contains the point, vectorised."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import rioxarray  # noqa: F401
import xarray as xr

from ndvicube.config import Point
from ndvicube.series import extract_points


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

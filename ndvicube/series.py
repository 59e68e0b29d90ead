"""Point time series from the cube: the value of the pixel that contains each point.

Lookup is vectorised - all points are projected at once and selected with one pointwise
``.sel(method="nearest")`` on the cube's pixel-centre coordinates - so thousands of points cost
one pass over the chunks they touch, not one read per point.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import rioxarray  # noqa: F401  (registers .rio, used for the cube CRS)
import xarray as xr

from ndvicube.config import Point
from ndvicube.errors import NdviCubeError
from ndvicube.geo import lonlat_to_crs


def extract_points(cube: xr.DataArray, points: Sequence[Point]) -> pd.DataFrame:
    """One row per point and time step (NaN rows kept), columns ``point,time,ndvi``.

    The nearest pixel centre to a point is the pixel containing it, since the grid is regular.
    Points outside the cube raise an error naming them.
    """
    xs, ys = lonlat_to_crs([p.lon for p in points], [p.lat for p in points], cube.rio.crs)
    _check_inside(cube, points, xs, ys)
    ids = [p.id for p in points]
    picked = cube.sel(
        x=xr.DataArray(xs, dims="point", coords={"point": ids}),
        y=xr.DataArray(ys, dims="point", coords={"point": ids}),
        method="nearest",
    ).compute()
    values = picked.transpose("point", "time").values
    return pd.DataFrame(
        {
            "point": np.repeat(ids, cube.sizes["time"]),
            "time": np.tile(cube["time"].values, len(ids)),
            "ndvi": values.ravel(),
        }
    )


def _check_inside(cube: xr.DataArray, points: Sequence[Point], xs, ys) -> None:
    """Nearest-pixel lookup would silently clamp outside points to the edge: refuse them."""
    x0, x1 = sorted((float(cube.x[0]), float(cube.x[-1])))
    y0, y1 = sorted((float(cube.y[0]), float(cube.y[-1])))
    half = abs(float(cube.x[1] - cube.x[0])) / 2 if cube.sizes["x"] > 1 else 0.0
    for p, x, y in zip(points, xs, ys, strict=True):
        if not (x0 - half <= x <= x1 + half and y0 - half <= y <= y1 + half):
            raise NdviCubeError(
                f"Point {p.id!r} (lon {p.lon}, lat {p.lat}) lies outside the cube "
                f"(x {x0 - half}..{x1 + half}, y {y0 - half}..{y1 + half} in {cube.rio.crs}). "
                "Move it inside its area's box."
            )

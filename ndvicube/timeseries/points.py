"""Point time series from the cube: each index's value at the pixel that contains each point.

Lookup is vectorised - all points are projected at once and their 3 x 3 neighbourhoods selected
with one pointwise ``.isel`` on the cube - so thousands of points cost one pass over the chunks
they touch, not one read per point.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import rioxarray  # noqa: F401  (registers .rio, used for the cube CRS)
import xarray as xr

from ndvicube.cube.store import as_dataset
from ndvicube.errors import NdviCubeError
from ndvicube.geo import Point, lonlat_to_crs


def extract_points(cube: xr.Dataset | xr.DataArray, points: Sequence[Point]) -> pd.DataFrame:
    """One row per point and time step (NaN rows kept): ``point,time``, each index, quality.

    Each index column (``ndvi``, ``evi``...) is the pixel containing the point (the nearest
    pixel centre, as the grid is regular). Quality comes from the 3 x 3 pixels around it (30 m
    at 10 m): ``valid_pixels`` how many of them are clear, ``clear_fraction`` that share of
    those inside the cube - a clear pixel among cloudy neighbours is often a cloud edge or a
    missed shadow, and the Whittaker smoother weights each date by it. The indices share one
    mask, so the quality is counted on the first. Points outside the cube raise an error
    naming them.
    """
    cube = as_dataset(cube)
    first = next(iter(cube.data_vars))
    xs, ys = lonlat_to_crs([p.lon for p in points], [p.lat for p in points], cube.rio.crs)
    _check_inside(cube, points, xs, ys)
    ids = [p.id for p in points]
    rows = cube.indexes["y"].get_indexer(ys, method="nearest")
    cols = cube.indexes["x"].get_indexer(xs, method="nearest")
    offsets = np.array([(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)])
    ny, nx = rows[:, None] + offsets[:, 0], cols[:, None] + offsets[:, 1]
    # Neighbours beyond the cube's edge do not exist: read a clipped index, count them out.
    inside = (ny >= 0) & (ny < cube.sizes["y"]) & (nx >= 0) & (nx < cube.sizes["x"])
    window = cube.isel(
        y=xr.DataArray(np.clip(ny, 0, cube.sizes["y"] - 1), dims=("point", "k")),
        x=xr.DataArray(np.clip(nx, 0, cube.sizes["x"] - 1), dims=("point", "k")),
    ).compute()  # one pointwise selection: (time, point, 9) per index
    values = {
        name: v.transpose("point", "time", "k").values for name, v in window.data_vars.items()
    }
    valid = (np.isfinite(values[first]) & inside[:, None, :]).sum(axis=2)
    unique = inside.sum(axis=1)
    return pd.DataFrame(
        {
            "point": np.repeat(ids, cube.sizes["time"]),
            "time": np.tile(cube["time"].values, len(ids)),
            **{name: v[:, :, 4].ravel() for name, v in values.items()},
            "valid_pixels": valid.ravel(),
            "clear_fraction": (valid / unique[:, None]).ravel(),
        }
    )


def _check_inside(cube: xr.Dataset, points: Sequence[Point], xs, ys) -> None:
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

"""Point time series from the cube: each index's value at the pixel that contains each point.

Lookup is vectorised - all points are projected at once and their 3 x 3 neighbourhoods selected
with one pointwise ``.isel`` on the cube - so thousands of points cost one pass over the chunks
they touch, not one read per point.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import xarray as xr

from ndvicube.cube.store import as_dataset, cube_crs, stored_as_read
from ndvicube.errors import NdviCubeError
from ndvicube.geo import Point, lonlat_to_crs

if TYPE_CHECKING:
    from pyproj import CRS


def extract_points(
    cube: xr.Dataset | xr.DataArray, points: Sequence[Point], *, store: str | Path | None = None
) -> pd.DataFrame:
    """One row per point and time step (NaN rows kept): ``point,time``, each index, quality.

    Each index column (``ndvi``, ``evi``...) is the pixel containing the point (the nearest
    pixel centre, as the grid is regular). Quality comes from the 3 x 3 pixels around it (30 m
    at 10 m): ``valid_pixels`` how many of them are clear, ``clear_fraction`` that share of
    those inside the cube - a clear pixel among cloudy neighbours is often a cloud edge or a
    missed shadow, and the Whittaker smoother weights each date by it. The indices share one
    mask, so the quality is counted on the first. Points outside the cube raise an error
    naming them.

    ``store``: the Zarr store ``cube`` was opened from. The pixels are then read from it with
    Zarr's vectorised indexing instead of xarray's, which imports Dask and builds a graph for
    a read of a few kilobytes (the tables job: 0.8 s of its 1-point run, docs/performance.md).
    """
    cube = as_dataset(cube)
    first = next(iter(cube.data_vars))
    crs = cube_crs(cube)
    xs, ys = lonlat_to_crs([p.lon for p in points], [p.lat for p in points], crs)
    _check_inside(cube, points, xs, ys, crs)
    ids = [p.id for p in points]
    rows = cube.indexes["y"].get_indexer(ys, method="nearest")
    cols = cube.indexes["x"].get_indexer(xs, method="nearest")
    offsets = np.array([(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)])
    ny, nx = rows[:, None] + offsets[:, 0], cols[:, None] + offsets[:, 1]
    # Neighbours beyond the cube's edge do not exist: read a clipped index, count them out.
    inside = (ny >= 0) & (ny < cube.sizes["y"]) & (nx >= 0) & (nx < cube.sizes["x"])
    ny, nx = np.clip(ny, 0, cube.sizes["y"] - 1), np.clip(nx, 0, cube.sizes["x"] - 1)
    names = list(cube.data_vars)
    if store is not None and all(stored_as_read(cube[name]) for name in names):
        values = _sample_store(store, names, ny, nx)
    else:
        values = _sample_cube(cube, names, ny, nx)
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


def _sample_cube(
    cube: xr.Dataset, names: list[str], ny: np.ndarray, nx: np.ndarray
) -> dict[str, np.ndarray]:
    """Each variable at the (point, k) pixels, as (point, time, k): one pointwise selection."""
    window = cube[names].isel(
        y=xr.DataArray(ny, dims=("point", "k")), x=xr.DataArray(nx, dims=("point", "k"))
    )
    return {name: v.transpose("point", "time", "k").values for name, v in window.compute().items()}


def _sample_store(
    store: str | Path, names: list[str], ny: np.ndarray, nx: np.ndarray
) -> dict[str, np.ndarray]:
    """:func:`_sample_cube` read straight from the Zarr store (Zarr reads each chunk touched
    once); the variables are (time, y, x) as ndvicube writes them."""
    from ndvicube.cube.zarrstore import open_group

    group = open_group(store)  # local or s3:// (the cube in an object store)
    values = {}
    for name in names:
        array = group[name]
        steps = np.arange(array.shape[0])[:, None, None]
        values[name] = array.vindex[steps, ny[None], nx[None]].transpose(1, 0, 2)
    return values


def _check_inside(cube: xr.Dataset, points: Sequence[Point], xs, ys, crs: CRS) -> None:
    """Nearest-pixel lookup would silently clamp outside points to the edge: refuse them."""
    x, y = cube.indexes["x"], cube.indexes["y"]  # pandas indexes: no xarray indexing
    x0, x1 = sorted((float(x[0]), float(x[-1])))
    y0, y1 = sorted((float(y[0]), float(y[-1])))
    half = abs(float(x[1] - x[0])) / 2 if len(x) > 1 else 0.0
    for p, x, y in zip(points, xs, ys, strict=True):
        if not (x0 - half <= x <= x1 + half and y0 - half <= y <= y1 + half):
            raise NdviCubeError(
                f"Point {p.id!r} (lon {p.lon}, lat {p.lat}) lies outside the cube "
                f"(x {x0 - half}..{x1 + half}, y {y0 - half}..{y1 + half} in {crs.to_string()}). "
                "Move it inside its area's box."
            )

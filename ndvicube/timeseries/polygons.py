"""Series of polygons (fields, plots, districts): statistics of the valid pixels inside each.

Polygons come from the ``fields`` job's ``fields.parquet`` (or any fields file
:mod:`ndvicube.fields.read` reads: any CRS, an ``id`` column), screened by
:mod:`ndvicube.fields.checks` (invalid, empty and repeated fields left out). Per polygon and solar
day the series holds, for each index, the mean and median of valid (clear) pixels whose centres lie
inside the polygon (``ndvi_mean``, ``ndvi_median``...), their ``count`` and ``clear_fraction`` =
count / pixels in the polygon (the indices share one mask; both are counted on the first). Dates
where less than ``min_clear_fraction`` of a polygon was clear keep their row (count and fraction)
with means and medians empty: a mostly cloudy field's few clear pixels are usually its edges or
cloud shadows missed by SCL.

Vectorised: the polygons are burnt once into a label raster on the cube's grid
(``rasterio.features.rasterize``), then each block of time steps is read once and reduced for all
polygons together by a pandas groupby on the labels - one pass over the cube whatever the number
of polygons. A pixel belongs to one polygon: where polygons overlap, the one listed later wins.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr


def polygon_columns(indices: list[str]) -> list[str]:
    """Columns of ``polygons_raw.csv`` for a cube with these index variables."""
    stats = [f"{name}_{stat}" for name in indices for stat in ("mean", "median")]
    return ["polygon", "time", *stats, "count", "clear_fraction"]


def read_polygons(path: str | Path, crs: str):
    """The fields of ``path`` that make series (``id`` and geometry) in ``crs``: those
    :func:`ndvicube.fields.screen_fields` accepts (a ``fields.parquet`` is already screened)."""
    from ndvicube.fields import read_fields, screen_fields

    return screen_fields(read_fields(path)).accepted.to_crs(crs)


def label_grid(polygons, cube: xr.Dataset | xr.DataArray) -> np.ndarray:
    """int32 raster on the cube's grid: 1 + the polygon's row where a pixel centre is inside."""
    import rioxarray  # noqa: F401  (registers .rio; open_cube leaves it to its callers)
    from rasterio.features import rasterize

    shapes = ((geom, n + 1) for n, geom in enumerate(polygons.geometry))
    return rasterize(
        shapes,
        out_shape=(cube.sizes["y"], cube.sizes["x"]),
        transform=cube.rio.transform(),
        fill=0,
        dtype="int32",
    )


def polygon_series(
    cube: xr.Dataset | xr.DataArray,
    polygons,
    *,
    min_clear_fraction: float = 0.0,
    time_block: int = 8,
) -> pd.DataFrame:
    """Each index's mean and median, the count and clear fraction per polygon and date."""
    from ndvicube.cube.store import as_dataset

    cube = as_dataset(cube)
    names = list(cube.data_vars)
    labels = label_grid(polygons, cube)
    inside = labels > 0
    owner = labels[inside] - 1
    pixels = np.bincount(owner, minlength=len(polygons))
    ys, xs = np.nonzero(inside)
    parts = []
    for start in range(0, cube.sizes["time"], time_block):
        block = cube.isel(time=slice(start, start + time_block)).compute()
        values = {name: block[name].values[:, ys, xs] for name in names}  # (time, pixels)
        parts.append(_reduce(values, owner, block["time"].values, len(polygons)))
    table = pd.concat(parts, ignore_index=True)
    table["clear_fraction"] = table["count"] / pixels[table["label"]].clip(min=1)
    cloudy = table["clear_fraction"] < min_clear_fraction
    stats = [c for c in table.columns if c.endswith(("_mean", "_median"))]
    table.loc[cloudy, stats] = np.nan
    table["polygon"] = polygons["id"].to_numpy()[table["label"]]
    return table[polygon_columns(names)]


def _reduce(
    values: dict[str, np.ndarray], owner: np.ndarray, times: np.ndarray, count: int
) -> pd.DataFrame:
    """Statistics of one block of time steps for every polygon (all dates x polygons kept)."""
    first = next(iter(values))
    steps = np.repeat(np.arange(len(times)), values[first].shape[1])
    long = pd.DataFrame({"step": steps, "label": np.tile(owner, len(times))})
    full = pd.MultiIndex.from_product([range(len(times)), range(count)], names=["step", "label"])
    columns = {}
    for name, v in values.items():
        stats = long.assign(v=v.ravel()).dropna().groupby(["step", "label"])["v"]
        stats = stats.agg(["mean", "median", "count"]).reindex(full)
        columns |= {f"{name}_mean": stats["mean"], f"{name}_median": stats["median"]}
        if name == first:
            columns["count"] = stats["count"].fillna(0).astype(int)
    table = pd.DataFrame(columns).reset_index()
    table["time"] = times[table["step"]]
    return table

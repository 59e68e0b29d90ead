"""Joining tile stores into one cube: hard links (what `join_tiles` does) vs copying the chunks.

One command, prints a table::

    python bench/bench_join.py [--tiles 2 2] [--days 64] [--tile-px 1024]

Writes ``rows x cols`` tile stores of a synthetic cube (float32, NaN where "masked", 8-day x
256 x 256 chunks, the layout of a cube tile job's output) with ``ndvicube.cube.store.write_cube``,
then times ``ndvicube.cube.store.join_tiles`` against a plain copy of the same chunk files
(``shutil.copytree``), the step a join without links would need.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import dask.array as da  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import xarray as xr  # noqa: E402

from ndvicube.cube.store import DAYS_ATTR, GRID_ATTR, join_tiles, write_cube  # noqa: E402
from ndvicube.cube.tiles import Tile, all_tiles  # noqa: E402

CRS = "EPSG:32644"
CHUNK = 256


def synthetic_tile(tile: Tile, days: int, px: int) -> xr.DataArray:
    """A tile of NDVI-like values (smooth field plus noise, 30% NaN), lazily."""
    times = pd.date_range("2023-01-01", periods=days, freq="5D").values
    x0, y0 = 600_000 + tile.col * px * 10, 3_000_000 - tile.row * px * 10
    data = da.random.default_rng(tile.row * 10 + tile.col).random(
        (days, px, px), chunks=(8, CHUNK, CHUNK), dtype="float32"
    )
    data = da.where(data < 0.3, np.nan, (data * 0.01 + 0.5).astype("float32"))
    return xr.DataArray(
        data,
        dims=("time", "y", "x"),
        coords={
            "time": times,
            "y": y0 - 5 - 10 * np.arange(px, dtype="float64"),
            "x": x0 + 5 + 10 * np.arange(px, dtype="float64"),
            "scenes": ("time", np.ones(days, "int32")),
        },
        name="ndvi",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiles", type=int, nargs=2, default=[2, 2])
    parser.add_argument("--days", type=int, default=64)
    parser.add_argument("--tile-px", type=int, default=1024)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="ndvicube-join-"))
    days = {
        str(d)[:10]: ["item"] for d in pd.date_range("2023-01-01", periods=args.days, freq="5D")
    }
    grid = {"cube": {"spatial_chunk": CHUNK, "time_chunk": 8}, "tile": None}
    stores = {}
    started = time.perf_counter()
    for tile in all_tiles(*args.tiles):
        cube = synthetic_tile(tile, args.days, args.tile_px)
        attrs = {DAYS_ATTR: days, GRID_ATTR: grid | {"tile": tile.name}}
        stores[tile] = write_cube(cube, tmp / f"tiles/{tile.name}.zarr", crs=CRS, attrs=attrs)
    built = time.perf_counter() - started
    files = sum(1 for _ in (tmp / "tiles").glob("*.zarr/ndvi/*.*.*"))
    size = sum(p.stat().st_size for p in (tmp / "tiles").glob("*.zarr/ndvi/*.*.*"))

    started = time.perf_counter()
    join_tiles(stores, tmp / "ndvi.zarr", crs=CRS)
    linked = time.perf_counter() - started
    started = time.perf_counter()
    for tile, store in stores.items():
        shutil.copytree(store / "ndvi", tmp / f"copy/{tile.name}")
    copied = time.perf_counter() - started
    joined = xr.open_zarr(tmp / "ndvi.zarr")["ndvi"]
    sample = joined.isel(time=slice(0, 8), y=slice(0, 512), x=slice(0, 512)).values
    first = xr.open_zarr(stores[Tile(0, 0, *args.tiles)])["ndvi"]
    assert np.array_equal(
        sample,
        first.isel(time=slice(0, 8), y=slice(0, 512), x=slice(0, 512)).values,
        equal_nan=True,
    )

    print(
        f"{args.tiles[0]} x {args.tiles[1]} tiles of {args.days} days x {args.tile_px}^2 px "
        f"({built:.1f} s to write them); joined cube {tuple(joined.shape)}\n"
    )
    print("| chunk files | MB on disk | join (hard links) s | copy of the chunks s | copy / join |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    print(f"| {files} | {size / 1e6:.0f} | {linked:.2f} | {copied:.2f} | {copied / linked:.1f} |")
    shutil.rmtree(tmp)


if __name__ == "__main__":
    main()

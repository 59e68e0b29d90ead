"""Series of polygons (fields, plots, districts): statistics of the valid pixels inside each.

Polygons come from the ``fields`` job's ``fields.parquet`` (or any fields file
:mod:`ndvicube.fields.read` reads: any CRS, an ``id`` column), screened by
:mod:`ndvicube.fields.checks` (invalid, empty and repeated fields left out). Per polygon and solar
day the series holds, for each index, the mean and median of the valid (clear) pixels in the
polygon, each weighted by the share of its area inside the polygon (``ndvi_mean``,
``ndvi_median``...: exact zonal statistics, :mod:`ndvicube.timeseries.zonal`), their ``count`` -
the clear pixels' summed coverage, a float: a pixel half inside counts 0.5 - and
``clear_fraction`` = count / the polygon's area in pixels (the indices share one mask; both are
counted on the first). Dates where less than ``min_clear_fraction`` of a polygon was clear keep
their row (count and fraction) with means and medians empty: a mostly cloudy field's few clear
pixels are usually its edges or cloud shadows missed by SCL.

Every polygon keeps all the pixels it touches, those it shares with an overlapping polygon
included, and one smaller than a pixel gets the pixels it lies on. The polygons' cells and
coverage are computed once (exactextract); then each block of dates is read once - from the
Zarr store, only the chunks the polygons touch - and reduced for all polygons together in numpy,
so the cost is one pass over those chunks whatever the number of polygons (docs/polygons.md).
The polygons are taken in batches of about ``batch_cells`` cells (:func:`cell_batches`), each a
pass of its own, so the memory follows that setting and not the fields' total size; the usual
field set (10,000 parcels of a hectare: 1.2 million cells) is one batch.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import numpy as np
import pandas as pd
import xarray as xr

if TYPE_CHECKING:
    from ndvicube.timeseries.zonal import CoverageWeights

T = TypeVar("T")


def polygon_columns(indices: list[str]) -> list[str]:
    """Columns of ``polygons_raw.csv`` for a cube with these index variables."""
    stats = [f"{name}_{stat}" for name in indices for stat in ("mean", "median")]
    return ["polygon", "time", *stats, "count", "clear_fraction"]


def read_polygons(path: str | Path, crs: str):
    """The fields of ``path`` that make series (``id`` and geometry) in ``crs``: those
    :func:`ndvicube.fields.screen_fields` accepts (a ``fields.parquet`` is already screened)."""
    from ndvicube.fields import read_fields, screen_fields

    return screen_fields(read_fields(path)).accepted.to_crs(crs)


#: Cells (pixels a polygon touches, counted once per polygon) whose weights and values are held
#: at once: the polygons are taken in batches of about this many (``polygon_series.batch_cells``),
#: so the job's memory follows this number, not the fields' total size. A polygon larger than a
#: batch is a batch of its own (``fields.max_field_km2`` bounds it).
BATCH_CELLS = 2_000_000


def polygon_series(
    cube: xr.Dataset | xr.DataArray,
    polygons,
    *,
    min_clear_fraction: float = 0.0,
    time_block: int = 8,
    store: str | Path | None = None,
    weights: CoverageWeights | None = None,
    batch_cells: int = BATCH_CELLS,
) -> pd.DataFrame:
    """Each index's weighted mean and median, the count and clear fraction per polygon and
    date (:mod:`.zonal`); rows date by date, polygons in their order within each date.

    ``polygons``: ``id`` and geometry in the cube's CRS. ``store``: the Zarr store ``cube`` was
    opened from; the cells are then read from it chunk by chunk, only the chunks the polygons
    touch (:func:`read_cells`), a block of the store's time chunks at a time. Without it, they
    are read through xarray, ``time_block`` dates at a time. ``weights``: the polygons'
    :func:`grid_weights` if already made (then in one batch). Otherwise the polygons are taken
    in consecutive batches of about ``batch_cells`` cells (:func:`cell_batches`), each read and
    reduced on its own: a chunk shared by two batches is read twice, the memory is one batch's.
    """
    from ndvicube.cube.store import as_dataset

    cube = as_dataset(cube)
    names = list(cube.data_vars)
    batches = (
        [slice(0, len(polygons))]
        if weights is not None
        else cell_batches(polygons, grid_transform(cube), batch_cells)
    )
    parts: dict[str, list[np.ndarray]] = {}
    totals = []
    for batch in batches:
        chosen = polygons.iloc[batch]
        batch_weights = grid_weights(cube, chosen) if weights is None else weights
        found = _batch_statistics(cube, names, batch_weights, store, time_block)
        for key, value in found.items():
            parts.setdefault(key, []).append(value)
        totals.append(batch_weights.total())
    joined = {key: [np.concatenate(arrays, axis=1)] for key, arrays in parts.items()}
    return _table(cube, polygons, np.concatenate(totals), joined, names, min_clear_fraction)


def _batch_statistics(cube, names, weights, store, time_block) -> dict[str, np.ndarray]:
    """(dates, polygons) statistics of one batch of polygons (its ``weights``)."""
    from ndvicube.timeseries.zonal import zonal_statistics

    parts: dict[str, list[np.ndarray]] = {}
    blocks = read_cells(cube, names, weights, store=store, time_block=time_block)
    for values in prefetched(blocks):
        for name, v in values.items():
            stats = zonal_statistics(v, weights)
            parts.setdefault(f"{name}_mean", []).append(stats["mean"])
            parts.setdefault(f"{name}_median", []).append(stats["median"])
            if name == names[0]:
                parts.setdefault("count", []).append(stats["count"])
    if not parts:  # a cube without dates
        empty = np.zeros((0, weights.polygons))
        keys = [f"{n}_{s}" for n in names for s in ("mean", "median")] + ["count"]
        return {key: empty for key in keys}
    return {key: np.concatenate(arrays) for key, arrays in parts.items()}


def cell_batches(polygons, transform, batch_cells: int) -> list[slice]:
    """Consecutive runs of ``polygons`` of at most about ``batch_cells`` cells each (a larger
    polygon alone), the cells of a polygon estimated from its area and perimeter on the grid
    of ``transform``: area / pixel + 2 x perimeter / pixel side + 4, about what exactextract
    finds for a rectangle, more for a ragged outline."""
    side = min(abs(transform.a), abs(transform.e))
    geometries = polygons.geometry
    cells = geometries.area.to_numpy() / (abs(transform.a * transform.e))
    cells = cells + 2 * geometries.length.to_numpy() / side + 4
    batches, start, held = [], 0, 0.0
    for k, count in enumerate(np.nan_to_num(cells)):
        if k > start and held + count > batch_cells:
            batches.append(slice(start, k))
            start, held = k, 0.0
        held += count
    batches.append(slice(start, len(cells)))
    return batches


def _table(cube, polygons, total_cells, parts, names, min_clear_fraction) -> pd.DataFrame:
    """The long table of the (dates, polygons) statistics in ``parts`` (``total_cells``: each
    polygon's area in cells)."""
    dates, count = cube.sizes["time"], len(polygons)
    columns = {key: np.concatenate(arrays).ravel() for key, arrays in parts.items()}
    total = np.tile(total_cells, dates)
    with np.errstate(invalid="ignore", divide="ignore"):
        columns["clear_fraction"] = np.where(total > 0, columns["count"] / total, 0.0)
    cloudy = columns["clear_fraction"] < min_clear_fraction
    for key in columns:
        if key.endswith(("_mean", "_median")):
            columns[key][cloudy] = np.nan
    table = pd.DataFrame(
        {
            "polygon": np.tile(polygons["id"].to_numpy(), dates),
            "time": np.repeat(cube["time"].values, count),
        }
        | columns
    )
    return table[polygon_columns(names)]


def grid_weights(cube: xr.Dataset | xr.DataArray, polygons) -> CoverageWeights:
    """Each polygon's cells and coverage fractions on the cube's grid (:mod:`.zonal`);
    polygons in another CRS than the cube's (declared on the frame) are reprojected first."""
    from ndvicube.cube.store import cube_crs
    from ndvicube.timeseries.zonal import coverage_weights

    crs, geometries = cube_crs(cube), polygons.geometry
    if geometries.crs is not None and not crs.equals(geometries.crs):
        geometries = geometries.to_crs(crs)
    shape = (cube.sizes["y"], cube.sizes["x"])
    return coverage_weights(geometries, transform=grid_transform(cube), shape=shape, crs=crs)


def grid_transform(cube: xr.Dataset | xr.DataArray):
    """The cube's affine transform from its pixel-centre coordinates (no rioxarray import)."""
    from affine import Affine

    x, y = cube.indexes["x"], cube.indexes["y"]
    if len(x) < 2 or len(y) < 2:
        import rioxarray  # noqa: F401  (registers .rio: a one-pixel-wide cube has no spacing)

        return cube.rio.transform()
    dx, dy = float(x[1] - x[0]), float(y[1] - y[0])
    return Affine(dx, 0.0, float(x[0]) - dx / 2, 0.0, dy, float(y[0]) - dy / 2)


def prefetched(blocks: Iterator[T]) -> Iterator[T]:
    """``blocks``, the next one read in a thread while the caller reduces this one.

    Reading a block (Zarr decoding its chunks) and reducing it (numpy's sorts and sums) both
    leave the GIL, so with a second core free the reads (a third of the statistics step of
    bench/bench_fields_tables.py) run beside the reductions instead of before them.
    """
    from concurrent.futures import ThreadPoolExecutor

    done = object()
    with ThreadPoolExecutor(1, thread_name_prefix="ndvicube-cells") as pool:
        ahead = pool.submit(next, blocks, done)
        while (block := ahead.result()) is not done:
            ahead = pool.submit(next, blocks, done)
            yield block


def read_cells(
    cube: xr.Dataset,
    names: list[str],
    weights: CoverageWeights,
    *,
    store: str | Path | None = None,
    time_block: int = 8,
) -> Iterator[dict[str, np.ndarray]]:
    """Each variable's values at the cells of ``weights``, as (dates, cells) float32 arrays,
    one block of dates after another.

    From ``store``: per time chunk of the store, each spatial chunk that holds a cell is read
    whole (one Zarr read, which is how Zarr decodes it anyway) and the cells picked out; a
    chunk absent from a sparse store reads as NaN, and no other chunk is read. Zarr's own
    pointwise ``vindex`` does the same reads but costs 7 times more for a million cells
    (bench/bench_fields_tables.py).
    """
    from ndvicube.cube.store import stored_as_read

    if store is not None and all(stored_as_read(cube[name]) for name in names):
        yield from _store_cells(store, names, weights)
        return
    rows = xr.DataArray(weights.rows, dims="cell")
    cols = xr.DataArray(weights.cols, dims="cell")
    for start in range(0, cube.sizes["time"], time_block):
        block = cube[names].isel(time=slice(start, start + time_block), y=rows, x=cols)
        yield {name: v.transpose("time", "cell").values for name, v in block.compute().items()}


def _store_cells(
    store: str | Path, names: list[str], weights: CoverageWeights
) -> Iterator[dict[str, np.ndarray]]:
    """:func:`read_cells` from the Zarr store (variables (time, y, x), as ndvicube writes)."""
    from ndvicube.cube.zarrstore import open_group

    group = open_group(store)  # local or s3:// (the cube in an object store)
    arrays = {name: group[name] for name in names}
    steps, height, width = arrays[names[0]].chunks
    chunks = _cells_by_chunk(weights.rows, weights.cols, height, width)
    for start in range(0, arrays[names[0]].shape[0], steps):
        stop = min(start + steps, arrays[names[0]].shape[0])
        values = {}
        for name, array in arrays.items():
            out = np.empty((stop - start, len(weights.rows)), dtype=array.dtype)
            for (row, col), cells in chunks:
                window = array[start:stop, row : row + height, col : col + width]
                out[:, cells] = window[:, weights.rows[cells] - row, weights.cols[cells] - col]
            values[name] = out
        yield values


def _cells_by_chunk(
    rows: np.ndarray, cols: np.ndarray, height: int, width: int
) -> list[tuple[tuple[int, int], np.ndarray]]:
    """The cells in each spatial chunk: ((first row, first column), cell indices) per chunk."""
    key = (rows // height) * (cols.max(initial=0) // width + 1) + cols // width
    order = np.argsort(key, kind="stable")
    groups = np.split(order, np.flatnonzero(np.diff(key[order])) + 1) if len(order) else []
    return [
        ((int(rows[g[0]] // height * height), int(cols[g[0]] // width * width)), g) for g in groups
    ]

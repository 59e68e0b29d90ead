"""The cube engine: one Dask task per write block, reading, masking and writing its own chunks.

A write block is ``time_chunk`` solar days by a square of ``block_px`` pixels (a whole number
of ``spatial_chunk`` chunks, sized from the COGs' internal tiles: :func:`block_size`). Its task
(:func:`ndvicube.cube.blocks.write_block`):

1. reads, for each day of the block, the pixels of every scene whose footprint touches it: all
   requests of the block in flight at once, each COG tile decoded once per process
   (:mod:`ndvicube.read.tiles`), or through GDAL (``compute.reader: gdal``, local files,
   unusual TIFFs) - each source pasted or resampled exactly as odc-stac's reader does;
2. fuses the scenes of one pass (first valid pixel wins), scales each group of items with its own
   ``raster:bands``, masks (with the SCL buffer read across the block's border), computes the
   indices and merges the groups of one solar day, all in numpy;
3. writes its chunks of every index variable into the store with zarr; days the existing store
   already holds are copied from it instead.

The graph holds one task per block (and the plan), so it runs the same under Dask's threaded
scheduler, a local cluster or a ``tcp://`` scheduler: a task returns the scenes it could not
read, it never reports them through this process's memory.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ndvicube.cube.plan import DayPlan, EnginePlan, GroupPlan, Source
from ndvicube.cube.spec import CubeSpec

if TYPE_CHECKING:
    import pystac
    import xarray as xr
    from odc.geo.geobox import GeoBox

    from ndvicube.compute import Compute
    from ndvicube.cube.blocks import BlockResult
    from ndvicube.cube.load import SceneGroup
    from ndvicube.cube.metadata import CubeLayout

log = logging.getLogger(__name__)

#: Largest write block side (pixels): bounds a task's memory whatever the COG tiles are.
MAX_BLOCK_PX = 2048
#: Smallest write block side (pixels) where the cube is wider: blocks of COGs tiled 256 or 512
#: px that narrow are many small tasks, each paying its planning, requests and zarr writes
#: (issue 35: the cube job on 512 px tiles took 2x its floor with 512 px blocks).
MIN_BLOCK_PX = 1024
#: The tile width assumed for COGs GDAL reads (local files, ``reader: gdal``): Sentinel-2's
#: 10 m COGs on Earth Search are tiled 1024 px, GDAL's own default is 512.
UNPROBED_TILE_PX = 512


# --- planning (in the job's process) -----------------------------------------------------------


def plan_build(
    items: Sequence[pystac.Item],
    groups: Sequence[SceneGroup],
    days: Sequence[str],
    reused: dict[str, int],
    spec: CubeSpec,
    compute: Compute,
    *,
    store: str,
    old_store: str | None,
    collect: bool,
    deadline_s: float,
    job_s: float,
    old_chunks: frozenset[tuple[int, int]] | None = None,
) -> EnginePlan:
    """The plan of a build: which sources each day reads, the grids, the block size.

    A sparse cube (``spec.chunks``) whose existing store lacks some of its chunks
    (``old_chunks``) keeps the groups of its reused days too: those chunks are read for every
    day, the others copied.
    """
    from ndvicube.cube.load import read_geobox
    from ndvicube.cube.sources import planned_sources
    from ndvicube.search.items import sort_items

    load_geobox, crop = read_geobox(spec)
    crop = crop or (slice(0, load_geobox.shape.y), slice(0, load_geobox.shape.x))
    ordered = sort_items([i for i in items if any(i.id in g.item_ids for g in groups)])
    planned = planned_sources(ordered, spec.assets, load_geobox.crs)
    by_id = {i.id: i for i in ordered}
    touched = _chunks_touched(planned.footprints, load_geobox, spec.cube.spatial_chunk)
    sources = {
        item_id: tuple(
            Source(
                item_id,
                asset,
                _href(by_id[item_id].assets[asset]),
                rasters[asset],
                touched[item_id],
            )
            for asset in spec.assets
        )
        for item_id, rasters in planned.rasters.items()
    }
    by_day: dict[str, list[GroupPlan]] = {}
    for group in groups:
        by_day.setdefault(group.day.isoformat(), []).append(
            GroupPlan(group, tuple(sources[i] for i in _fusing_order(group, by_id)))
        )
    new_chunks = old_chunks is not None and (
        spec.chunks is None or bool(set(spec.chunks) - old_chunks)
    )
    day_plans = tuple(
        DayPlan(
            day,
            tuple(by_day.get(day, ())) if day not in reused or new_chunks else (),
            reused.get(day),
        )
        for day in days
    )
    from ndvicube.cube.indices import column

    plan = EnginePlan(
        spec=spec,
        days=day_plans,
        load_geobox=load_geobox,
        crop=crop,
        block_px=spec.cube.spatial_chunk,
        cfgs=planned.cfgs,
        reader=compute.reader,
        rio_env=_gdal_env(compute.reader, sources.values()),
        store=store,
        old_store=old_store,
        variables=tuple(column(n) for n in spec.indices),
        collect=collect,
        deadline_s=deadline_s,
        job_ends_epoch=time.time() + job_s,
    )
    if spec.chunks is not None:  # a sparse cube: one block per present chunk, no more read
        return dataclasses.replace(plan, chunks=frozenset(spec.chunks), old_chunks=old_chunks)
    return dataclasses.replace(plan, block_px=block_size(plan, next(plan.sources(), None)))


def _gdal_env(reader: str, sources) -> dict[str, Any] | None:
    """GDAL's settings for the block tasks, captured here when GDAL reads some of the build's
    COGs (``reader: gdal``, local files); None when the remote reader reads them all: a block
    that falls back to GDAL (an unusual TIFF) configures it in its own process then
    (:func:`ndvicube.read.gdal.cloud_read_env`), and no other job imports rasterio for it."""
    from ndvicube.read import remote

    hrefs = [s.href for item in sources for s in item]
    if reader == "range" and all(remote.is_remote(h) for h in hrefs):
        return None
    from ndvicube.read.gdal import cloud_read_env

    return cloud_read_env()


def _fusing_order(group: SceneGroup, items: dict) -> list[str]:
    """The group's items in odc-stac's order within a group: acquisition time, then id."""
    from ndvicube.search.items import acquired

    return sorted(group.item_ids, key=lambda i: (acquired(items[i]), i))


def _chunks_touched(footprints: dict, geobox: GeoBox, chunk: int) -> dict[str, frozenset]:
    """Per item, the chunks of ``geobox`` its footprint (in the grid's CRS) touches
    (odc-stac's own test)."""
    from odc.geo.geobox import GeoboxTiles

    tiles = GeoboxTiles(geobox, (chunk, chunk))
    return {
        item_id: frozenset() if footprint is None else frozenset(tiles.tiles(footprint))
        for item_id, footprint in footprints.items()
    }


def _href(asset) -> str:
    return asset.get_absolute_href() or asset.href


def block_size(plan: EnginePlan, first: Source | None) -> int:
    """The side of a write block: the COGs' internal tile, at least :data:`MIN_BLOCK_PX`, in
    whole chunks.

    A block narrower than a COG tile decodes that tile once per block it touches (a 1024 px
    tile, 16 times for 256 px blocks); one at least as wide as the tile touches each tile at
    most four times, and the tile cache serves the neighbours. Smaller COG tiles still get
    blocks of :data:`MIN_BLOCK_PX`: fewer, larger tasks and requests. Capped by the cube's own
    size and :data:`MAX_BLOCK_PX`.
    """
    chunk = plan.spec.cube.spatial_chunk
    tile = _tile_px(first.href, plan.reader, plan.deadline_s) if first is not None else chunk
    side = chunk * max(1, math.ceil(max(tile, MIN_BLOCK_PX) / chunk))
    largest = chunk * math.ceil(max(plan.shape) / chunk)
    return max(chunk, min(side, largest, max(chunk, MAX_BLOCK_PX // chunk * chunk)))


def _tile_px(href: str, reader: str, timeout_s: float) -> int:
    """Width of the internal tiles of the COG at ``href``, from its header (which the blocks
    then find parsed); :data:`UNPROBED_TILE_PX` where GDAL reads (no request made for it)."""
    from ndvicube.read import remote

    if reader != "range" or not remote.is_remote(href):
        return UNPROBED_TILE_PX
    future = remote.runtime().submit(remote.cog_layout(href))
    try:
        return int(future.result(timeout=min(timeout_s, 10.0)).tif.tile_width)
    except Exception:  # the block tasks will say what is wrong with it (a stall, an error)
        return UNPROBED_TILE_PX


def request_headers(plan: EnginePlan) -> None:
    """Ask for the header of every remote COG the build reads, at once, without waiting: the
    block tasks of this process find them parsed (one round trip for all, not one per wave
    of blocks). Only where the tasks read in this process (the threaded scheduler)."""
    from ndvicube.read import remote

    if plan.reader != "range":
        return
    hrefs = dict.fromkeys(s.href for s in plan.sources() if remote.is_remote(s.href))
    rt = remote.runtime()
    for href in hrefs:
        rt.submit(_quietly(remote.cog_layout(href)))


def forget_reads(plan: EnginePlan) -> None:
    """Drop this process's headers and decoded tiles of the build's COGs once it is written:
    a later pass (``skip``'s second) or job reads them afresh, and the memory is given back."""
    from ndvicube.read import remote
    from ndvicube.read.tiles import TILES

    hrefs = {s.href for s in plan.sources()}
    TILES.forget(*hrefs)
    for href in hrefs:
        remote.forget(href)


async def _quietly(coroutine) -> None:
    """Await ``coroutine``, leaving its error to the block that needs the result."""
    try:
        await coroutine
    except Exception:
        return


# --- the graph ---------------------------------------------------------------------------------


def run_blocks(plan: EnginePlan, on_block: Callable[[BlockResult], None]) -> list:
    """Compute every block on the configured Dask scheduler; ``on_block`` sees each result as
    it arrives (in this process). Returns the unreadable assets of every block."""
    from ndvicube.compute import current_scheduler
    from ndvicube.cube.blocks import write_block

    nt = plan.grid()[0]
    keys = [("ndvicube-block", t, by, bx) for t in range(nt) for by, bx in plan.blocks()]
    graph: dict[Any, Any] = {"ndvicube-plan": plan}
    graph |= {key: (write_block, "ndvicube-plan", *key[1:]) for key in keys}
    unreadable: list = []

    def done(result: BlockResult) -> None:
        unreadable.extend(result.unreadable)
        on_block(result)

    scheduler = current_scheduler()
    if hasattr(scheduler, "get_executor") or type(scheduler).__name__ == "Client":
        _run_distributed(scheduler, graph, keys, done)
    else:
        _run_local(graph, keys, done, pool=scheduler)
    return unreadable


def _run_local(
    graph: dict, keys: list, done: Callable[[BlockResult], None], *, pool: Any = None
) -> None:
    """The threaded scheduler on the job's ``pool``, results reported as each block finishes.
    Pool and callback are this call's, not Dask's process-wide settings: another job in the
    same process (Snakemake's, ``profiles/default``) computes beside it with its own."""
    from concurrent.futures import CancelledError

    import dask.threaded

    from ndvicube.compute import interrupted

    wanted = set(keys)

    def posttask(key, result, dsk, state, worker_id) -> None:
        if key in wanted:
            done(result)

    # A callback as Dask's tuple (start, start_state, pretask, posttask, finish): given to this
    # call, it is not added to Dask's process-wide active set as `with Callback(...)` would be.
    try:
        dask.threaded.get(graph, keys, pool=pool, callbacks=[(None, None, None, posttask, None)])
    except (RuntimeError, CancelledError) as error:  # the pool shut down under the build
        stopped = interrupted(pool)
        if stopped is None:
            raise
        raise stopped from error


def _run_distributed(client, graph: dict, keys: list, done: Callable[[BlockResult], None]) -> None:
    """A ``distributed`` client: futures gathered as they complete."""
    from distributed import as_completed

    futures = client.get(graph, keys, sync=False)
    try:
        for future in as_completed(futures, loop=client.loop):  # not Dask's default client
            done(future.result())
    except BaseException:
        client.cancel(futures)
        raise


def write_scenes(store: str | Path, scenes: Sequence[int]) -> None:
    """The ``scenes`` coordinate (items merged into each day), written before the blocks."""
    from ndvicube.cube.zarrstore import open_group

    open_group(store, mode="r+")["scenes"][:] = np.asarray(scenes, dtype="int32")


def cube_layout(plan: EnginePlan) -> CubeLayout | None:
    """The store's metadata as :mod:`ndvicube.cube.metadata` writes it without xarray: the
    same bytes as :func:`template`'s, for the grids it covers (else None: :func:`template`)."""
    from ndvicube.cube.indices import long_name
    from ndvicube.cube.metadata import CubeLayout, covers

    if not covers(plan.load_geobox, plan.crop):
        return None
    names = dict(zip(plan.variables, plan.spec.indices, strict=True))
    return CubeLayout(
        geobox=plan.load_geobox,
        crop=plan.crop,
        days=[d.day for d in plan.days],
        variables={v: long_name(names[v]) for v in plan.variables},
        crs=plan.spec.crs,
        time_chunk=plan.spec.cube.time_chunk,
        spatial_chunk=plan.spec.cube.spatial_chunk,
    )


def template(plan: EnginePlan, scenes: Sequence[int]) -> xr.Dataset:
    """The store's dataset, lazily (nothing is computed from it): coordinates, one (time, y, x)
    float32 variable per index chunked as written, ``scenes`` per day."""
    import dask.array as da
    import xarray as xr
    from odc.geo.xr import xr_coords

    from ndvicube.cube.indices import long_name

    coords = xr_coords(plan.load_geobox, crs_coord_name="spatial_ref")
    dataset = xr.Dataset(coords={k: v for k, v in coords.items() if k in ("y", "x")})
    dataset = dataset.isel(y=plan.crop[0], x=plan.crop[1])
    tc, sc = plan.spec.cube.time_chunk, plan.spec.cube.spatial_chunk
    shape = (len(plan.days), *plan.shape)
    times = np.array([np.datetime64(d.day, "ns") for d in plan.days])
    names = dict(zip(plan.variables, plan.spec.indices, strict=True))
    for v in plan.variables:
        data = da.empty(shape, chunks=(tc, sc, sc), dtype="float32")
        dataset[v] = xr.DataArray(
            data, dims=("time", "y", "x"), attrs={"long_name": long_name(names[v])}
        )
    return dataset.assign_coords(time=times, scenes=("time", np.asarray(scenes, dtype="int32")))

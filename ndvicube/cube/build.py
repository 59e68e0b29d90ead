"""The cube job's passes: which days to read, the store written block by block, unreadable
scenes left out and read around, and what made the cube (its provenance attributes).

:mod:`ndvicube.jobs.cube` reads the job's items and writes its outputs; this module turns the
usable items into the store: days the store already holds with the same items and grid are
copied (:mod:`ndvicube.cube.update`), the others read (:mod:`ndvicube.cube.load`) and written
(:mod:`ndvicube.cube.store`) on the configured scheduler (:mod:`ndvicube.compute`).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ndvicube.compute import Compute
from ndvicube.cube.spec import CubeSpec

if TYPE_CHECKING:
    import pystac

    from ndvicube.read.retries import UnreadableAsset

log = logging.getLogger(__name__)

#: Packages whose versions are recorded in a cube's provenance.
KEY_PACKAGES = ("ndvicube", "odc-stac", "odc-geo", "rasterio", "xarray", "dask", "zarr", "numpy")


@dataclass
class CubeBuild:
    """One cube job's settings, and its passes over the items (:meth:`write_skipping`)."""

    spec: CubeSpec
    store: Path
    compute: Compute
    config: Mapping[str, Any]
    """The config values recorded in the store's provenance."""

    def write_skipping(self, items: list, skipped: list, policy: str, area: str) -> None:
        """Write the cube of ``items``, leaving out (into ``skipped``) scenes that cannot be read.

        Under ``skip`` with the threaded scheduler, every unreadable scene of a pass is
        collected in that pass (:func:`~ndvicube.read.retries.collecting_unreadable`); the store
        it writes marks their days unfinished, and one more pass reads only those days again,
        without them. Elsewhere the first unreadable scene stops the pass, which starts again
        without it.
        """
        from ndvicube.cube.store import remove
        from ndvicube.read.missing import SKIP, no_readable_scene, skip_unreadable
        from ndvicube.read.retries import UnreadableAsset, collecting_unreadable

        if not items:
            raise no_readable_scene(area, skipped)
        collect = policy == SKIP and self.compute.scheduler == "threads"
        while True:
            try:
                with collecting_unreadable(collect) as unreadable:
                    self.write(items, skipped, unreadable)
            except UnreadableAsset as error:
                unreadable = [error]
            if not unreadable:
                return
            for error in sorted(unreadable, key=lambda e: e.uri):  # not the threads' order
                items, problem = skip_unreadable(items, error.uri, error.reason, policy, area)
                skipped.append(problem)
            if not items:
                remove(self.store)  # what the passes wrote holds no finished day
                raise no_readable_scene(area, skipped)

    def write(self, items: list, skipped: list, unreadable: list) -> None:
        """One pass: the cube of exactly ``items`` in the store (days it holds are copied)."""
        _write_items_cube(
            items,
            self.spec,
            self.store,
            self.compute,
            attrs=provenance(items, self.config, self.spec.assets)
            | {"ndvicube:skipped": [asdict(s) for s in skipped]},
            unreadable=unreadable,
        )


def _write_items_cube(
    items: Sequence[pystac.Item],
    spec: CubeSpec,
    out: Path,
    compute: Compute,
    *,
    attrs: Mapping[str, Any],
    unreadable: Sequence[UnreadableAsset] = (),
) -> None:
    """The cube of exactly ``items`` at ``out``: days the store already holds are copied.

    ``unreadable`` is where reads that failed are collected (``collecting_unreadable``): once
    every block is written, the days of their items are recorded as unfinished.
    """
    import dask
    import dask.local
    import xarray as xr
    from rasterio.errors import NotGeoreferencedWarning

    from ndvicube.compute import dask_scheduler
    from ndvicube.cube.load import cube_longitude, group_scenes, load_cube
    from ndvicube.cube.store import DAYS_ATTR, GRID_ATTR, recover_interrupted_swap, write_cube
    from ndvicube.cube.update import (
        grid_signature,
        items_by_day,
        marked_unreadable,
        old_days,
        reusable,
        unchanged,
    )
    from ndvicube.read.gdal import configure_cloud_reads
    from ndvicube.read.missing import asset_at
    from ndvicube.read.retries import COG_DEADLINE_S, read_deadlines

    time_chunk, reader = spec.cube.time_chunk, compute.reader
    groups = group_scenes(items, cube_longitude(spec), spec.bands)
    wanted, signature = items_by_day(groups), grid_signature(spec)
    recover_interrupted_swap(out)
    existing, reused = reusable(out, wanted, signature)
    if existing is not None and unchanged(existing, wanted, reused):
        log.info(
            "cube: the existing store already holds these %d day(s); nothing to read", len(wanted)
        )
        return
    to_read = [i for g in groups if g.day.isoformat() not in reused for i in g.item_ids]
    log.info(
        "cube: %d item(s) -> %d solar day(s); %d day(s) copied from the existing cube, %d "
        "scene(s) to read (assets %s); grid in %s at %s m%s, io_threads=%d",
        len(items),
        len(wanted),
        len(reused),
        len(to_read),
        ", ".join(spec.assets),
        spec.crs,
        spec.resolution,
        f", tile {spec.tile.name}" if spec.tile else "",
        compute.io_threads,
    )
    configure_cloud_reads()

    def bad_ids() -> set[str]:  # asked once every block is written
        return {asset_at(items, error.uri)[0].id for error in unreadable}

    by_id = {i.id: i for i in items}
    unread = [g for g in groups if g.day.isoformat() not in reused]
    # The reads start first: headers and pixels arrive while the graph and the store's
    # metadata are made (about 1.4 s of CPU on the demo year). Before the scheduler is set up,
    # rechunking is by tasks and the few small values computed are computed in this thread,
    # as Dask would choose anyway here, but without importing distributed to find that out
    # (0.4 s); the cube itself is computed on the chosen scheduler (dask_scheduler).
    with (
        _reads_ahead(unread, spec, by_id, sorted(wanted), compute) as ahead,
        dask.config.set({"array.rechunk.method": "tasks", "scheduler": dask.local.get_sync}),
    ):
        parts = [old_days(existing, reused)] if reused else []
        if to_read:
            scenes = [by_id[i] for i in to_read]
            parts.append(load_cube(scenes, spec, reader=reader).drop_vars("spatial_ref"))
        cube = xr.concat(parts, dim="time").sortby("time") if len(parts) > 1 else parts[0]
        # odc-stac reprojects through an in-memory raster without geotransform when filling
        # nodata; rasterio's warning about it says nothing about the user's data.
        warnings.filterwarnings("ignore", category=NotGeoreferencedWarning)
        with (
            dask_scheduler(
                compute.scheduler, threads=compute.threads, io_threads=compute.io_threads
            ),
            read_deadlines(
                compute.read_deadline_s or COG_DEADLINE_S, cogs=len(to_read) * len(spec.assets)
            ),
        ):
            write_cube(
                cube,
                out,
                crs=spec.crs,
                attrs=dict(attrs) | {DAYS_ATTR: wanted, GRID_ATTR: signature},
                time_chunk=time_chunk,
                spatial_chunk=spec.cube.spatial_chunk,
                block_written=ahead.written if ahead is not None else None,
                final_attrs=lambda: {DAYS_ATTR: marked_unreadable(wanted, bad_ids())},
            )


def _reads_ahead(groups, spec: CubeSpec, items: dict, days: list[str], compute: Compute):
    """The remote reader's pipeline for this build (:class:`ndvicube.read.pipeline.Pipeline`):
    every header requested at once, the next blocks' windows fetched while a block is written.

    Only with the remote reader and the threaded scheduler: a distributed worker reads in its
    own process, where windows fetched here would not be.
    """
    import contextlib

    from ndvicube.cube.load import read_geobox
    from ndvicube.read.pipeline import hrefs_by_block, pipelined

    if compute.reader != "range" or compute.scheduler != "threads" or not groups:
        return contextlib.nullcontext(None)
    blocks = hrefs_by_block(groups, spec.assets, items, days, spec.cube.time_chunk)
    return pipelined(blocks, read_geobox(spec)[0])


def provenance(
    items: Sequence[pystac.Item], config: Mapping[str, Any], assets: Sequence[str]
) -> dict[str, Any]:
    """What made a cube: items (ids, baselines, hrefs of the assets read), the config, versions.

    Query strings are stripped from hrefs so signed-URL tokens never reach the store.
    """
    from ndvicube.read.missing import strip_query
    from ndvicube.search.items import processing_baseline

    return {
        "ndvicube:items": [
            {
                "id": item.id,
                "datetime": item.properties.get("datetime"),
                "processing_baseline": processing_baseline(item),
                "hrefs": {k: strip_query(item.assets[k].href) for k in assets},
            }
            for item in items
        ],
        "ndvicube:config": dict(config),
        "ndvicube:versions": {name: _version(name) for name in KEY_PACKAGES},
    }


def _version(package: str) -> str:
    """Installed version of ``package``, or ``"unknown"``."""
    try:
        return version(package)
    except PackageNotFoundError:
        return "unknown"

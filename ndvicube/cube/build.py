"""The cube job's passes: which days to read, the store written block by block, unreadable
scenes left out and read around, and what made the cube (its provenance attributes).

:mod:`ndvicube.jobs.cube` reads the job's items and writes its outputs; this module turns the
usable items into the store: days the store already holds with the same items and grid are
copied (:mod:`ndvicube.cube.update`), the others read (:mod:`ndvicube.cube.load`) and written
(:mod:`ndvicube.cube.store`) on the configured scheduler (:mod:`ndvicube.compute`).
"""

from __future__ import annotations

import functools
import logging
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
    store: Path | str
    """The local store, or an area's URL in an object store (``s3://bucket/prefix/{area}``:
    each pass writes a new version there, :mod:`ndvicube.cube.objectstore`)."""
    compute: Compute
    config: Mapping[str, Any]
    """The config values recorded in the store's provenance."""
    reuse_from: Path | None = None
    """Another store of the same grid to copy from when it holds more than :attr:`store` (a
    field set's tile job: its area's published cube, whichever tile held a chunk before)."""

    def write_skipping(self, items: list, skipped: list, policy: str, area: str) -> None:
        """Write the cube of ``items``, leaving out (into ``skipped``) scenes that cannot be read.

        Under ``skip``, every unreadable scene of a pass is collected in that pass (each block
        task returns those it met, whatever the scheduler); the store it writes marks their days
        unfinished, and one more pass reads only those days again, without them. Under ``fail``
        the first unreadable scene stops the job.
        """
        from ndvicube.cube.store import remove
        from ndvicube.read.missing import SKIP, no_readable_scene, skip_unreadable
        from ndvicube.read.retries import UnreadableAsset

        if not items:
            raise no_readable_scene(area, skipped)
        collect = policy == SKIP
        while True:
            try:
                unreadable = self.write(items, skipped, collect)
            except UnreadableAsset as error:
                unreadable = [error]
            if not unreadable:
                return
            for error in sorted(unreadable, key=lambda e: e.uri):  # not the threads' order
                items, problem = skip_unreadable(items, error.uri, error.reason, policy, area)
                skipped.append(problem)
            if not items:
                if isinstance(self.store, Path):  # (an unpublished version is pruned later)
                    remove(self.store)  # what the passes wrote holds no finished day
                raise no_readable_scene(area, skipped)

    def write(self, items: list, skipped: list, collect: bool) -> list[UnreadableAsset]:
        """One pass: the cube of exactly ``items`` in the store (days it holds are copied);
        with ``collect``, the assets it could not read."""
        return _write_items_cube(
            items,
            self.spec,
            self.store,
            self.compute,
            attrs=provenance(items, self.config, self.spec.assets)
            | {"ndvicube:skipped": [asdict(s) for s in skipped]},
            collect=collect,
            reuse_from=self.reuse_from,
        )


def _write_items_cube(
    items: Sequence[pystac.Item],
    spec: CubeSpec,
    out: Path | str,
    compute: Compute,
    *,
    attrs: Mapping[str, Any],
    collect: bool = False,
    reuse_from: Path | None = None,
) -> list[UnreadableAsset]:
    """The cube of exactly ``items`` at ``out``: days the store already holds are copied.

    With ``collect``, reads that fail for good are returned (their days recorded as
    unfinished in the store), not raised. With ``reuse_from``, days and chunks are copied from
    that store instead when it holds more of them (:func:`_richest_store`). With ``out`` an
    area's URL in an object store, the existing store is its newest finished version and the
    cube is written as the next version (:func:`_target`).
    """
    from ndvicube.compute import dask_scheduler
    from ndvicube.cube.engine import (
        cube_layout,
        forget_reads,
        plan_build,
        request_headers,
        run_blocks,
        template,
        write_scenes,
    )
    from ndvicube.cube.load import cube_longitude, group_scenes
    from ndvicube.cube.metadata import write_cube_store
    from ndvicube.cube.objecttiles import is_tile_store
    from ndvicube.cube.progress import build_progress
    from ndvicube.cube.store import (
        CHUNKS_ATTR,
        DAYS_ATTR,
        GRID_ATTR,
        write_store,
    )
    from ndvicube.cube.update import (
        grid_signature,
        items_by_day,
        marked_unreadable,
        stored_index,
        unchanged,
    )
    from ndvicube.read.missing import asset_at
    from ndvicube.read.retries import COG_DEADLINE_S, read_deadlines

    groups = group_scenes(items, cube_longitude(spec), spec.bands)
    wanted, signature = items_by_day(groups), grid_signature(spec)
    current, target = _target(out)
    new_chunks = None if spec.chunks is None else frozenset(spec.chunks)
    candidates = [c for c in (current, reuse_from) if c is not None]
    source, existing, reused, old_chunks = _richest_store(candidates, wanted, signature, new_chunks)
    if (
        current is not None
        and source == current
        and not is_tile_store(target)  # (a tile's store in a new version is written all the same)
        and existing is not None
        and unchanged(existing, wanted, reused)
        and old_chunks == new_chunks
    ):
        log.info(
            "cube: the existing store already holds these %d day(s); nothing to read", len(wanted)
        )
        return []
    reads_old_days = old_chunks is not None and (new_chunks is None or new_chunks - old_chunks)
    to_read = [
        i for g in groups if reads_old_days or g.day.isoformat() not in reused for i in g.item_ids
    ]
    deadline_s = compute.read_deadline_s or COG_DEADLINE_S
    cogs = len(to_read) * len(spec.assets)
    with read_deadlines(deadline_s, cogs=cogs) as deadlines:
        plan = plan_build(
            items,
            groups,
            list(wanted),
            stored_index(existing, reused),
            spec,
            compute,
            store=str(target),
            old_store=str(source) if reused else None,
            collect=collect,
            deadline_s=deadline_s,
            job_s=deadlines.job_s,
            old_chunks=old_chunks,
        )
        log.info(
            "cube: %d item(s) -> %d solar day(s); %d day(s) copied from the existing cube, %d "
            "scene(s) to read (assets %s); grid in %s at %s m%s; blocks of %d day(s) x %d px, "
            "%d at once",
            len(items),
            len(wanted),
            len(reused),
            len(to_read),
            ", ".join(spec.assets),
            spec.crs,
            spec.resolution,
            (f", tile {spec.tile.name}" if spec.tile else "")
            + (f", {len(spec.chunks)} chunk(s) of a field set" if spec.chunks is not None else ""),
            spec.cube.time_chunk,
            plan.block_px,
            compute.blocks_at_once,
        )
        stored = existing["scenes"].values if existing is not None else None
        scenes = [
            int(stored[d.old_index]) if d.old_index is not None else d.scenes for d in plan.days
        ]
        unreadable: list = []

        if compute.scheduler == "threads":  # in flight while the store's metadata is written
            request_headers(plan)

        def fill(partial: Path | str, _dataset=None) -> None:
            write_scenes(partial, scenes)
            progress = build_progress(plan, scenes)
            try:
                with (
                    dask_scheduler(
                        compute.scheduler,
                        threads=compute.threads,
                        io_threads=compute.blocks_at_once,
                    ),
                    progress.heartbeat(),
                ):
                    unreadable.extend(run_blocks(plan, progress.block_done))
            finally:
                forget_reads(plan)
            if compute.scheduler == "threads":  # the tiles were read in this process
                _log_tiles()

        def bad_ids() -> set[str]:  # asked once every block is written
            return {asset_at(items, error.uri)[0].id for error in unreadable}

        store_attrs = (
            dict(attrs)
            | {DAYS_ATTR: wanted, GRID_ATTR: signature}
            | ({} if spec.chunks is None else {CHUNKS_ATTR: [list(c) for c in spec.chunks]})
        )

        def final_attrs() -> dict[str, Any]:  # the days whose scenes could not all be read
            return {DAYS_ATTR: marked_unreadable(wanted, bad_ids())}

        location = target if isinstance(target, str) else out
        layout = cube_layout(plan)
        if layout is not None:  # the metadata by zarr alone: no xarray imported for it
            write_cube_store(
                layout, location, attrs=store_attrs, fill=fill, final_attrs=final_attrs
            )
        else:
            write_store(
                template(plan, scenes),
                location,
                crs=spec.crs,
                attrs=store_attrs,
                time_chunk=spec.cube.time_chunk,
                spatial_chunk=spec.cube.spatial_chunk,
                fill=fill,
                final_attrs=final_attrs,
            )
    return unreadable


def _target(out: Path | str) -> tuple[Path | str | None, Path | str]:
    """The store a build reuses and the one it writes: a local ``out`` is both (written as
    ``<out>.partial``, swapped into place; a swap a kill interrupted is undone first); in an
    object store (``out`` an area's URL) the newest finished version and the next version; a
    tile's store in its area's pending version (:mod:`.objecttiles`) reuses the same tile of
    the area's newest finished version, and is written again from its metadata up (what a
    killed or earlier pass left there removed)."""
    from ndvicube.cube.objectstore import build_target, is_url, remove
    from ndvicube.cube.objecttiles import is_tile_store, previous_tile_store
    from ndvicube.cube.store import recover_interrupted_swap

    if is_tile_store(out):
        remove(str(out))
        return previous_tile_store(str(out)), str(out)
    if is_url(out):
        return build_target(str(out))
    out = Path(out)
    recover_interrupted_swap(out)
    return out, out.with_name(out.name + ".partial")


def _log_tiles() -> None:
    """How many COG tiles this process fetched and decoded (each once, unless the tile cache
    was too small: ``bench/bench_tilings.py`` compares them with the least)."""
    from ndvicube.read.tiles import TILES

    counts = TILES.counts()
    log.info(
        "COG tiles read by this process: %d fetched, %d decoded",
        counts["fetched"],
        counts["decoded"],
    )


def _richest_store(
    candidates: Sequence[Path | str],
    wanted: Mapping[str, list[str]],
    signature: Mapping[str, Any],
    chunks: frozenset[tuple[int, int]] | None,
) -> tuple[Path | str | None, Any, list[str], frozenset[tuple[int, int]] | None]:
    """Of the existing stores ``candidates`` (the job's own first), the one that saves the most
    reads: the most reusable days x wanted chunks it holds. Returns it, its lazy cube (None
    when none is reusable), its reusable days and its present chunks (None: all)."""
    from ndvicube.cube.store import cube_attrs, present_chunks
    from ndvicube.cube.update import reusable

    best = (candidates[0] if candidates else None, None, [], None)
    best_saved = -1
    for path in candidates:
        existing, reused = reusable(path, wanted, signature)
        if existing is None:
            continue
        held = present_chunks(cube_attrs(existing))
        saved = len(reused) * _chunks_held(chunks, held)
        if saved > best_saved:
            best, best_saved = (path, existing, reused, held), saved
    return best


def _chunks_held(
    wanted: frozenset[tuple[int, int]] | None, held: frozenset[tuple[int, int]] | None
) -> int:
    """How many of a sparse cube's ``wanted`` chunks a store holds (None: every chunk); 1 for
    a dense cube (any reusable store of its grid holds all of it)."""
    if not wanted:
        return 1
    return len(wanted) if held is None else len(wanted & held)


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
        "ndvicube:versions": dict(key_package_versions()),
    }


@functools.cache
def key_package_versions() -> dict[str, str]:
    """The installed versions of :data:`KEY_PACKAGES`, read once per process: reading them
    imports the ``email`` package (importlib.metadata parses each METADATA file with it), which
    the preload thread does before a cube job starts (:mod:`ndvicube.jobs.preload`)."""
    return {name: _version(name) for name in KEY_PACKAGES}


def _version(package: str) -> str:
    """Installed version of ``package``, or ``"unknown"``."""
    try:
        return version(package)
    except PackageNotFoundError:
        return "unknown"

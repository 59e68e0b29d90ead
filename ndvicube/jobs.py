"""One function per workflow step; `scripts/*.py` call them with the snakemake object's values.

Keeping the steps here (not in the scripts) lets tests and benchmarks run exactly what the rules
run, in one process, and keeps every script a few lines long.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ndvicube.cube.indices import DEFAULT_INDICES  # light: spyndex and xarray load on first use

if TYPE_CHECKING:  # imported lazily below: a plot job should not pay for odc-stac's import
    import pystac

    from ndvicube.cube.load import CubeSpec
    from ndvicube.cube.tiles import Tile
    from ndvicube.geo import BBox
    from ndvicube.read.retries import UnreadableAsset
    from ndvicube.search.stac import SearchRequest
    from ndvicube.timeseries.points import Point

log = logging.getLogger(__name__)

#: Packages whose versions are recorded in a cube's provenance.
KEY_PACKAGES = ("ndvicube", "odc-stac", "odc-geo", "rasterio", "xarray", "dask", "zarr", "numpy")


def search_area(request: SearchRequest, *, out: str | Path) -> int:
    """Search the source for one area over the whole period; store the items as JSON (sorted,
    de-duplicated: the cube's input); return how many."""
    from ndvicube.search.stac import search, write_items

    items = search(request)
    write_items(items, out)
    return len(items)


def build_cube(
    *,
    items_path: str | Path,
    out: str | Path,
    bbox: BBox,
    crs: str,
    resolution: float,
    scl_classes: Sequence[int],
    io_threads: int = 16,
    time_chunk: int | None = None,
    spatial_chunk: int = 256,
    config: Mapping[str, Any] | None = None,
    scheduler: str = "threads",
    threads: int = 1,
    tile: Tile | None = None,
    on_missing_asset: str = "fail",
    skipped_out: str | Path | None = None,
    area: str = "",
    scl_buffer_m: float = 0.0,
    max_cloud_probability: int | None = None,
    indices: Sequence[str] = DEFAULT_INDICES,
    reader: str = "range",
    work: str | Path | None = None,
    read_deadline_s: float | None = None,
    profile: str = "earth-search",
) -> Path:
    """Write the masked index cube of the stored items to Zarr, reusing an existing cube's days.

    ``profile`` is the archive's (:mod:`ndvicube.search.profiles`): under ``planetary-computer`` the
    hrefs are signed in memory before the reads.

    ``indices`` are catalogue names (:mod:`ndvicube.cube.indices`), one cube variable each.
    ``reader`` chooses how COGs are read (``range`` or ``gdal``, :func:`ndvicube.cube.load.load_cube`);
    ``read_deadline_s`` bounds each COG's read, retries included, and the job's reads together
    (:func:`ndvicube.read.retries.read_deadlines`).

    Only scenes of solar days that the existing store does not already hold with the same items,
    grid and mask are read; the other days are copied from it. The store is ``out``, or with
    ``work`` the store kept at ``work`` between runs, published as ``out`` by hard links
    (:func:`ndvicube.cube.store.publish`: the workflow's cube rules, so Snakemake never deletes or
    backs up the store the next run reuses). With ``tile``, only that chunk-aligned tile of the
    area's grid is built (see :func:`join_tiles`).

    A scene whose assets are unusable or unreadable stops the job with a message naming it, or
    with ``on_missing_asset="skip"`` is left out and listed in ``skipped_out``
    (:mod:`ndvicube.read.missing`).
    """
    from ndvicube.cube.indices import resolve_indices
    from ndvicube.cube.load import CubeSpec
    from ndvicube.cube.store import DEFAULT_TIME_CHUNK, publish
    from ndvicube.logs import redact_urls_in_logs
    from ndvicube.read.missing import check_policy, usable_items, write_skipped
    from ndvicube.read.retries import COG_DEADLINE_S
    from ndvicube.search.profiles import signed
    from ndvicube.search.stac import read_items

    check_policy(on_missing_asset)
    redact_urls_in_logs()  # GDAL and odc-stac quote asset URLs, tokens included
    spec = CubeSpec(
        bbox=tuple(bbox),
        crs=crs,
        resolution=resolution,
        scl_classes=tuple(scl_classes),
        spatial_chunk=spatial_chunk,
        tile=tile,
        scl_buffer_m=scl_buffer_m,
        max_cloud_probability=max_cloud_probability,
        indices=resolve_indices(indices),
    )
    items, skipped = usable_items(read_items(items_path), spec.assets, on_missing_asset, area)
    items = signed(items, profile)  # in memory only: provenance and logs never see a token
    store = Path(work) if work is not None else Path(out)
    store.parent.mkdir(parents=True, exist_ok=True)
    build = _CubeBuild(spec, store, time_chunk or DEFAULT_TIME_CHUNK, config or {},
                       io_threads=io_threads, scheduler=scheduler, threads=threads, reader=reader,
                       read_deadline_s=read_deadline_s or COG_DEADLINE_S)  # fmt: skip
    build.write_skipping(items, skipped, on_missing_asset, area)
    if skipped_out is not None:
        write_skipped(skipped, skipped_out)
    if work is not None:
        publish(store, out)
    return Path(out)


@dataclass
class _CubeBuild:
    """One cube job's settings, and its passes over the items (:meth:`write_skipping`)."""

    spec: CubeSpec
    store: Path
    time_chunk: int
    config: Mapping[str, Any]
    io_threads: int
    scheduler: str
    threads: int
    reader: str
    read_deadline_s: float

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
        collect = policy == SKIP and self.scheduler == "threads"
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
            time_chunk=self.time_chunk,
            attrs=provenance(items, self.config, self.spec.assets)
            | {"ndvicube:skipped": [asdict(s) for s in skipped]},
            io_threads=self.io_threads,
            scheduler=self.scheduler,
            threads=self.threads,
            reader=self.reader,
            read_deadline_s=self.read_deadline_s,
            unreadable=unreadable,
        )


def _write_items_cube(
    items: Sequence[pystac.Item],
    spec: CubeSpec,
    out: Path,
    *,
    time_chunk: int,
    attrs: Mapping[str, Any],
    io_threads: int,
    scheduler: str,
    threads: int,
    reader: str,
    read_deadline_s: float,
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
    from ndvicube.cube.store import recover_interrupted_swap, write_cube
    from ndvicube.cube.update import (
        DAYS_ATTR,
        GRID_ATTR,
        grid_signature,
        items_by_day,
        marked_unreadable,
        old_days,
        reusable,
        unchanged,
    )
    from ndvicube.read.gdal import configure_cloud_reads
    from ndvicube.read.missing import asset_at
    from ndvicube.read.retries import read_deadlines

    groups = group_scenes(items, cube_longitude(spec), spec.bands)
    wanted, signature = items_by_day(groups), grid_signature(spec, time_chunk)
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
        io_threads,
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
        _reads_ahead(unread, spec, by_id, sorted(wanted), time_chunk, reader, scheduler) as ahead,
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
            dask_scheduler(scheduler, threads=threads, io_threads=io_threads),
            read_deadlines(read_deadline_s, cogs=len(to_read) * len(spec.assets)),
        ):
            write_cube(
                cube,
                out,
                crs=spec.crs,
                attrs=dict(attrs) | {DAYS_ATTR: wanted, GRID_ATTR: signature},
                time_chunk=time_chunk,
                spatial_chunk=spec.spatial_chunk,
                block_written=ahead.written if ahead is not None else None,
                final_attrs=lambda: {DAYS_ATTR: marked_unreadable(wanted, bad_ids())},
            )


def _reads_ahead(groups, spec: CubeSpec, items: dict, days: list[str], time_chunk: int,
                 reader: str, scheduler: str):  # fmt: skip
    """The remote reader's pipeline for this build (:class:`ndvicube.read.pipeline.Pipeline`):
    every header requested at once, the next blocks' windows fetched while a block is written.

    Only with the remote reader and the threaded scheduler: a distributed worker reads in its
    own process, where windows fetched here would not be.
    """
    import contextlib

    from ndvicube.cube.load import read_geobox
    from ndvicube.read.pipeline import hrefs_by_block, pipelined

    if reader != "range" or scheduler != "threads" or not groups:
        return contextlib.nullcontext(None)
    blocks = hrefs_by_block(groups, spec.assets, items, days, time_chunk)
    return pipelined(blocks, read_geobox(spec)[0])


def join_tiles(
    *,
    tile_paths: Sequence[str | Path],
    split: Sequence[int],
    out: str | Path,
    crs: str,
    skipped: Sequence[str | Path] = (),
    skipped_out: str | Path | None = None,
) -> Path:
    """Assemble an area's cube from its ``rows x cols`` tile stores by hard-linking their chunks.

    The tiles' skipped-scene lists are merged into the area's (a scene skipped by several tiles
    is listed once).
    """
    from ndvicube.cube.store import join_tiles as join
    from ndvicube.cube.tiles import tiles_in_order
    from ndvicube.read.missing import read_skipped, write_skipped

    path = join(tiles_in_order(tile_paths, *split), out, crs=crs)
    if skipped_out is not None:
        rows = [row for listing in skipped for row in read_skipped(listing)]
        write_skipped(list(dict.fromkeys(rows)), skipped_out)
    return path


def extract_series(*, cube_path: str | Path, points: Sequence[Point], out: str | Path) -> None:
    """Write ``series_raw.csv``: the cube's value at every point and solar day."""
    from ndvicube.cube.store import open_cube
    from ndvicube.timeseries.points import extract_points
    from ndvicube.timeseries.tables import write_series

    series = extract_points(open_cube(cube_path), points)
    write_series(series, str(out))
    log.info("series: %d point(s) x %d date(s)", len(points), series["time"].nunique())


def extract_polygon_series(
    *,
    cube_path: str | Path,
    polygons_path: str | Path,
    crs: str,
    out: str | Path,
    min_clear_fraction: float = 0.0,
) -> None:
    """Write ``polygons_raw.csv``: mean, median, count and clear fraction per polygon and day."""
    from ndvicube.cube.store import open_cube
    from ndvicube.timeseries.polygons import polygon_series, read_polygons
    from ndvicube.timeseries.tables import write_polygon_series

    polygons = read_polygons(polygons_path, crs)
    table = polygon_series(open_cube(cube_path), polygons, min_clear_fraction=min_clear_fraction)
    write_polygon_series(table, out)
    log.info("polygon series: %d polygon(s) x %d date(s)", len(polygons), table["time"].nunique())


def smooth(
    *,
    raw_path: str | Path,
    out: str | Path,
    method: str = "notebook",
    resample: str = "5D",
    window: int = 3,
    polyorder: int = 2,
    lam: float = 10.0,
) -> None:
    """Write ``series_smoothed.csv`` from ``series_raw.csv`` (:mod:`ndvicube.timeseries.smoothing`)."""
    from ndvicube.timeseries.smoothing import smooth_series
    from ndvicube.timeseries.tables import read_series, write_series

    raw = read_series(str(raw_path))
    smoothed = smooth_series(
        raw, method=method, resample=resample, window=window, polyorder=polyorder, lam=lam
    )
    write_series(smoothed, out, key=_key_column(raw_path))


def season_metrics(
    *,
    smoothed_path: str | Path,
    out: str | Path,
    fraction: float,
    min_amplitude: float,
    index: str = "NDVI",
) -> None:
    """Write ``phenology.csv``: each season's start, peak, end and amplitude per point, on the
    smoothed series of ``index`` (a catalogue name)."""
    from ndvicube.cube.indices import column
    from ndvicube.timeseries.phenology import phenology
    from ndvicube.timeseries.tables import read_series, write_phenology

    table = phenology(
        read_series(str(smoothed_path)),
        fraction=fraction,
        min_amplitude=min_amplitude,
        index=column(index),
    )
    write_phenology(table, out, key=_key_column(smoothed_path))
    log.info("phenology: %d season(s) at %d point(s)", len(table), table["point"].nunique())


def point_tables(
    *,
    cube_path: str | Path,
    points: Sequence[Point],
    raw_out: str | Path,
    smoothed_out: str | Path,
    phenology_out: str | Path,
    smoothing: Mapping[str, Any],
    phenology: Mapping[str, Any],
) -> None:
    """The point tables of an area in one job: raw series, smoothed series, seasons.

    One process instead of three: each job pays about a second of start-up and imports (and on
    a cluster a submission), more than these steps cost for thousands of points.
    ``smoothing`` holds the keyword arguments of :func:`smooth`, ``phenology`` those of
    :func:`season_metrics`.
    """
    extract_series(cube_path=cube_path, points=points, out=raw_out)
    _smooth_and_find_seasons(raw_out, smoothed_out, phenology_out, smoothing, phenology)


def polygon_tables(
    *,
    cube_path: str | Path,
    polygons_path: str | Path,
    crs: str,
    min_clear_fraction: float,
    raw_out: str | Path,
    smoothed_out: str | Path,
    phenology_out: str | Path,
    smoothing: Mapping[str, Any],
    phenology: Mapping[str, Any],
) -> None:
    """The polygon tables of an area in one job (as :func:`point_tables`); the smoothing is
    weighted by each date's clear fraction where the method takes weights."""
    extract_polygon_series(
        cube_path=cube_path,
        polygons_path=polygons_path,
        crs=crs,
        out=raw_out,
        min_clear_fraction=min_clear_fraction,
    )
    _smooth_and_find_seasons(raw_out, smoothed_out, phenology_out, smoothing, phenology)


def _smooth_and_find_seasons(
    raw_path: str | Path,
    smoothed_out: str | Path,
    phenology_out: str | Path,
    smoothing: Mapping[str, Any],
    phenology: Mapping[str, Any],
) -> None:
    """The second half of both table jobs: smooth the raw table, then find its seasons."""
    smooth(raw_path=raw_path, out=smoothed_out, **smoothing)
    season_metrics(smoothed_path=smoothed_out, out=phenology_out, **phenology)


def _key_column(path: str | Path) -> str:
    """``polygon`` for the polygon tables (``polygons_*.csv``), ``point`` for the others."""
    return "polygon" if Path(path).name.startswith("polygons_") else "point"


def figures(
    *,
    raw_path: str | Path,
    smoothed_path: str | Path,
    points: Sequence[str],
    area: str,
    plots_dir: str | Path,
    overview: str | Path,
    processes: int = 1,
) -> None:
    """Draw all of an area's series figures in one job: ``plots_dir/{point}.png`` for each of
    ``points`` (the ids ``figures`` selects), in ``processes`` processes, and the area's
    overview of every point."""
    from ndvicube.figures.plots import plot_overview, plot_points
    from ndvicube.timeseries.tables import read_series

    raw, smoothed = read_series(str(raw_path)), read_series(str(smoothed_path))
    written = plot_points(raw, smoothed, list(points), plots_dir, processes=processes)
    plot_overview(raw, smoothed, area, overview)
    log.info(
        "figures: %d point figure(s) of %d point(s), and the overview",
        len(written),
        smoothed["point"].nunique(),
    )


def quicklook(
    *,
    cube_path: str | Path,
    points: Sequence[Point],
    area: str,
    out: str | Path,
    index: str = "NDVI",
) -> None:
    """Draw the area's quick-look: maps of ``index`` with its points.

    ``cube_path`` is the cube (its monthly medians are drawn) or a composites store (its
    periods are drawn as they are: one source of truth for the maps).
    """
    from ndvicube.composites.periods import SPEC_ATTR
    from ndvicube.cube.indices import column
    from ndvicube.cube.store import open_cube, read_attrs
    from ndvicube.figures.plots import monthly_medians, plot_quicklook

    maps = open_cube(cube_path)[column(index)]
    made = read_attrs(cube_path).get(SPEC_ATTR)
    if made is None:
        plot_quicklook(monthly_medians(maps), points, area, out)
    else:
        what = f"{made['statistic'].capitalize()} per period ({made['period']}) of"
        plot_quicklook(maps, points, area, out, what=what)


def build_composites(
    *,
    cube_path: str | Path,
    out: str | Path,
    cogs_out: str | Path,
    period: str,
    statistic: str,
    indices: Sequence[str],
    start: str,
    end: str,
    threads: int = 2,
) -> list[str]:
    """Write an area's composites store and its COGs from the local cube; return the periods
    computed (the others were copied from the job's earlier store, ``results/{area}/.work/``).

    Like the cube, both are kept in ``.work/`` between runs and published as hard links. A COG
    is written again only when its period's solar days and items (or the statistic, indices or
    grid) differ from those its manifest (``.periods.json`` in the folder) records.
    """
    import datetime as dt

    from ndvicube.composites.periods import CompositeSpec, write_composites
    from ndvicube.cube.indices import column, resolve_indices
    from ndvicube.cube.store import publish, working_store

    names = resolve_indices(indices, key="composites.indices")
    spec = CompositeSpec(period, statistic, tuple(column(n) for n in names),
                         dt.date.fromisoformat(start), dt.date.fromisoformat(end))  # fmt: skip
    store, folder = working_store(out), working_store(cogs_out)
    computed = write_composites(cube_path, store, spec, threads=threads)
    _export_changed_cogs(store, folder, [(n, column(n)) for n in names], threads=threads)
    publish(store, out)
    publish(folder, cogs_out)
    return computed


def _export_changed_cogs(
    store: Path, folder: Path, indices: Sequence[tuple[str, str]], *, threads: int
) -> None:
    """Bring the COGs in ``folder`` up to date with the composites ``store``: write those whose
    period's sources changed (or are missing), remove those no longer configured."""
    import json

    from ndvicube.composites.cog import cog_name, export_cogs, stale_cogs
    from ndvicube.composites.periods import PERIODS_ATTR, SPEC_ATTR
    from ndvicube.cube.store import open_cube, read_attrs

    attrs = read_attrs(store)
    manifest_path = folder / ".periods.json"
    old = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    same_spec = old.get(SPEC_ATTR) == attrs[SPEC_ATTR]
    made = old.get("files", {}) if same_spec else {}
    sources = attrs[PERIODS_ATTR]
    files = {cog_name(index, p): sources[p] for index, _ in indices for p in sources}

    def outdated(period: str) -> bool:
        names = [cog_name(index, period) for index, _ in indices]
        return any(made.get(n) != sources[period] or not (folder / n).is_file() for n in names)

    todo = [p for p in sources if outdated(p)]
    manifest_path.unlink(missing_ok=True)  # until the files it would list are all written
    written = export_cogs(open_cube(store), folder, indices, todo, threads=threads)
    for stale in stale_cogs(folder, set(files)):
        stale.unlink()
    manifest = {SPEC_ATTR: attrs[SPEC_ATTR], "files": files}
    manifest_path.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    log.info("composites: %d COG(s) written for %d period(s), %d kept", len(written), len(todo),
             len(files) - len(written))  # fmt: skip


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

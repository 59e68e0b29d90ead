"""The rules' ``run:`` blocks (the light jobs and the cube): each calls :func:`run_job`, which
calls its rule's job function with the job's values, inside the job's logging.

Snakemake runs these blocks in threads of its own process (``force-use-threads`` in
profiles/default, or any cluster executor), so a job pays no interpreter and no imports of its
own (docs/cluster.md); the light ones among them hand their job to a process forked from a
fork server that imported their libraries (:mod:`ndvicube.jobs.forked`), and a cluster runs
the cube's on its node, in the job's Snakemake process.
Here is what ``scripts/*.py`` hold for the job that keeps a process of its own (the
composites): which input, output and parameter goes where.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: The quick-look's tables its viewer shows beside the maps (inputs of that name, if any).
VIEWER_TABLES = ("series_raw", "series_smoothed", "phenology", "polygons_raw",
                 "polygons_smoothed", "polygons_phenology", "fields_rejected")  # fmt: skip


@dataclass(frozen=True)
class RuleJob:
    """A job's values as Snakemake hands them to a ``run:`` block: its named lists of files and
    parameters (attribute access, ``.get``), wildcards, threads, the workflow's config, and its
    resources (the cube's ``io_threads``)."""

    rule: str
    input: Any
    output: Any
    params: Any
    wildcards: Any
    threads: int
    config: Mapping[str, Any]
    resources: Any = None


def run_job(
    rule: str,
    input: Any,
    output: Any,
    params: Any,
    wildcards: Any,
    threads: int,
    log: Any,
    config: Mapping[str, Any],
    resources: Any = None,
) -> None:
    """Run ``rule``'s job with its logging in ``log[0]``; the arguments are the names a
    ``run:`` block sees. A library error fails this job with its message. A light job runs
    in a forked process when the workflow started a fork server (:mod:`ndvicube.jobs.forked`).
    """
    from ndvicube.jobs import forked

    if rule in forked.FORKED_RULES and forked.started():
        values = (forked.plain(v) for v in (input, output, params, wildcards))
        forked.run_forked(_run_here, RuleJob(rule, *values, threads, dict(config)), str(log[0]))
        return
    _run_here(RuleJob(rule, input, output, params, wildcards, threads, config, resources), log[0])


def _run_here(job: RuleJob, log_file: str) -> None:
    """Run ``job`` in this thread or process, with its logging in ``log_file``."""
    from ndvicube.logs import job_logging

    with job_logging(log_file, job=job.rule):
        RULES[job.rule](job)


def search(job: RuleJob) -> None:
    from ndvicube.jobs import search_area
    from ndvicube.search.stac import SearchRequest

    request = SearchRequest.from_params(**job.params, area=job.wildcards.area)
    search_area(request, out=job.output.scenes)


def fields(job: RuleJob) -> None:
    from ndvicube.jobs import fields as screen

    screen(polygons_path=job.input.polygons, items_path=job.input.scenes, crs=job.params.crs,
           has_points=job.params.has_points, fields_out=job.output.fields,
           rejected_out=job.output.rejected,
           max_field_km2=job.params.max_field_km2)  # fmt: skip


def tables(job: RuleJob) -> None:
    from ndvicube.geo import Point
    from ndvicube.jobs import point_tables

    point_tables(cube_path=job.input.cube, points=[Point(**p) for p in job.params.points],
                 raw_out=job.output.raw, smoothed_out=job.output.smoothed,
                 phenology_out=job.output.phenology, smoothing=job.params.smoothing,
                 phenology=job.params.phenology)  # fmt: skip


def polygon_tables(job: RuleJob) -> None:
    from ndvicube.jobs import polygon_tables as tables_of_polygons

    tables_of_polygons(
        cube_path=job.input.cube, fields_path=job.input.fields, crs=job.params.crs,
        min_clear_fraction=job.params.min_clear_fraction,
        # How many cells are held at once changes no value: read at run time, not a parameter.
        batch_cells=job.config["polygon_series"]["batch_cells"],
        raw_out=job.output.raw, smoothed_out=job.output.smoothed,
        phenology_out=job.output.phenology, smoothing=job.params.smoothing,
        phenology=job.params.phenology, overview=job.output.overview, area=job.wildcards.area,
    )  # fmt: skip


def figures(job: RuleJob) -> None:
    from ndvicube.jobs import figures as draw

    draw(raw_path=job.input.raw, smoothed_path=job.input.smoothed, points=job.params.points,
         area=job.wildcards.area, plots_dir=job.output.plots, overview=job.output.overview,
         processes=job.threads)  # fmt: skip


def quicklook(job: RuleJob) -> None:
    """The maps, the area's viewer, and results/index.html listing the areas' viewers."""
    from ndvicube.geo import Point
    from ndvicube.jobs import quicklook as draw
    from ndvicube.viewer.page import write_areas_index

    draw(cube_path=job.input.maps, points=[Point(**p) for p in job.params.points],
         area=job.wildcards.area, out=job.output.figure, index=job.params.index,
         fields=job.input.get("fields"), viewer=job.output.viewer,
         tables={name: job.input.get(name) for name in VIEWER_TABLES},
         tile_cache=job.params.tile_cache, indices=job.params.indices,
         threads=job.threads)  # fmt: skip
    write_areas_index(Path(job.output.viewer).parent.parent)


def cube(job: RuleJob) -> None:
    """Rules ``cube`` and ``cube_tile``: the masked index cube of the stored scenes.

    Run in a thread of Snakemake's process like the light jobs (its imports done by the
    ``onstart`` thread, :mod:`ndvicube.jobs.preload`), or on a cluster node in the job's
    Snakemake process. Its Dask pool, read deadlines and log records are its own (a context
    of its thread: :func:`ndvicube.compute.dask_scheduler`, :mod:`ndvicube.logs`).
    """
    import os

    from ndvicube.compute import Compute
    from ndvicube.cube.spec import CubeSpec
    from ndvicube.cube.store import working_store
    from ndvicube.jobs import build_cube

    # What readers open (results/{area}/ndvi.zarr, a link to the newest version); None for a
    # tile, which only join_tiles reads.
    published = job.params.published
    build_cube(
        CubeSpec.from_params(job.params.spec),
        items_path=job.input.scenes,
        out=job.output.cube,
        work=working_store(published or job.output.cube),
        skipped_out=job.output.skipped,
        area=job.wildcards.area,
        on_missing_asset=job.params.on_missing_asset,
        config=job.params.provenance,
        # How to compute and read changes no value: read at run time, not rule parameters.
        compute=Compute(
            **job.config["compute"], threads=job.threads, io_threads=job.resources.io_threads
        ),
        # Signing (tokens fetched when the job starts, kept in memory) changes no value either.
        profile=job.config["stac"]["profile"],
        published=published,
        # Nor does how many published versions stay on disk.
        versions_kept=job.config["cube_versions_kept"],
        # A field set: its accepted polygons and its points decide the chunks it holds.
        fields=job.input.fields or None,
        field_points=job.params.field_points,
        # Its grid is its accepted fields' (a field rejected after the search is not in it).
        fit_grid=job.params.field_points is not None,
        reuse_from=job.params.reuse_from,
        # Snakemake's output cache (--cache needs this variable) moves the output into the
        # cache and makes it writable by all: then it must share no file with the store.
        copy_output=bool(os.environ.get("SNAKEMAKE_OUTPUT_CACHE")),
        # s3://bucket/prefix: the cube is written there and the output is its manifest.
        cube_store=job.config.get("cube_store"),
    )


def join_tiles(job: RuleJob) -> None:
    from ndvicube.jobs import join_tiles as join

    join(tile_paths=job.input.tiles, split=job.params.split, out=job.output.cube,
         crs=job.params.crs, skipped=job.input.skipped, skipped_out=job.output.skipped,
         published=job.params.published,
         # Not a param: how many published versions stay on disk reruns nothing.
         versions_kept=job.config["cube_versions_kept"],
         field_set=job.params.field_set,
         # Not a param either: where the tiles wrote is in their manifests.
         cube_store=job.config.get("cube_store"), area=job.wildcards.area)  # fmt: skip


#: Each light rule's job, by rule name.
RULES: dict[str, Callable[[RuleJob], None]] = {
    "search": search,
    "fields": fields,
    "tables": tables,
    "polygon_tables": polygon_tables,
    "figures": figures,
    "quicklook": quicklook,
    "join_tiles": join_tiles,
    "cube": cube,
    "cube_tile": cube,
}

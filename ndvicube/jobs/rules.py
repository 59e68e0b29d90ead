"""The light rules' ``run:`` blocks: each calls :func:`run_job`, which calls its rule's job
function with the job's values, inside the job's logging.

Snakemake runs these blocks in threads of its own process (``force-use-threads`` in
profiles/default, or any cluster executor), so a light job pays no interpreter and no imports of
its own (docs/cluster.md). Here is what ``scripts/*.py`` hold for the jobs that keep a process of
their own (the cube, the composites): which input, output and parameter goes where.
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
    parameters (attribute access, ``.get``), wildcards, threads, and the workflow's config."""

    rule: str
    input: Any
    output: Any
    params: Any
    wildcards: Any
    threads: int
    config: Mapping[str, Any]


def run_job(
    rule: str,
    input: Any,
    output: Any,
    params: Any,
    wildcards: Any,
    threads: int,
    log: Any,
    config: Mapping[str, Any],
) -> None:
    """Run ``rule``'s job with its logging in ``log[0]``; the arguments are the names a
    ``run:`` block sees. A library error fails this job with its message."""
    from ndvicube.logs import job_logging

    job = RuleJob(rule, input, output, params, wildcards, threads, config)
    with job_logging(log[0], job=rule):
        RULES[rule](job)


def search(job: RuleJob) -> None:
    from ndvicube.jobs import search_area
    from ndvicube.jobs.preload import search_ended
    from ndvicube.search.stac import SearchRequest

    try:
        request = SearchRequest.from_params(**job.params, area=job.wildcards.area)
        search_area(request, out=job.output.scenes)
    finally:  # the light jobs' imports, held back while it ran (ndvicube/jobs/preload.py)
        search_ended()


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
}

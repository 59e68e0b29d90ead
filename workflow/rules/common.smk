# Helpers shared by the rules: config validation, input functions, wildcard constraints.
import os
import sys
from dataclasses import asdict
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

try:
    version("ndvicube")
except PackageNotFoundError:
    raise WorkflowError(
        "The ndvicube package is not installed, so the jobs' scripts cannot import it. "
        f"Install it once with: python3 -m pip install -e {workflow.basedir}"
    )

# Where workflow/envs/ndvicube.post-deploy.sh installs ndvicube from into a conda environment.
os.environ.update(NDVICUBE_SOURCE=str(workflow.basedir))  # set, not read: no envvars:

from snakemake.common.configfile import load_configfile
from ndvicube.config import validate_config
from ndvicube.compute import IO_THREADS
from ndvicube.cube.spec import CubeSpec
from ndvicube.figures import PARALLEL_FROM_POINTS
from ndvicube.viewer.tiles import threads_for


def areas_from_cli_configfiles():
    """`areas` as the --configfile(s) define them, or None when none was given.

    Snakemake merges a --configfile into config.yaml key by key, which would add the default
    `seed` area to every user's config; for `areas` the user's file must replace, not merge.
    """
    areas = None
    for path in workflow.overwrite_configfiles or []:
        areas = load_configfile(path).get("areas", areas)
    return areas


CLI_AREAS = areas_from_cli_configfiles()
if CLI_AREAS is not None:
    config["areas"] = CLI_AREAS

# Validated once, with the schema inside the package (ndvicube/config/config.schema.yaml).
SETTINGS = validate_config(config, base_dir=Path.cwd())
# Jobs read a few runtime-only values (compute.scheduler) from the config: give them defaults.
config.update(SETTINGS.config)


def areas_pattern(names):
    """A wildcard pattern matching exactly ``names`` (and nothing when there are none)."""
    return "|".join(names) or "(?!)"


WHOLE_AREAS = areas_pattern(n for n, a in SETTINGS.areas.items() if not a.split)
TILED_AREAS = areas_pattern(n for n, a in SETTINGS.areas.items() if a.split)


wildcard_constraints:
    area="|".join(SETTINGS.areas),


def get_area(wildcards):
    """The validated area of a job's {area} wildcard."""
    return SETTINGS.areas[wildcards.area]


def get_area_bbox(wildcards):
    """lon_min, lat_min, lon_max, lat_max of the area (EPSG:4326)."""
    return list(get_area(wildcards).bbox)


def get_area_crs(wildcards):
    """CRS of the area's cube (UTM zone of its centre)."""
    return get_area(wildcards).crs


def get_area_split(wildcards):
    """[rows, cols] of the area's tile jobs."""
    return list(get_area(wildcards).tiles)


#: What a tile job writes: its store on the local disk, or with `cube_store` the manifest of
#: its store, whose chunks lie in the area's pending version (ndvicube.cube.objecttiles).
TILE_SUFFIX = ".json" if SETTINGS.cube_store else ".zarr"


def get_tile_output():
    """The tile job's store (a directory) or its manifest (a file)."""
    if SETTINGS.cube_store:
        return "results/{area}/tiles/{tile}.json"
    return directory("results/{area}/tiles/{tile}.zarr")


def get_area_tiles(wildcards):
    """The tile stores (or manifests) an area's cube is joined from."""
    from ndvicube.cube.tiles import all_tiles

    return [
        f"results/{wildcards.area}/tiles/{tile.name}{TILE_SUFFIX}"
        for tile in all_tiles(*get_area(wildcards).tiles)
    ]


def get_area_tile_skips(wildcards):
    """The skipped-scene lists of an area's tiles."""
    return [
        path.removesuffix(TILE_SUFFIX) + ".skipped.csv"
        for path in get_area_tiles(wildcards)
    ]


#: What the cube job writes and the later jobs read: the store on the local disk, or with
#: `cube_store` the manifest naming the version the job published in the bucket
#: (ndvicube.cube.objectstore; docs/cloud.md).
CUBE = (
    "results/{area}/cube/workflow.json"
    if SETTINGS.cube_store
    else "results/{area}/cube/workflow.zarr"
)


def get_cube_output():
    """What the cube job writes: the local store (a directory) or the manifest (a file)."""
    return CUBE if SETTINGS.cube_store else directory(CUBE)


def get_cube_link(wildcards):
    """What readers open: results/{area}/ndvi.zarr, a link to the newest published version.

    No rule's output (Snakemake would delete it when the job starts); None for a tile, and
    when the outputs go to a bucket (no links there: `local_only_link`).
    """
    if "tile" in wildcards.keys():
        return None
    return local_only_link(f"results/{wildcards.area}/ndvi.zarr")


def publish_cached_cubes():
    """Each area's ndvi.zarr, where its cube came from Snakemake's output cache (`--cache`) and
    so no cube job ran here to publish it: a read-only copy of the cached cube, sharing no
    file with the cache (ndvicube.cube.versions.publish_cached; docs/reruns.md)."""
    from ndvicube.cube.versions import publish_cached

    # The cube in a bucket (cube_store), or the outputs in one (no ndvi.zarr link there:
    # `local_only_link`): nothing on this disk to publish.
    if SETTINGS.cube_store or OUTPUTS_IN_STORAGE:
        return
    for name in SETTINGS.areas:
        publish_cached(
            f"results/{name}/cube/workflow.zarr",
            f"results/{name}/ndvi.zarr",
            keep=SETTINGS.cube_versions_kept,
        )


def refuse_published_cube(wildcards):
    """The input of `published_cube`: it always stops the run, naming the target to ask for.

    `results/{area}/ndvi.zarr` was the cube rule's output; now the job publishes it as a link,
    and a target that no rule makes gave only Snakemake's MissingRuleException.
    """
    area = wildcards.area
    if OUTPUTS_IN_STORAGE:
        raise WorkflowError(
            f"results/{area}/ndvi.zarr is not a target, and with the outputs in a bucket no "
            "job makes it (an object store has no links): the cube is the cube rule's output, "
            f"results/{area}/cube/workflow.zarr under the storage prefix; ask for that, or "
            "run plain snakemake for everything (docs/cloud.md)."
        )
    raise WorkflowError(
        f"results/{area}/ndvi.zarr is not a target: it is the link the cube job publishes for "
        "readers (no job's output, so Snakemake never deletes it while a job runs). Ask for "
        f"the cube itself: snakemake results/{area}/cube/workflow.zarr (or plain snakemake for "
        f"everything); that job updates results/{area}/ndvi.zarr when it is done."
    )


def refuse_published_composites(wildcards):
    """The input of `published_composites`: as `refuse_published_cube`, for composites.zarr,
    the composites rule's output until it was published as versions like the cube."""
    area = wildcards.area
    raise WorkflowError(
        f"results/{area}/composites.zarr is not a target: it is the link the composites job "
        "publishes for readers (no job's output, so Snakemake never deletes it while a job "
        f"runs). Ask for the composites themselves: snakemake "
        f"results/{area}/composites.versions/workflow.zarr (or plain snakemake for "
        f"everything); that job updates results/{area}/composites.zarr when it is done."
    )


def get_tile(wildcards):
    """The tile a cube job builds (None: the whole area)."""
    if "tile" not in wildcards.keys():
        return None
    from ndvicube.cube.tiles import Tile

    return Tile.from_name(wildcards.tile, *get_area(wildcards).tiles)


def get_area_points(wildcards):
    """The area's points as plain dicts (a params value: editing them reruns the series)."""
    return [asdict(p) for p in get_area(wildcards).points]


def get_points_file(wildcards):
    """The points CSV of the area, if its points come from a file (so edits rerun it)."""
    path = get_area(wildcards).points_file
    return [user_file(path)] if path else []


def get_area_has_points(wildcards):
    """Whether the area has points (a field set of polygons alone may have none)."""
    return bool(get_area(wildcards).points)


def get_polygons_file(wildcards):
    """The area's polygons file (an input: editing it screens the fields again, and reruns
    what reads them)."""
    return user_file(get_area(wildcards).polygons_file)


def get_smoothing(wildcards):
    """The smoothing section (every setting: editing one reruns the tables)."""
    return asdict(SETTINGS.smoothing)


def get_phenology(wildcards):
    """The phenology section, its index resolved (the first index unless configured)."""
    return asdict(SETTINGS.phenology)


def get_plotted_points(wildcards):
    """Ids of the points that get their own figure (figures.points or the first max_points)."""
    return list(get_area(wildcards).plotted_points)


def get_figure_threads(wildcards):
    """Two processes for an area with many point figures, one for a few (they would not fork)."""
    return 2 if len(get_plotted_points(wildcards)) >= PARALLEL_FROM_POINTS else 1


def get_quicklook_threads(wildcards):
    """Two threads for the viewer's tiles of a large area, one for a small one (whose
    quick-look then runs beside the figures job on two cores)."""
    return threads_for(get_area(wildcards).bbox, SETTINGS.resolution)


def get_quicklook_maps(wildcards):
    """What the quick-look draws: the composites when they hold its index, else the cube; and
    the accepted fields' outlines of an area with polygons; and what its viewer shows besides:
    the fields rejected, the series of the fields and of the points, with their seasons.
    """
    maps = {"maps": f"results/{wildcards.area}/{QUICKLOOK_SOURCE}"}
    area = get_area(wildcards)
    folder = f"results/{wildcards.area}"
    if area.polygons_file:
        maps["fields"] = f"{folder}/fields.parquet"
        maps["fields_rejected"] = f"{folder}/fields_rejected.csv"
        for table in ("raw", "smoothed", "phenology"):
            maps[f"polygons_{table}"] = f"{folder}/polygons_{table}.csv"
    if area.points:
        maps["series_raw"] = f"{folder}/series_raw.csv"
        maps["series_smoothed"] = f"{folder}/series_smoothed.csv"
        maps["phenology"] = f"{folder}/phenology.csv"
    return maps


#: The quick-look's maps: the composites (one source of truth for the maps), or the cube's
#: monthly medians when there are no composites of its index.
QUICKLOOK_SOURCE = (
    "composites.versions/workflow.zarr"
    if SETTINGS.composites is not None
    and SETTINGS.indices[0] in SETTINGS.composites.indices
    else CUBE.removeprefix("results/{area}/")
)
#: The quick-look's label in the report: what its maps are.
QUICKLOOK_LABEL = (
    f"{SETTINGS.composites.statistic} {SETTINGS.indices[0]} per {SETTINGS.composites.period}"
    if QUICKLOOK_SOURCE == "composites.versions/workflow.zarr"
    else f"monthly {SETTINGS.indices[0]} maps"
)


def zip_report_asked():
    """Whether this command asks for a zip report (`snakemake --report report.zip`).

    Only a zip report can hold a folder: an HTML report refuses one ("Directory marked for
    inclusion in report ... This is unsupported when requesting a pure HTML report"). Snakemake
    reads the Snakefile before its report settings and shows them to no Snakefile, so its
    command line is read here, as Snakemake's own parser reads `--report`.
    """
    import argparse
    import sys

    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--report", nargs="?", const="report.html")
    asked, _ = parser.parse_known_args(sys.argv[1:])
    return str(asked.report or "").endswith(".zip")


def viewer_folder(path):
    """The quick-look's viewer folder: in a zip report, a page of its own (its `index.html`
    and every file beside it); in an HTML report and in runs, a plain `directory()`."""
    if not zip_report_asked():
        return directory(path)
    return report(
        directory(path),
        htmlindex="index.html",
        category="Areas",
        labels={"area": "{area}", "figure": "viewer"},
    )


def get_demo_catalog(wildcards):
    """The demo catalog folder the search reads, when the config asks for the demo.

    When the outputs go to a bucket its time is not compared (`ancient`): S3 keeps an object's
    time to the second, so the search's items.json, written within a second of the catalog,
    could look older than it and make every run redo everything. A new catalog still reruns the
    search: the job that makes it comes first.
    """
    if SETTINGS.demo is None:
        return []
    return [ancient(user_file(DEMO_DIR)) if OUTPUTS_IN_STORAGE else user_file(DEMO_DIR)]


def get_cube_spec(wildcards):
    """The cube a job builds - grid, mask, indices, chunks, tile - as plain values
    (ndvicube.cube.spec.CubeSpec.from_params turns them back into the spec)."""
    area = get_area(wildcards)
    spec = CubeSpec(
        bbox=area.bbox,
        crs=area.crs,
        resolution=SETTINGS.resolution,
        indices=SETTINGS.indices,
        cloud_mask=SETTINGS.cloud_mask,
        cube=SETTINGS.cube,
        tile=get_tile(wildcards),
    )
    return spec.to_params()


def get_cube_fields(wildcards):
    """A field set's accepted polygons, whose chunks its sparse cube holds (none otherwise)."""
    area = get_area(wildcards)
    if area.field_set and area.polygons_file:
        return [f"results/{wildcards.area}/fields.parquet"]
    return []


def get_field_points(wildcards):
    """A field set's points as [lon, lat] (their chunks are in its cube); None for a box."""
    area = get_area(wildcards)
    return [[p.lon, p.lat] for p in area.points] if area.field_set else None


def get_tile_reuse(wildcards):
    """What a field set's tile job copies from besides its own store: its area's published
    cube (adding fields moves chunks between tiles' even shares); None otherwise."""
    if "tile" in wildcards.keys() and get_area(wildcards).field_set:
        return local_only_link(f"results/{wildcards.area}/ndvi.zarr")
    return None


def get_field_set(wildcards):
    """Whether the area is a field set (its tiles share its chunks, joined where they lie)."""
    return get_area(wildcards).field_set


def get_cube_config(wildcards):
    """Config values that shape an area's cube, recorded in its provenance attributes."""
    area = get_area(wildcards)
    return {
        "stac": dict(config["stac"]),
        "start": str(config["start"]),
        "end": str(config["end"]),
        "resolution": SETTINGS.resolution,
        "cube": asdict(SETTINGS.cube),
        "area": {
            "name": area.name,
            "bbox": list(area.bbox),
            "crs": area.crs,
            "tiles": list(area.tiles),
        },
        "cloud_mask": asdict(SETTINGS.cloud_mask),
        "on_missing_asset": SETTINGS.on_missing_asset,
        "indices": list(SETTINGS.indices),
    }


def get_final_outputs(wildcards):
    """Everything `snakemake` builds by default, per area: cube, quick-look and composites;
    the point series, smoothed series, seasons and figures when it has points; the polygon
    tables and the rejected fields when it has polygons."""
    outputs = []
    for name, area in SETTINGS.areas.items():
        # The cube is a target itself: after a failed cube job (its output removed), the next
        # run rebuilds it, and what reads it, instead of calling the older tables up to date.
        outputs += [
            CUBE.format(area=name),
            f"results/{name}/quicklook.png",
            f"results/{name}/viewer",
        ]
        if area.points:
            outputs += [
                f"results/{name}/series_raw.csv",
                f"results/{name}/series_smoothed.csv",
                f"results/{name}/phenology.csv",
                f"results/{name}/plots",
                f"results/{name}/overview.png",
            ]
        if SETTINGS.composites is not None:
            outputs += [
                f"results/{name}/composites.versions/workflow.zarr",
                f"results/{name}/composites",
            ]
        if area.polygons_file:
            outputs += [
                f"results/{name}/polygons_{table}.csv"
                for table in ("raw", "smoothed", "phenology")
            ]
            outputs += [
                f"results/{name}/fields_rejected.csv",
                f"results/{name}/fields_overview.png",
            ]
    # Written by a job of its own then (workflow/rules/storage.smk).
    if OUTPUTS_IN_STORAGE:
        outputs.append("results/index.html")
    return outputs


#: Where the demo catalog is generated: the folder of stac.url (config/demo.yaml).
DEMO_DIR = (
    os.path.relpath(Path(SETTINGS.stac.url).parent)
    if SETTINGS.demo is not None
    else None
)


# Outputs in object storage through Snakemake: `--default-storage-provider s3
# --default-storage-prefix s3://bucket/run`, or `--workflow-profile profiles/s3` (docs/cloud.md).
# Snakemake then maps every input and output path of the rules to the bucket, uploads what a job
# wrote and fetches what it reads; logs too. These helpers say what stays on this disk.

#: Whether the rules' outputs go to a storage provider's bucket rather than to results/ here.
OUTPUTS_IN_STORAGE = bool(
    getattr(workflow.storage_settings, "default_storage_provider", None)
)

#: The S3 plugin's settings that are credentials.
CREDENTIAL_FLAGS = (
    "--storage-s3-access-key",
    "--storage-s3-secret-key",
    "--storage-s3-token",
)


def refuse_credentials_on_the_command_line(argv):
    """Stop before anything is written when a credential is a command-line flag: Snakemake
    prints its command line and keeps it in .snakemake/log/. The environment or ~/.aws carry
    them instead (Snakemake hands them to remote jobs as environment variables too)."""
    names = {arg.split("=")[0] for arg in argv if arg.startswith("--storage-s3-")}
    # argparse takes a flag's unambiguous abbreviation too (--storage-s3-secret).
    given = sorted(n for n in names if any(f.startswith(n) for f in CREDENTIAL_FLAGS))
    if given:
        raise WorkflowError(
            f"{', '.join(given)} given on the command line: Snakemake prints its command "
            "line and writes it into .snakemake/log/, so the credential would be kept in a "
            "file. Nothing has run and nothing was written. Give credentials in the "
            "environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN or "
            "AWS_PROFILE) or in ~/.aws/credentials, as boto3 reads them (docs/cloud.md)."
        )


refuse_credentials_on_the_command_line(sys.argv)


def user_file(path):
    """A file of the user's (a polygons or points file; the demo's generated catalog, which
    stands for the archive): read where it is on this disk, never looked for in the bucket.
    A str is passed as it is, keeping the flags of directory()."""
    return local(path if isinstance(path, str) else str(path))


def local_only_link(path):
    """``path`` (an area's ndvi.zarr or composites.zarr: a symbolic link to the newest
    read-only version), or None when the outputs go to a bucket: an object store has no links,
    and versions published outside the rules' outputs would stay on this disk, never uploaded.
    The rules' outputs (cube/workflow.zarr, composites.versions/workflow.zarr) are what a reader
    opens there."""
    return None if OUTPUTS_IN_STORAGE else path


def get_composites_link(wildcards):
    """What readers open: results/{area}/composites.zarr, a link to the newest version (None
    when the outputs go to a bucket: `local_only_link`)."""
    return local_only_link(f"results/{wildcards.area}/composites.zarr")


def submitting_process():
    """Whether this is the Snakemake a user started (not a job's subprocess on a node)."""
    return workflow.exec_mode.name == "DEFAULT"


def jobs_run_in_threads_here():
    """Whether the `run:` jobs run in threads of this process (`force-use-threads`)."""
    return workflow.use_threads and submitting_process()


def warn_if_light_jobs_spawn():
    """Say so when each light job (the `run:` rules) will start a Snakemake process of its own:
    Snakemake runs them in threads of its process only with --force-use-threads, which
    profiles/default sets, or under a cluster executor. Without it (`--workflow-profile none`,
    or another workflow profile that lacks the key) the results are the same, but each light job
    pays Snakemake's start-up and the workflow's parsing (docs/performance.md)."""
    if workflow.use_threads or not submitting_process():
        return
    logger.warning(
        "ndvicube: the light jobs (search, tables, figures, quick-look...) will each start a "
        "Snakemake process of their own, which costs seconds per job (docs/performance.md). "
        "Snakemake runs them in threads of its own process with --force-use-threads, which "
        "the workflow's profiles/default sets: add `--force-use-threads` to the command or "
        "`force-use-threads: true` to your profile."
    )


def prepare_jobs_here():
    """Where the jobs run in this process, have their libraries imported before they start:
    the light jobs' by a fork server, whose children then run them (ndvicube/jobs/forked.py),
    started first, since an import here would make it wait; the search's and the cube job's
    by a thread of this process (ndvicube/jobs/preload.py), the cube's job following the
    search. Neither for a run of the search alone: the imports would hold up its exit.
    """
    if not jobs_run_in_threads_here():
        return
    from ndvicube.jobs.forked import FORKED_RULES, start_server
    from ndvicube.jobs.preload import LIGHT_JOB_MODULES, prepare_cube_jobs_in_background

    planned = {job.rule.name for job in workflow.dag.needrun_jobs()}
    if planned & FORKED_RULES:
        start_server(LIGHT_JOB_MODULES)
    if workflow.local_exec and planned & {"cube", "cube_tile"}:
        prepare_cube_jobs_in_background()


def stop_cube_jobs_on_interrupt():
    """Where jobs run in threads of this process, Ctrl-C stops a cube job's build too (a thread
    gets no signal: ndvicube/jobs/interrupt.py)."""
    if jobs_run_in_threads_here():
        from ndvicube.jobs.interrupt import stop_cube_jobs_on_interrupt as install

        install()


def serialise_imports_of_job_threads():
    """Where jobs run in threads of this process, one import at a time: two threads importing
    a package with circular imports (zarr) at once fail (ndvicube/jobs/import_lock.py).
    """
    if jobs_run_in_threads_here():
        from ndvicube.jobs.import_lock import serialise_imports

        serialise_imports()


# The preload last: an import of this thread after it started would wait for the preload's.
onstart:
    serialise_imports_of_job_threads()
    warn_if_light_jobs_spawn()
    stop_cube_jobs_on_interrupt()
    prepare_jobs_here()


# Exit as soon as the last job is done, not one idle second later, nor after a second of the
# interpreter collecting the jobs' objects (ndvicube/jobs/snakemake_exit.py).
# A cube from the output cache is published as the area's ndvi.zarr first.
onsuccess:
    from ndvicube.jobs.snakemake_exit import cancel_rescheduling_timers
    from ndvicube.jobs.snakemake_exit import leave_objects_to_exit

    publish_cached_cubes()
    logger.debug(
        f"ndvicube: cancelled {cancel_rescheduling_timers()} re-scheduling timer(s)"
    )
    leave_objects_to_exit()
    logger.debug("ndvicube: the jobs' objects are left to the exit, not collected")


onerror:
    from ndvicube.jobs.snakemake_exit import cancel_rescheduling_timers
    from ndvicube.jobs.snakemake_exit import leave_objects_to_exit

    logger.debug(
        f"ndvicube: cancelled {cancel_rescheduling_timers()} re-scheduling timer(s)"
    )
    leave_objects_to_exit()
    logger.debug("ndvicube: the jobs' objects are left to the exit, not collected")

"""Rules `cube` and `cube_tile`: read the stored scenes and write the masked index cube (Zarr)."""

import os

from ndvicube.compute import Compute
from ndvicube.cube.spec import CubeSpec
from ndvicube.jobs import build_cube
from ndvicube.jobs.job_exit import leave
from ndvicube.logs import job_logging

# Guarded: a local Dask cluster starts worker processes that re-import this file.
if __name__ == "__main__":
    with job_logging(snakemake.log[0], job=snakemake.rule):
        from ndvicube.cube.store import working_store  # xarray: imported as the job's work

        # What readers open (results/{area}/ndvi.zarr, a link to the newest version); None
        # for a tile, which only join_tiles reads.
        published = snakemake.params.published
        build_cube(
            CubeSpec.from_params(snakemake.params.spec),
            items_path=snakemake.input.scenes,
            out=snakemake.output.cube,
            work=working_store(published or snakemake.output.cube),
            skipped_out=snakemake.output.skipped,
            area=snakemake.wildcards.area,
            on_missing_asset=snakemake.params.on_missing_asset,
            config=snakemake.params.provenance,
            # How to compute and read changes no value: read at run time, not rule parameters.
            compute=Compute(
                **snakemake.config["compute"],
                threads=snakemake.threads,
                io_threads=snakemake.resources.io_threads,
            ),
            # Signing (tokens fetched when the job starts) changes no value either.
            profile=snakemake.config["stac"]["profile"],
            published=published,
            # Nor does how many published versions stay on disk.
            versions_kept=snakemake.config["cube_versions_kept"],
            # A field set: its accepted polygons and its points decide the chunks it holds.
            fields=snakemake.input.fields or None,
            field_points=snakemake.params.field_points,
            # Its grid is its accepted fields' (a field rejected after the search is not in it).
            fit_grid=snakemake.params.field_points is not None,
            reuse_from=snakemake.params.reuse_from,
            # Snakemake's output cache (--cache needs this variable) moves the output into the
            # cache and makes it writable by all: then it must share no file with the store.
            copy_output=bool(os.environ.get("SNAKEMAKE_OUTPUT_CACHE")),
            # s3://bucket/prefix: the cube is written there and the output is its manifest.
            cube_store=snakemake.config.get("cube_store"),
        )
    # The store is published: end the process without finalising Python (1 to 2 s for a
    # cube job's heap and modules, ndvicube.jobs.job_exit).
    leave()

"""Rules `cube` and `cube_tile`: read the stored scenes and write the masked index cube (Zarr)."""

from ndvicube.cube.store import working_store
from ndvicube.jobs import build_cube
from ndvicube.logs import job_logging

# Guarded: a local Dask cluster starts worker processes that re-import this file.
if __name__ == "__main__":
    with job_logging(snakemake.log[0], job=snakemake.rule):
        build_cube(
            items_path=snakemake.input.scenes,
            out=snakemake.output.cube,
            work=working_store(snakemake.output.cube),
            bbox=snakemake.params.bbox,
            crs=snakemake.params.crs,
            resolution=snakemake.params.resolution,
            scl_classes=snakemake.params.scl_classes,
            scl_buffer_m=snakemake.params.scl_buffer_m,
            max_cloud_probability=snakemake.params.max_cloud_probability,
            indices=snakemake.params.indices,
            time_chunk=snakemake.params.time_chunk,
            spatial_chunk=snakemake.params.spatial_chunk,
            tile=snakemake.params.tile,
            on_missing_asset=snakemake.params.on_missing_asset,
            skipped_out=snakemake.output.skipped,
            area=snakemake.wildcards.area,
            io_threads=snakemake.resources.io_threads,
            config=snakemake.params.provenance,
            # How to compute and read changes no value: read at run time, not rule parameters.
            scheduler=snakemake.config["compute"]["scheduler"],
            reader=snakemake.config["compute"]["reader"],
            read_deadline_s=snakemake.config["compute"]["read_deadline_s"],
            # Signing (tokens fetched when the job starts) changes no value either.
            profile=snakemake.config["stac"]["profile"],
            threads=snakemake.threads,
        )

"""Rule `composites`: an area's regular composites (Zarr) and their COGs, from the local cube."""

from ndvicube.jobs import build_composites
from ndvicube.logs import job_logging

with job_logging(snakemake.log[0], job="composites"):
    build_composites(
        cube_path=snakemake.input.cube,
        out=snakemake.output.store,
        cogs_out=snakemake.output.cogs,
        threads=snakemake.threads,
        # Not a param: how many published versions stay on disk reruns nothing.
        versions_kept=snakemake.config["cube_versions_kept"],
        **snakemake.params,
    )

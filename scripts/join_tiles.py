"""Rule `join_tiles`: assemble an area's cube from its tile stores (hard links, no copy)."""

from ndvicube.jobs import join_tiles
from ndvicube.logs import job_logging

with job_logging(snakemake.log[0], job="join_tiles"):
    join_tiles(
        tile_paths=snakemake.input.tiles,
        split=snakemake.params.split,
        out=snakemake.output.cube,
        crs=snakemake.params.crs,
        skipped=snakemake.input.skipped,
        skipped_out=snakemake.output.skipped,
        published=snakemake.params.published,
        versions_kept=snakemake.config["cube_versions_kept"],
        field_set=snakemake.params.field_set,
    )

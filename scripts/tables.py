"""Rule `tables`: an area's point series - raw, smoothed - and their seasons, in one job."""

from ndvicube.geo import Point
from ndvicube.jobs import point_tables
from ndvicube.logs import job_logging

with job_logging(snakemake.log[0], job="tables"):
    point_tables(
        cube_path=snakemake.input.cube,
        points=[Point(**p) for p in snakemake.params.points],
        raw_out=snakemake.output.raw,
        smoothed_out=snakemake.output.smoothed,
        phenology_out=snakemake.output.phenology,
        smoothing=snakemake.params.smoothing,
        phenology=snakemake.params.phenology,
    )

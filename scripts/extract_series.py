"""Rule `series`: the cube's indices at every point and solar day."""

from ndvicube.config import Point
from ndvicube.jobs import extract_series
from ndvicube.logs import job_logging

with job_logging(snakemake.log[0], job="series"):
    extract_series(
        cube_path=snakemake.input.cube,
        points=[Point(**p) for p in snakemake.params.points],
        out=snakemake.output.raw,
    )

"""Rule `polygon_series`: mean, median, count and clear fraction of the cube in each polygon."""

from ndvicube.jobs import extract_polygon_series
from ndvicube.logs import job_logging

with job_logging(snakemake.log[0], job="polygon_series"):
    extract_polygon_series(
        cube_path=snakemake.input.cube,
        polygons_path=snakemake.input.polygons,
        crs=snakemake.params.crs,
        out=snakemake.output.table,
        min_clear_fraction=snakemake.params.min_clear_fraction,
    )

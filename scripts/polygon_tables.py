"""Rule `polygon_tables`: statistics of the cube in each polygon, smoothed, and their seasons."""

from ndvicube.jobs import polygon_tables
from ndvicube.logs import job_logging

with job_logging(snakemake.log[0], job="polygon_tables"):
    polygon_tables(
        cube_path=snakemake.input.cube,
        fields_path=snakemake.input.fields,
        crs=snakemake.params.crs,
        min_clear_fraction=snakemake.params.min_clear_fraction,
        # How many cells are held at once changes no value: read at run time, not a parameter.
        batch_cells=snakemake.config["polygon_series"]["batch_cells"],
        raw_out=snakemake.output.raw,
        smoothed_out=snakemake.output.smoothed,
        phenology_out=snakemake.output.phenology,
        smoothing=snakemake.params.smoothing,
        phenology=snakemake.params.phenology,
        overview=snakemake.output.overview,
        area=snakemake.wildcards.area,
    )

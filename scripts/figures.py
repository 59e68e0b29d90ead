"""Rule `figures`: every series figure of an area - one per selected point, and the overview."""

from ndvicube.jobs import figures
from ndvicube.logs import job_logging

with job_logging(snakemake.log[0], job="figures"):
    figures(
        raw_path=snakemake.input.raw,
        smoothed_path=snakemake.input.smoothed,
        points=snakemake.params.points,
        area=snakemake.wildcards.area,
        plots_dir=snakemake.output.plots,
        overview=snakemake.output.overview,
        processes=snakemake.threads,
    )

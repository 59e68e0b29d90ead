"""Rules `plot_point` and `plot_overview`: raw vs smoothed figures."""

from ndvicube.jobs import plot
from ndvicube.logs import job_logging

with job_logging(snakemake.log[0], job="plot"):
    plot(
        raw_path=snakemake.input.raw,
        smoothed_path=snakemake.input.smoothed,
        point=snakemake.wildcards.get("point"),
        area=snakemake.wildcards.area,
        out=snakemake.output[0],
    )

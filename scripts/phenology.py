"""Rule `phenology`: start, peak and end of each season per point, from the smoothed series."""

from ndvicube.jobs import season_metrics
from ndvicube.logs import job_logging

with job_logging(snakemake.log[0], job="phenology"):
    season_metrics(
        smoothed_path=snakemake.input.smoothed,
        out=snakemake.output.table,
        fraction=snakemake.params.fraction,
        min_amplitude=snakemake.params.min_amplitude,
        index=snakemake.params.index,
    )

"""Rule `smooth`: the notebook's recipe, Savitzky-Golay or Whittaker (`smoothing.method`)."""

from ndvicube.jobs import smooth
from ndvicube.logs import job_logging

with job_logging(snakemake.log[0], job="smooth"):
    smooth(
        raw_path=snakemake.input.raw,
        out=snakemake.output.smoothed,
        method=snakemake.params.method,
        resample=snakemake.params.resample,
        window=snakemake.params.window,
        polyorder=snakemake.params.polyorder,
        lam=snakemake.params.lam,
    )

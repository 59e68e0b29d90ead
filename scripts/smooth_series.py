"""Rule `smooth`: the notebook's resample / interpolate / rolling-mean recipe."""

from ndvicube.jobs import smooth
from ndvicube.logs import job_logging

with job_logging(snakemake.log[0], job="smooth"):
    smooth(
        raw_path=snakemake.input.raw,
        out=snakemake.output.smoothed,
        resample=snakemake.params.resample,
        window=snakemake.params.window,
    )

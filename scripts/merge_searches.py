"""Rule `scenes`: merge an area's monthly searches into items.json (the cube's input)."""

from ndvicube.jobs import merge_searches
from ndvicube.logs import job_logging

with job_logging(snakemake.log[0], job="scenes"):
    merge_searches(
        parts=list(snakemake.input.months),
        url=snakemake.params.url,
        collection=snakemake.params.collection,
        bbox=snakemake.params.bbox,
        start=snakemake.params.start,
        end=snakemake.params.end,
        max_cloud_cover=snakemake.params.max_cloud_cover,
        area=snakemake.wildcards.area,
        out=snakemake.output.scenes,
    )

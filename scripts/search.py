"""Rule `search`: find an area's scenes of one month and store them as JSON."""

from ndvicube.jobs import search_area
from ndvicube.logs import job_logging

with job_logging(snakemake.log[0], job="search"):
    search_area(
        url=snakemake.params.url,
        collection=snakemake.params.collection,
        bbox=snakemake.params.bbox,
        start=snakemake.params.start,
        end=snakemake.params.end,
        max_cloud_cover=snakemake.params.max_cloud_cover,
        area=snakemake.wildcards.area,
        out=snakemake.output.month,
        allow_empty=True,
    )

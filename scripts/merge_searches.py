"""Rule `scenes`: merge an area's monthly searches into items.json (the cube's input)."""

from ndvicube.jobs import merge_searches
from ndvicube.logs import job_logging
from ndvicube.stac import SearchRequest

with job_logging(snakemake.log[0], job="scenes"):
    request = SearchRequest.from_params(**snakemake.params, area=snakemake.wildcards.area)
    merge_searches(request, parts=list(snakemake.input.months), out=snakemake.output.scenes)

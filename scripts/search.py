"""Rule `search`: find an area's scenes over the whole period and store them as items.json."""

from ndvicube.jobs import search_area
from ndvicube.logs import job_logging
from ndvicube.search.stac import SearchRequest

with job_logging(snakemake.log[0], job="search"):
    request = SearchRequest.from_params(**snakemake.params, area=snakemake.wildcards.area)
    search_area(request, out=snakemake.output.scenes)

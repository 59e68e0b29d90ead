# Stage 1: find the scenes of an area over the whole period: one job per area. A longer period
# or a refresh searches the whole period again (one paged query, cheap; it also picks up
# reprocessed items); the cube job then reads only the solar days whose items changed.


rule search:
    input:
        get_demo_catalog,
    output:
        scenes="results/{area}/items.json",
    log:
        "results/{area}/logs/search.log",
    cache: "omit-software"
    params:
        url=SETTINGS.stac.url,
        collection=SETTINGS.stac.collection,
        max_cloud_cover=SETTINGS.stac.max_cloud_cover,
        start=str(SETTINGS.start),
        end=str(SETTINGS.end),
        bbox=get_area_bbox,
        profile=SETTINGS.stac.profile,
    run:
        from ndvicube.jobs import search_area
        from ndvicube.logs import job_logging
        from ndvicube.search.stac import SearchRequest

        with job_logging(log[0], job=rule):
            request = SearchRequest.from_params(**params, area=wildcards.area)
            search_area(request, out=output.scenes)

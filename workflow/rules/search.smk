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
        from ndvicube.jobs.rules import run_job

        run_job(rule, input, output, params, wildcards, threads, log, config)

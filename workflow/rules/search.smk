# Stage 1: find the scenes of an area, one job per calendar month (so a longer period searches
# only its new months), then merge the months into the cube's input, sorted.


rule search:
    input:
        get_demo_catalog,
    output:
        month="results/{area}/search/{month}.json",
    log:
        "results/{area}/logs/search_{month}.log",
    cache: "omit-software"
    conda:
        "../envs/ndvicube.yaml"
    params:
        url=SETTINGS.stac_url,
        collection=SETTINGS.collection,
        max_cloud_cover=SETTINGS.max_cloud_cover,
        start=get_month_start,
        end=get_month_end,
        bbox=get_area_bbox,
    script:
        "../../scripts/search.py"


rule scenes:
    input:
        months=get_month_searches,
    output:
        scenes="results/{area}/items.json",
    log:
        "results/{area}/logs/scenes.log",
    conda:
        "../envs/ndvicube.yaml"
    params:
        url=SETTINGS.stac_url,
        collection=SETTINGS.collection,
        max_cloud_cover=SETTINGS.max_cloud_cover,
        start=str(SETTINGS.start),
        end=str(SETTINGS.end),
        bbox=get_area_bbox,
    script:
        "../../scripts/merge_searches.py"

# Stage 1: find the scenes of an area and store them (sorted) as the cube's input.


rule search:
    input:
        get_demo_catalog,
    output:
        scenes="results/{area}/items.json",
    log:
        "results/{area}/logs/search.log",
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
        "../../scripts/search.py"

# Stage 2: read red, nir and scl of the stored scenes and write the masked NDVI cube to Zarr.


rule cube:
    input:
        scenes="results/{area}/items.json",
    output:
        # Updated in place: the job copies the days it already holds and reads only new scenes.
        cube=update(directory("results/{area}/ndvi.zarr")),
    log:
        "results/{area}/logs/cube.log",
    cache: "omit-software"
    conda:
        "../envs/ndvicube.yaml"
    threads: 2
    resources:
        # Concurrent COG reads of the job (network-bound, so more than its cores).
        io_threads=16,
        mem_mb=2000,
    params:
        bbox=get_area_bbox,
        crs=get_area_crs,
        resolution=SETTINGS.resolution,
        scl_classes=list(SETTINGS.scl_classes),
        provenance=get_cube_config,
    script:
        "../../scripts/build_cube.py"

# Stage 3: point series from the cube, then the notebook's smoothing.


rule series:
    input:
        cube="results/{area}/ndvi.zarr",
        points=get_points_file,
    output:
        raw="results/{area}/series_raw.csv",
    log:
        "results/{area}/logs/series.log",
    conda:
        "../envs/ndvicube.yaml"
    params:
        points=get_area_points,
    script:
        "../../scripts/extract_series.py"


rule smooth:
    input:
        raw="results/{area}/series_raw.csv",
    output:
        smoothed="results/{area}/series_smoothed.csv",
    log:
        "results/{area}/logs/smooth.log",
    conda:
        "../envs/ndvicube.yaml"
    params:
        resample=SETTINGS.resample,
        window=SETTINGS.window,
    script:
        "../../scripts/smooth_series.py"

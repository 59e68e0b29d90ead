# Stage 3: point series from the cube, then the notebook's smoothing.


rule series:
    input:
        cube="results/{area}/ndvi.zarr",
        points=get_points_file,
    output:
        raw="results/{area}/series_raw.csv",
    params:
        points=get_area_points,
    log:
        "results/{area}/logs/series.log",
    script:
        "../../scripts/extract_series.py"


rule smooth:
    input:
        raw="results/{area}/series_raw.csv",
    output:
        smoothed="results/{area}/series_smoothed.csv",
    params:
        resample=SETTINGS.resample,
        window=SETTINGS.window,
    log:
        "results/{area}/logs/smooth.log",
    script:
        "../../scripts/smooth_series.py"

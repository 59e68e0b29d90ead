# Stage 3: point series from the cube, their smoothing, and season metrics.


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
        method=SETTINGS.smoothing_method,
        resample=SETTINGS.resample,
        window=SETTINGS.window,
        polyorder=SETTINGS.polyorder,
        lam=SETTINGS.lam,
    script:
        "../../scripts/smooth_series.py"


rule phenology:
    input:
        smoothed="results/{area}/series_smoothed.csv",
    output:
        table="results/{area}/phenology.csv",
    log:
        "results/{area}/logs/phenology.log",
    conda:
        "../envs/ndvicube.yaml"
    params:
        fraction=SETTINGS.season_fraction,
        min_amplitude=SETTINGS.min_amplitude,
    script:
        "../../scripts/phenology.py"

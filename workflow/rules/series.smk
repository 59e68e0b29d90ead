# Stage 3: point series from the cube, their smoothing, and season metrics.


rule series:
    input:
        cube="results/{area}/ndvi.zarr",
        points=get_points_file,
    output:
        raw=report(
            "results/{area}/series_raw.csv",
            category="Tables",
            labels={"area": "{area}", "table": "point series (raw)"},
        ),
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
        smoothed=report(
            "results/{area}/series_smoothed.csv",
            category="Tables",
            labels={"area": "{area}", "table": "point series (smoothed)"},
        ),
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
        table=report(
            "results/{area}/phenology.csv",
            category="Tables",
            labels={"area": "{area}", "table": "phenology (points)"},
        ),
    log:
        "results/{area}/logs/phenology.log",
    conda:
        "../envs/ndvicube.yaml"
    params:
        fraction=SETTINGS.season_fraction,
        index=SETTINGS.phenology_index,
        min_amplitude=SETTINGS.min_amplitude,
    script:
        "../../scripts/phenology.py"


# Polygons (areas with `polygons:`): per-date statistics inside each polygon, smoothed with the
# clear fraction as weight (whittaker), and their seasons.
rule polygon_series:
    input:
        cube="results/{area}/ndvi.zarr",
        polygons=get_polygons_file,
    output:
        table=report(
            "results/{area}/polygons_raw.csv",
            category="Tables",
            labels={"area": "{area}", "table": "polygon series (raw)"},
        ),
    log:
        "results/{area}/logs/polygon_series.log",
    conda:
        "../envs/ndvicube.yaml"
    params:
        crs=get_area_crs,
        min_clear_fraction=SETTINGS.min_clear_fraction,
    script:
        "../../scripts/polygon_series.py"


use rule smooth as smooth_polygons with:
    input:
        raw="results/{area}/polygons_raw.csv",
    output:
        smoothed=report(
            "results/{area}/polygons_smoothed.csv",
            category="Tables",
            labels={"area": "{area}", "table": "polygon series (smoothed)"},
        ),
    log:
        "results/{area}/logs/smooth_polygons.log",


use rule phenology as polygon_phenology with:
    input:
        smoothed=report(
            "results/{area}/polygons_smoothed.csv",
            category="Tables",
            labels={"area": "{area}", "table": "polygon series (smoothed)"},
        ),
    output:
        table=report(
            "results/{area}/polygons_phenology.csv",
            category="Tables",
            labels={"area": "{area}", "table": "phenology (polygons)"},
        ),
    log:
        "results/{area}/logs/polygon_phenology.log",

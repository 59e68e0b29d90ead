# Stage 3: the tables - point series from the cube, smoothed, and their seasons - in one job per
# area; the same for the area's polygons when it has any. A job costs about a second before it
# does anything, more than these steps cost together for thousands of points.


rule tables:
    input:
        cube=CUBE,
        points=get_points_file,
    output:
        raw=report(
            "results/{area}/series_raw.csv",
            category="Tables",
            labels={"area": "{area}", "table": "point series (raw)"},
        ),
        smoothed=report(
            "results/{area}/series_smoothed.csv",
            category="Tables",
            labels={"area": "{area}", "table": "point series (smoothed)"},
        ),
        phenology=report(
            "results/{area}/phenology.csv",
            category="Tables",
            labels={"area": "{area}", "table": "phenology (points)"},
        ),
    log:
        "results/{area}/logs/tables.log",
    params:
        points=get_area_points,
        smoothing=get_smoothing,
        phenology=get_phenology,
    run:
        from ndvicube.jobs.rules import run_job

        run_job(rule, input, output, params, wildcards, threads, log, config)


# Polygons (areas with `polygons:`): per-date statistics inside each field the `fields` job
# accepted, smoothed with the clear fraction as weight (whittaker), and their seasons.
rule polygon_tables:
    input:
        cube=CUBE,
        fields="results/{area}/fields.parquet",
    output:
        raw=report(
            "results/{area}/polygons_raw.csv",
            category="Tables",
            labels={"area": "{area}", "table": "polygon series (raw)"},
        ),
        smoothed=report(
            "results/{area}/polygons_smoothed.csv",
            category="Tables",
            labels={"area": "{area}", "table": "polygon series (smoothed)"},
        ),
        phenology=report(
            "results/{area}/polygons_phenology.csv",
            category="Tables",
            labels={"area": "{area}", "table": "phenology (polygons)"},
        ),
        # Every field at a glance (median and 10-90 % band), drawn from the tables above.
        overview=report(
            "results/{area}/fields_overview.png",
            category="Areas",
            labels={"area": "{area}", "figure": "fields overview"},
        ),
    log:
        "results/{area}/logs/polygon_tables.log",
    params:
        crs=get_area_crs,
        min_clear_fraction=SETTINGS.polygon_series.min_clear_fraction,
        smoothing=get_smoothing,
        phenology=get_phenology,
    run:
        from ndvicube.jobs.rules import run_job

        run_job(rule, input, output, params, wildcards, threads, log, config)

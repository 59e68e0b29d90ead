# Stage 3: the tables - point series from the cube, smoothed, and their seasons - in one job per
# area; the same for the area's polygons when it has any. A job costs about a second before it
# does anything, more than these steps cost together for thousands of points.


rule tables:
    input:
        cube="results/{area}/cube/workflow.zarr",
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
        from ndvicube.geo import Point
        from ndvicube.jobs import point_tables
        from ndvicube.logs import job_logging

        with job_logging(log[0], job=rule):
            point_tables(
                cube_path=input.cube,
                points=[Point(**p) for p in params.points],
                raw_out=output.raw,
                smoothed_out=output.smoothed,
                phenology_out=output.phenology,
                smoothing=params.smoothing,
                phenology=params.phenology,
            )


# Polygons (areas with `polygons:`): per-date statistics inside each field the `fields` job
# accepted, smoothed with the clear fraction as weight (whittaker), and their seasons.
rule polygon_tables:
    input:
        cube="results/{area}/cube/workflow.zarr",
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
        from ndvicube.jobs import polygon_tables
        from ndvicube.logs import job_logging

        with job_logging(log[0], job=rule):
            polygon_tables(
                cube_path=input.cube,
                fields_path=input.fields,
                crs=params.crs,
                min_clear_fraction=params.min_clear_fraction,
                # How many cells are held at once changes no value: not a parameter.
                batch_cells=config["polygon_series"]["batch_cells"],
                raw_out=output.raw,
                smoothed_out=output.smoothed,
                phenology_out=output.phenology,
                smoothing=params.smoothing,
                phenology=params.phenology,
                overview=output.overview,
                area=wildcards.area,
            )

# Stage 1b (areas with `polygons:`): the fields screened once per area, after the search - each
# accepted (a self-intersection repaired) or rejected as invalid, empty, duplicated, too large
# (fields.max_field_km2) or outside every scene of items.json - so one bad field never sinks the
# run. What the polygon series (and
# a field set's cube) read is fields.parquet, in the cube's CRS, not the user's file.


rule fields:
    input:
        scenes="results/{area}/items.json",
        polygons=get_polygons_file,
    output:
        fields="results/{area}/fields.parquet",
        rejected=report(
            "results/{area}/fields_rejected.csv",
            category="Tables",
            labels={"area": "{area}", "table": "rejected fields"},
        ),
    log:
        "results/{area}/logs/fields.log",
    params:
        crs=get_area_crs,
        has_points=get_area_has_points,
        max_field_km2=SETTINGS.fields.max_field_km2,
    run:
        from ndvicube.jobs.rules import run_job

        run_job(rule, input, output, params, wildcards, threads, log, config)

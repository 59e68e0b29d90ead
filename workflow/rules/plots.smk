# Stage 4: figures - raw vs smoothed indices per point, one overview and one quick-look per area.


rule plot_point:
    input:
        raw="results/{area}/series_raw.csv",
        smoothed="results/{area}/series_smoothed.csv",
    output:
        report(
            "results/{area}/plots/{point}.png",
            category="Points",
            subcategory="{area}",
            labels={"area": "{area}", "point": "{point}"},
        ),
    log:
        "results/{area}/logs/plot_{point}.log",
    conda:
        "../envs/ndvicube.yaml"
    script:
        "../../scripts/plot_series.py"


rule plot_overview:
    input:
        raw="results/{area}/series_raw.csv",
        smoothed="results/{area}/series_smoothed.csv",
    output:
        report(
            "results/{area}/overview.png",
            category="Areas",
            labels={"area": "{area}", "figure": "overview"},
        ),
    log:
        "results/{area}/logs/plot_overview.log",
    conda:
        "../envs/ndvicube.yaml"
    script:
        "../../scripts/plot_series.py"


rule quicklook:
    input:
        cube="results/{area}/ndvi.zarr",
    output:
        figure=report(
            "results/{area}/quicklook.png",
            category="Areas",
            labels={"area": "{area}", "figure": f"monthly {SETTINGS.indices[0]} maps"},
        ),
    log:
        "results/{area}/logs/quicklook.log",
    conda:
        "../envs/ndvicube.yaml"
    params:
        points=get_area_points,
        index=SETTINGS.indices[0],
    script:
        "../../scripts/quicklook.py"

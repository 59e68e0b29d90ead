# Stage 4: figures - every series figure of an area in one job (a figure per selected point, and
# the overview of all points), and the quick-look maps: the composites (with `composites:` in the
# config), or the cube's monthly medians.


rule figures:
    input:
        raw="results/{area}/series_raw.csv",
        smoothed="results/{area}/series_smoothed.csv",
    output:
        plots=report(
            directory("results/{area}/plots"),
            patterns=["{point}.png"],
            category="Points",
            subcategory="{area}",
            labels={"area": "{area}", "point": "{point}"},
        ),
        overview=report(
            "results/{area}/overview.png",
            category="Areas",
            labels={"area": "{area}", "figure": "overview"},
        ),
    log:
        "results/{area}/logs/figures.log",
    # Point figures are drawn by two processes from 20 on: 50 figures 4.37 s -> 2.25 s; one
    # below, so a small area's figures need not wait for a second core (docs/performance.md).
    threads: get_figure_threads
    params:
        points=get_plotted_points,
    run:
        from ndvicube.jobs.rules import run_job

        run_job(rule, input, output, params, wildcards, threads, log, config)


rule quicklook:
    input:
        unpack(get_quicklook_maps),
    output:
        figure=report(
            "results/{area}/quicklook.png",
            category="Areas",
            labels={"area": "{area}", "figure": QUICKLOOK_LABEL},
        ),
        # The viewer is written by the same job from the same maps: a job of its own would
        # cost seconds of start-up for a fraction of a second of work. In `--report
        # report.zip` only: Snakemake refuses a folder in an HTML report (docs/outputs.md,
        # "The viewer").
        viewer=viewer_folder("results/{area}/viewer"),
    log:
        "results/{area}/logs/quicklook.log",
    # The viewer's tiles of a large area are drawn on two threads (numpy and zlib release the
    # GIL), a small area's on one (docs/performance.md, "The viewer").
    threads: get_quicklook_threads
    params:
        points=get_area_points,
        index=SETTINGS.indices[0],
        indices=list(SETTINGS.indices),
        tile_cache="results/{area}/.viewer-tiles",
    run:
        from ndvicube.jobs.rules import run_job

        run_job(rule, input, output, params, wildcards, threads, log, config)

# Stage 5 (with `composites:` in the config): regular composites of the local cube - one map per
# period and index, in composites.zarr and as Cloud-Optimized GeoTIFFs. One job per area; it
# never reads the COG archive, and recomputes only the periods whose solar days changed.


rule composites:
    input:
        cube=CUBE,
    output:
        # Hard links of what the job keeps in results/{area}/.work/ between runs (as the cube).
        # Readers open results/{area}/composites.zarr: no output (Snakemake deletes an output
        # when its job starts), but a link the job moves to the newest read-only version
        # composites.versions/v{N}.zarr in one rename, as the cube's ndvi.zarr (docs/reruns.md).
        store=directory("results/{area}/composites.versions/workflow.zarr"),
        cogs=directory("results/{area}/composites"),
    log:
        "results/{area}/logs/composites.log",
    conda:
        "../envs/ndvicube.yaml"
    threads: 2
    resources:
        mem_mb=1500,
        runtime=30,
    params:
        period=lambda wildcards: SETTINGS.composites.period,
        statistic=lambda wildcards: SETTINGS.composites.statistic,
        indices=lambda wildcards: list(SETTINGS.composites.indices),
        start=str(SETTINGS.start),
        end=str(SETTINGS.end),
        published=get_composites_link,
    script:
        "../../scripts/composites.py"


# `snakemake results/{area}/composites.zarr` asked for the composites while they were this
# rule's output. This rule makes no job: its input function stops the run naming the target.
rule published_composites:
    input:
        refuse_published_composites,
    output:
        "results/{area}/composites.zarr",

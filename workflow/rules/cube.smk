# Stage 2: read the bands the indices need (red, nir for NDVI) and scl of the stored scenes,
# and write the masked index cube to Zarr.
# An area with `tiles: [rows, cols]` is built by one `cube_tile` job per tile and joined by
# `join_tiles` (hard links, no copy; with `cube_store` the tiles write their chunks in place in
# the bucket and the join writes the metadata and pointer); other areas by one `cube` job.
# Readers open results/{area}/ndvi.zarr: no job's output (Snakemake deletes an output when its
# job starts), but a link the job points at the newest read-only version cube/v{N}.zarr, in one
# rename; the later rules read the output cube/workflow.zarr (docs/reruns.md). As a target it
# names that output (`published_cube`).
# The cube is a `run:` block like the light jobs: under profiles/default it runs in a thread of
# Snakemake's process, its libraries imported in the background from `onstart` (no
# interpreter, script preamble and imports of its own: docs/performance.md, "The cube job in
# Snakemake's process"); a cluster runs it on a node, in the job's Snakemake process.


rule cube:
    input:
        scenes="results/{area}/items.json",
        # A field set's accepted polygons: its cube holds only the chunks they touch.
        fields=get_cube_fields,
    output:
        # Hard links of the store the job keeps in results/{area}/.work/ between runs: it copies
        # the days that store already holds and reads only new scenes (docs/reruns.md). With
        # `cube_store`, the manifest of the version it wrote in the bucket (docs/cloud.md).
        cube=get_cube_output(),
        # Scenes left out under `on_missing_asset: skip` (a header only when none was).
        skipped="results/{area}/skipped.csv",
    log:
        "results/{area}/logs/cube.log",
    wildcard_constraints:
        area=WHOLE_AREAS,
    cache: "omit-software"
    # The job's runtime numbers, declared once (measured: README "Performance"). A site that
    # needs others overrides them in its profile's set-resources (docs/cluster.md).
    threads: 2
    resources:
        # Concurrent COG reads of the job (network-bound, so more than its cores).
        io_threads=IO_THREADS,
        mem_mb=2000,
        runtime=60,
    params:
        # The grid, mask, indices, chunks and tile (ndvicube.cube.spec.CubeSpec.to_params).
        spec=get_cube_spec,
        on_missing_asset=SETTINGS.on_missing_asset,
        provenance=get_cube_config,
        # The link readers open, published by the job (None for a tile).
        published=get_cube_link,
        # A field set's points (their chunks are in its sparse cube); None for a box.
        field_points=get_field_points,
        # A field set's tile copies chunks from its area's cube too (None otherwise).
        reuse_from=get_tile_reuse,
    run:
        from ndvicube.jobs.rules import run_job

        run_job(
            rule, input, output, params, wildcards, threads, log, config, resources
        )


use rule cube as cube_tile with:
    output:
        # With `cube_store`, the manifest of the tile's store in the area's pending version.
        cube=get_tile_output(),
        skipped="results/{area}/tiles/{tile}.skipped.csv",
    log:
        "results/{area}/logs/cube-{tile}.log",
    wildcard_constraints:
        area=TILED_AREAS,
        tile=r"\d+-\d+",


# `snakemake results/{area}/ndvi.zarr` asked for the cube while it was the cube rule's output.
# This rule makes no job: its input function stops the run naming the target to ask for.
rule published_cube:
    input:
        refuse_published_cube,
    output:
        "results/{area}/ndvi.zarr",


rule join_tiles:
    input:
        tiles=get_area_tiles,
        skipped=get_area_tile_skips,
        # With the tiles' own params below: what reruns the tiles reruns the join too, so a
        # failed tile job (its output removed) is rebuilt by the next run, not left behind.
        scenes="results/{area}/items.json",
    output:
        # With `cube_store`, the manifest of the version the join finished (docs/cloud.md).
        cube=get_cube_output(),
        skipped="results/{area}/skipped.csv",
    log:
        "results/{area}/logs/join_tiles.log",
    wildcard_constraints:
        area=TILED_AREAS,
    params:
        split=get_area_split,
        crs=get_area_crs,
        provenance=get_cube_config,
        published=get_cube_link,
        field_set=get_field_set,
    run:
        from ndvicube.jobs.rules import run_job

        run_job(rule, input, output, params, wildcards, threads, log, config)

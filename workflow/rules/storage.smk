# Outputs in a bucket (--default-storage-provider s3; docs/cloud.md). Only then: results/index.html,
# which each area's quick-look job writes beside the viewers it finds on this disk, is the output
# of a job of its own, so that Snakemake uploads it with the rest. Its inputs are the quick-looks
# (each written by the job that writes the area's viewer): small files to fetch, where the viewers
# are whole folders.


if OUTPUTS_IN_STORAGE:

    localrules:
        areas_index,

    rule areas_index:
        input:
            expand("results/{area}/quicklook.png", area=SETTINGS.areas),
        output:
            "results/index.html",
        log:
            "results/logs/areas_index.log",
        params:
            areas=list(SETTINGS.areas),
        run:
            from ndvicube.logs import job_logging
            from ndvicube.viewer.page import write_areas_index

            with job_logging(log[0], job="areas_index"):
                write_areas_index(Path(output[0]).parent, areas=params.areas)

# ndvicube: Sentinel-2 STAC search -> masked NDVI Zarr cube -> point series -> smoothed CSVs and plots.
# This file only declares; helpers live in workflow/rules/common.smk, one .smk per stage.
from snakemake.utils import min_version

min_version("9.0")


try:  # the config is data: config.yaml checked before Snakemake's loader reads it (impossible
    # dates, !!python tags, YTE templates); --configfile files, which Snakemake's command line
    # has read already, before any job (ndvicube/config/configfile.py)
    from ndvicube.config import check_config_files
except ImportError:  # not installed: common.smk says how to install it
    check_config_files = lambda paths: None
check_config_files(["config.yaml", *workflow.overwrite_configfiles])


configfile: "config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/demo.smk"
include: "workflow/rules/search.smk"
include: "workflow/rules/fields.smk"
include: "workflow/rules/cube.smk"
include: "workflow/rules/series.smk"
include: "workflow/rules/plots.smk"
include: "workflow/rules/composites.smk"
include: "workflow/rules/storage.smk"


# Jobs that take seconds run in the Snakemake process's machine, never as cluster submissions:
# under the SLURM profile only the cube (or its tiles) is submitted.
localrules:
    all,
    search,
    fields,
    tables,
    polygon_tables,
    figures,
    quicklook,
    join_tiles,


rule all:
    default_target: True
    input:
        get_final_outputs,

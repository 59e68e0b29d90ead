#!/usr/bin/env bash
# Run by Snakemake inside the new conda environment of ndvicube.yaml, once, after creating it:
# install the ndvicube package (its dependencies are the environment's) from the checkout whose
# Snakefile is running. workflow/rules/common.smk exports that folder as NDVICUBE_SOURCE, since
# Snakemake runs this copy of the script from .snakemake/conda/, in the working directory.
set -euo pipefail
: "${NDVICUBE_SOURCE:?NDVICUBE_SOURCE is not set: run this through the ndvicube Snakefile}"
python -m pip install --no-deps --no-build-isolation -e "$NDVICUBE_SOURCE"

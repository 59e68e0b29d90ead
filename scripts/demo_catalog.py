"""Rule `demo_catalog`: generate the synthetic Sentinel-2 catalog for the offline demo."""

from ndvicube.demo import DemoCatalogSpec, generate_demo_catalog
from ndvicube.logs import job_logging

with job_logging(snakemake.log[0], job="demo_catalog"):
    spec = DemoCatalogSpec(
        seed=snakemake.params.seed, start=snakemake.params.start, end=snakemake.params.end
    )
    generate_demo_catalog(snakemake.output[0], spec)

"""Rule `fields`: an area's polygons screened; kept ones in fields.parquet, others with a reason."""

from ndvicube.jobs import fields
from ndvicube.logs import job_logging

with job_logging(snakemake.log[0], job="fields"):
    fields(
        polygons_path=snakemake.input.polygons,
        items_path=snakemake.input.scenes,
        crs=snakemake.params.crs,
        has_points=snakemake.params.has_points,
        fields_out=snakemake.output.fields,
        rejected_out=snakemake.output.rejected,
        max_field_km2=snakemake.params.max_field_km2,
    )

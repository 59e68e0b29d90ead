"""Rule `quicklook`: maps of an area's first index (NDVI by default), with points: the composites,
or the cube's monthly medians."""

from ndvicube.geo import Point
from ndvicube.jobs import quicklook
from ndvicube.logs import job_logging

with job_logging(snakemake.log[0], job="quicklook"):
    quicklook(
        cube_path=snakemake.input.maps,
        points=[Point(**p) for p in snakemake.params.points],
        area=snakemake.wildcards.area,
        out=snakemake.output.figure,
        index=snakemake.params.index,
        fields=snakemake.input.get("fields"),
    )

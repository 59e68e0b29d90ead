"""Rule `quicklook`: maps of an area's first index (NDVI by default), with points: the composites,
or the cube's monthly medians; and the area's viewer, and results/index.html listing them."""

from pathlib import Path

from ndvicube.geo import Point
from ndvicube.jobs import quicklook
from ndvicube.logs import job_logging
from ndvicube.viewer.page import write_areas_index

TABLES = ("series_raw", "series_smoothed", "phenology", "polygons_raw", "polygons_smoothed",
          "polygons_phenology", "fields_rejected")  # fmt: skip

with job_logging(snakemake.log[0], job="quicklook"):
    quicklook(
        cube_path=snakemake.input.maps,
        points=[Point(**p) for p in snakemake.params.points],
        area=snakemake.wildcards.area,
        out=snakemake.output.figure,
        index=snakemake.params.index,
        fields=snakemake.input.get("fields"),
        viewer=snakemake.output.viewer,
        tables={name: snakemake.input.get(name) for name in TABLES},
        tile_cache=snakemake.params.tile_cache,
        indices=snakemake.params.indices,
        threads=snakemake.threads,
    )
    write_areas_index(Path(snakemake.output.viewer).parent.parent)

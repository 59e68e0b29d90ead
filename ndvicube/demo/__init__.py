"""Deterministic synthetic Sentinel-2 L2A catalog shaped like Earth Search v1, with ground truth.

Why: the workflow, its tests and its benchmarks need a catalog that looks exactly like the real
``sentinel-2-c1-l2a`` collection (same item fields, asset keys, ``raster:bands`` scale/offset,
nodata 0, 10 m and 20 m bands + 20 m SCL, overlapping MGRS tiles, swath-edge nodata, clouds) but
runs offline and comes with the exact answer: the DN/SCL under every point in every item, and the
crop calendar that produced them.

- :mod:`ndvicube.demo.world`: the spec, tile layout, points, parcels, crop calendars, passes.
- :mod:`ndvicube.demo.scene`: one pass's pixels: sun, clouds, surface reflectance, tile arrays.
- :mod:`ndvicube.demo.stac`: item and collection JSON in Earth Search's shape.
- :mod:`ndvicube.demo.fields`: the field set (good fields and one of each rejected kind).
- :mod:`ndvicube.demo.field_truth`: the fields' true means, with exact coverage weights.
- :mod:`ndvicube.demo.catalog`: writes COGs, JSON, truth, points, fields, calendar; rewrites
  hrefs.
- :mod:`ndvicube.demo.truth`: reads the truth back: expected series, seasons, phenology errors.
- :mod:`ndvicube.demo.pc`: the same catalog in Planetary Computer's shape.
- :mod:`ndvicube.demo.__main__`: the command line, ``python -m ndvicube.demo OUT_DIR``.
"""

from ndvicube.demo.catalog import DemoCatalog, generate_demo_catalog, rewrite_hrefs
from ndvicube.demo.truth import (
    cube_spec,
    demo_phenology,
    demo_series,
    expected_series,
    phenology_errors,
    read_fields_truth,
    read_truth,
    true_seasons,
)
from ndvicube.demo.world import DemoCatalogSpec

__all__ = [
    "DemoCatalog",
    "DemoCatalogSpec",
    "cube_spec",
    "demo_phenology",
    "demo_series",
    "expected_series",
    "generate_demo_catalog",
    "phenology_errors",
    "read_fields_truth",
    "read_truth",
    "rewrite_hrefs",
    "true_seasons",
]

"""The fields stage: the polygons an area's series are made for, read, screened and bounded.

* :mod:`ndvicube.fields.read` - a fields file (GeoPackage, GeoJSON, GeoParquet, Shapefile, any
  CRS, an ``id`` column) as ``id`` and ``geometry``.
* :mod:`ndvicube.fields.checks` - each field accepted (self-intersections repaired) or rejected
  as ``invalid``, ``empty``, ``duplicated``, ``too large`` or ``outside every scene``.
* :mod:`ndvicube.fields.bounds` - the lon/lat box of a field set: its usable polygons and its
  points; a box wider than a UTM zone or a grid larger than ``fields.max_grid_pixels`` refused,
  naming the fields that make it so.
* :mod:`ndvicube.fields.chunks` - the cube chunks the fields touch (a field set's sparse cube).

Above the cube stage (``chunks`` places fields on a cube's grid) and below the series: the
config sizes a field set with it, the cube job finds the chunks to build with it, the polygon
series read the screened fields with it. Importing it costs nothing: geopandas and shapely are
imported by the functions that use them.
"""

from ndvicube.fields.bounds import FieldLimits, field_set_bbox
from ndvicube.fields.checks import (
    DUPLICATED,
    EMPTY,
    INVALID,
    OUTSIDE,
    REASONS,
    TOO_LARGE,
    Screening,
    area_km2,
    field_label,
    item_footprints,
    screen_fields,
)
from ndvicube.fields.read import FORMATS, check_fields_suffix, read_fields

__all__ = [
    "DUPLICATED",
    "EMPTY",
    "FORMATS",
    "INVALID",
    "OUTSIDE",
    "REASONS",
    "TOO_LARGE",
    "FieldLimits",
    "Screening",
    "area_km2",
    "check_fields_suffix",
    "field_label",
    "field_set_bbox",
    "item_footprints",
    "read_fields",
    "screen_fields",
]

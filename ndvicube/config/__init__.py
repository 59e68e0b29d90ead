"""The configuration: validated once, before any job starts, into typed settings.

* :mod:`~ndvicube.config.schema` - ``config.schema.yaml`` (package data): the keys, their
  defaults and types; applied with its defaults, its errors said in words; impossible unquoted
  YAML dates named with their key.
* :mod:`~ndvicube.config.areas` - the ``areas`` section: boxes, points (inline or CSV),
  polygons, tile splits, and which points get a figure.
* :mod:`~ndvicube.config.settings` - :class:`Settings`, one frozen dataclass per section named
  like its keys, and :func:`validate_config`, which builds it.

Config sections a stage receives are defined in that stage (``cloud_mask`` and ``cube`` in
:mod:`ndvicube.cube.spec`, ``smoothing`` and ``phenology`` in :mod:`ndvicube.timeseries`,
``compute`` in :mod:`ndvicube.compute`); this package sits above every stage.
"""

from ndvicube.config.areas import POINTS_ENCODING, Area, check_area_name, check_point_id
from ndvicube.config.schema import apply_schema, check_yaml_dates, load_schema
from ndvicube.config.settings import (
    Composites,
    Demo,
    Figures,
    PolygonSeries,
    Settings,
    Stac,
    validate_config,
)

__all__ = [
    "POINTS_ENCODING",
    "Area",
    "Composites",
    "Demo",
    "Figures",
    "PolygonSeries",
    "Settings",
    "Stac",
    "apply_schema",
    "check_area_name",
    "check_point_id",
    "check_yaml_dates",
    "load_schema",
    "validate_config",
]

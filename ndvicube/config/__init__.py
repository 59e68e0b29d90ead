"""The configuration: validated once, before any job starts, into typed settings.

* :mod:`~ndvicube.config.configfile` - the config file, read before Snakemake's loader: impossible
  unquoted dates named with their key, tags that would construct Python objects and YTE
  templates refused (the config is data).
* :mod:`~ndvicube.config.schema` - ``config.schema.yaml`` (package data): the keys, their
  defaults and types; applied with its defaults, its errors said in words.
* :mod:`~ndvicube.config.areas` - the ``areas`` section: boxes, points (inline or CSV),
  polygons, tile splits, and which points get a figure.
* :mod:`~ndvicube.config.settings` - :class:`Settings`, one frozen dataclass per section named
  like its keys, and :func:`validate_config`, which builds it.

Config sections a stage receives are defined in that stage (``cloud_mask`` and ``cube`` in
:mod:`ndvicube.cube.spec`, ``smoothing`` and ``phenology`` in :mod:`ndvicube.timeseries`,
``compute`` in :mod:`ndvicube.compute`); this package sits above every stage.
"""

from ndvicube.config.areas import POINTS_ENCODING, Area, check_area_name, check_point_id
from ndvicube.config.configfile import check_config_file, check_config_files
from ndvicube.config.schema import apply_schema, load_schema
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
    "check_config_file",
    "check_config_files",
    "check_point_id",
    "load_schema",
    "validate_config",
]

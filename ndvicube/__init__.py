"""ndvicube: cloud-masked Sentinel-2 NDVI cubes in Zarr and point time series.

The workflow (``Snakefile``) runs these steps; each is a function in :mod:`ndvicube.jobs`:
search a STAC source (:mod:`ndvicube.search.stac`), load and mask the cube (:mod:`ndvicube.cube.load`,
:mod:`ndvicube.cube.mask`, :mod:`ndvicube.cube.radiometry`), store it (:mod:`ndvicube.cube.store`), extract
and smooth point series (:mod:`ndvicube.timeseries.points`, :mod:`ndvicube.timeseries.smoothing`), and plot them
(:mod:`ndvicube.figures.plots`).
"""

from ndvicube.config import Area, Settings, validate_config
from ndvicube.errors import (
    ConfigError,
    ItemMetadataError,
    NdviCubeError,
    NoScenesError,
    SourceUnreachableError,
)
from ndvicube.timeseries.points import Point

__version__ = "0.1.0"

__all__ = [
    "Area",
    "ConfigError",
    "ItemMetadataError",
    "NdviCubeError",
    "NoScenesError",
    "Point",
    "Settings",
    "SourceUnreachableError",
    "__version__",
    "validate_config",
]

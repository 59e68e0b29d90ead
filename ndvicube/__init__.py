"""ndvicube: cloud-masked Sentinel-2 NDVI cubes in Zarr and point time series.

The workflow (``Snakefile``) runs these steps; each is a function in :mod:`ndvicube.jobs`:
search a STAC source (:mod:`ndvicube.stac`), load and mask the cube (:mod:`ndvicube.cube`,
:mod:`ndvicube.mask`, :mod:`ndvicube.radiometry`), store it (:mod:`ndvicube.store`), extract
and smooth point series (:mod:`ndvicube.series`, :mod:`ndvicube.smoothing`), and plot them
(:mod:`ndvicube.plots`).
"""

from ndvicube.config import Area, Point, Settings, validate_config
from ndvicube.errors import (
    ConfigError,
    ItemMetadataError,
    NdviCubeError,
    NoScenesError,
    SourceUnreachableError,
)

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

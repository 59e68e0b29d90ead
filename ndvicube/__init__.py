"""ndvicube: cloud-masked Sentinel-2 index cubes in Zarr, and time series at points and polygons.

The package follows the data, one stage package each, stacked in the order the data flows (a
stage imports only those before it, and the modules at the root):

* :mod:`ndvicube.search` - the STAC search and the items it keeps (``items.json``);
* :mod:`ndvicube.read` - every way a COG is read, retried or skipped;
* :mod:`ndvicube.cube` - the masked index cube: load, mask, radiometry, indices, store, update;
* :mod:`ndvicube.timeseries` - point and polygon series, smoothing, seasons, tables;
* :mod:`ndvicube.composites` - regular composites of the cube and their COGs;
* :mod:`ndvicube.figures` - the series figures and the maps.

Above them, :mod:`ndvicube.config` validates the configuration into typed settings,
:mod:`ndvicube.jobs` holds one module per workflow rule, and :mod:`ndvicube.demo` makes the
synthetic catalog the tests run on. At the root: :mod:`~ndvicube.errors`, :mod:`~ndvicube.logs`,
:mod:`~ndvicube.geo` and :mod:`~ndvicube.compute` (the Dask scheduler), which every stage uses.

The names below are imported on first use, so ``import ndvicube.search.stac`` does not import
the configuration (and the cube's libraries) with it.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

#: Public names and the module that holds each.
_NAMES = {
    "Area": "ndvicube.config",
    "Settings": "ndvicube.config",
    "validate_config": "ndvicube.config",
    "Point": "ndvicube.geo",
    "open_cube": "ndvicube.cube.store",
    "ConfigError": "ndvicube.errors",
    "ItemMetadataError": "ndvicube.errors",
    "NdviCubeError": "ndvicube.errors",
    "NoScenesError": "ndvicube.errors",
    "SourceUnreachableError": "ndvicube.errors",
}

__all__ = [*sorted(_NAMES), "__version__"]


def __getattr__(name: str) -> Any:
    if name in _NAMES:
        return getattr(importlib.import_module(_NAMES[name]), name)
    raise AttributeError(f"module 'ndvicube' has no attribute {name!r}")

"""Loopback servers for tests and benchmarks: an object-store-like file server and a STAC API.

Both run real HTTP on 127.0.0.1 so that the code under test goes through the same clients it uses
in production (GDAL's ``/vsicurl/`` via rasterio, pystac-client), not through mocks:

- :class:`RangeHTTPServer` serves a folder with Range requests, optional latency and a request
  log, like an object store holding Cloud-Optimized GeoTIFFs.
- :class:`StacApiServer` runs ``rustac serve`` (in-memory backend) over ItemCollection and
  collection JSON files.

The names are imported on first use (PEP 562): importing the submodules here would make
``python -m ndvicube.testing.rangeserver`` warn that the module was imported twice.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ndvicube.testing.rangeserver import RangeHTTPServer, RequestRecord
    from ndvicube.testing.stacserver import StacApiServer

__all__ = ["RangeHTTPServer", "RequestRecord", "StacApiServer"]

_MODULES = {
    "RangeHTTPServer": "ndvicube.testing.rangeserver",
    "RequestRecord": "ndvicube.testing.rangeserver",
    "StacApiServer": "ndvicube.testing.stacserver",
}


def __getattr__(name: str) -> Any:
    """Import a public name from its submodule when first asked for."""
    if name not in _MODULES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_MODULES[name]), name)

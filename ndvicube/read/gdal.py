"""GDAL settings for reading Cloud-Optimized GeoTIFFs over HTTP/S3 - set here and only here.

Each setting saves round trips or survives transient faults on remote COGs:

* ``GDAL_DISABLE_READDIR_ON_OPEN=EMPTY_DIR`` - no directory listing (a LIST/GET of the parent
  "folder") when a file is opened;
* ``CPL_VSIL_CURL_ALLOWED_EXTENSIONS`` - never probe sidecar files (``.aux.xml``, ``.ovr``);
* ``GDAL_INGESTED_BYTES_AT_OPEN`` - read the whole COG header in the first request;
* ``GDAL_HTTP_MERGE_CONSECUTIVE_RANGES=YES`` - one request for adjacent tiles;
* ``GDAL_HTTP_MAX_RETRY``/``GDAL_HTTP_RETRY_DELAY`` - retry 429/5xx with backoff, values from
  :mod:`ndvicube.read.retries`, where every retry setting lives (faults GDAL does not retry,
  such as a dropped connection, are retried there too);
* ``CPL_CURL_VERBOSE`` and ``CPL_DEBUG=CURL_INFO_HEADER_IN`` - GDAL (3.10) retries a 429/503
  after its own delays, blind to the server's ``Retry-After``, and a window read re-requests a
  failed range once per block. GDAL never shows an answer's headers to its caller, but curl's
  trace of them reaches rasterio's logger, in the reading thread:
  :func:`ndvicube.read.retries.watch_retry_after`
  reads ``Retry-After`` there, holds the host for every read (``THROTTLE``) and keeps that
  thread waiting until then, so GDAL's next request leaves when the server asked. Only that
  debug category is on, and none of its lines reaches a log;
* ``VSI_CACHE`` - keep fetched blocks of an open file in memory while a job runs.

The values are applied to every read odc-stac makes (in this process and on Dask workers)
through :func:`odc.stac.configure_rio`.

Credentials a user gives GDAL (``GDAL_HTTP_HEADERS``, ``GDAL_HTTP_COOKIE``) and signed hrefs are
kept off the host a redirect names by :mod:`ndvicube.read.credentials`, which the reader
(:mod:`ndvicube.read.gdal_reader`) asks before each GDAL read.
"""

from __future__ import annotations

import threading
from typing import Any

from ndvicube.read.retries import GDAL_REQUEST_RETRIES, GDAL_RETRY_DELAY_S, watch_retry_after

CLOUD_READ_ENV: dict[str, str] = {
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
    "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".tif,.tiff,.TIF,.TIFF",
    "GDAL_INGESTED_BYTES_AT_OPEN": "32768",
    "GDAL_HTTP_MERGE_CONSECUTIVE_RANGES": "YES",
    "GDAL_HTTP_MAX_RETRY": str(GDAL_REQUEST_RETRIES),  # retry settings: ndvicube.read.retries
    "GDAL_HTTP_RETRY_DELAY": str(GDAL_RETRY_DELAY_S),
    "VSI_CACHE": "TRUE",
    "VSI_CACHE_SIZE": str(16 * 1024 * 1024),
}


def configure_cloud_reads() -> None:
    """Apply :data:`CLOUD_READ_ENV` to odc-stac's reads (idempotent)."""
    import odc.stac

    odc.stac.configure_rio(cloud_defaults=True, **CLOUD_READ_ENV)
    watch_retry_after()


_CONFIGURING = threading.Lock()


def cloud_read_env() -> dict[str, Any]:
    """:func:`configure_cloud_reads` in this process, and odc-stac's GDAL settings it gives
    (what the cube engine's block tasks apply around a GDAL read). Called where GDAL is about
    to read, not at import: configuring imports odc-stac and rasterio (1.2 s), which a cube job
    whose COGs the remote reader reads never needs (docs/performance.md)."""
    from ndvicube.read.retries import capture_env

    with _CONFIGURING:  # block tasks of one process may all fall back to GDAL at once
        configure_cloud_reads()
        return capture_env()

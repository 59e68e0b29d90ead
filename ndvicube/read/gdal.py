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

Credentials a user gives GDAL for an archive (:data:`FORWARDED_CREDENTIALS`: a key in
``GDAL_HTTP_HEADERS`` or ``GDAL_HTTP_HEADER_FILE``, a ``GDAL_HTTP_COOKIE``) are sent by curl to
whatever host a redirect names, on every request (measured: 1,164 of 1,164), and GDAL (3.10)
has no setting to stop it or to stop following redirects
(``CPL_VSIL_CURL_AUTHORIZATION_HEADER_ALLOWED_IF_REDIRECT`` concerns ``Authorization`` alone).
So ndvicube follows the redirects itself before GDAL opens the file (:func:`url_for_gdal`): one
``GET`` of the first byte with redirects off, the credentials sent to the configured host only
(:mod:`ndvicube.redirects`); when the redirects lead to another host, GDAL reads that host's
URL with the credentials blanked. The same holds for a signed href (a token in its query), whose
query a ``Location`` may echo to the other host. Reads without such settings of hrefs without
a query make no extra request.
"""

from __future__ import annotations

import csv
import math
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

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


# --- credentials and redirects ------------------------------------------------------------------

#: GDAL settings holding credentials that curl sends on to the host a redirect names (curl keeps
#: ``GDAL_HTTP_USERPWD``, ``GDAL_HTTP_BEARER``, netrc and cookie-file entries, and an
#: ``Authorization`` or ``Cookie`` header, on their host itself).
FORWARDED_CREDENTIALS = ("GDAL_HTTP_HEADERS", "GDAL_HTTP_HEADER_FILE", "GDAL_HTTP_COOKIE")
#: Seconds a resolved redirect is reused for reads of the same URL (a signed Location expires).
RESOLVED_FOR_S = 300.0
_RESOLVED: dict[str, tuple[float, str]] = {}
_RESOLVED_LOCK = threading.Lock()


def credential_settings() -> dict[str, str]:
    """The :data:`FORWARDED_CREDENTIALS` GDAL would use now (environment or GDAL config)."""
    from rasterio.env import get_gdal_config

    values = {name: get_gdal_config(name) for name in FORWARDED_CREDENTIALS}
    return {name: str(value) for name, value in values.items() if value}


def url_for_gdal(url: str, *, again: bool = False) -> tuple[str, dict[str, str]]:
    """The URL GDAL should read for ``url`` and the GDAL settings to read it with.

    Without credential settings or a query string (a signed URL's token), or for a file that is
    not http(s): ``url`` as it is. Else the redirects of ``url`` are followed here
    (:func:`follow_redirects`, reused for :data:`RESOLVED_FOR_S`; ``again`` on a retry); when
    they lead to another host, its URL with every credential setting blanked and without
    ``url``'s query parameters, so curl has none to carry there (curl follows a ``Location`` as
    written, and one may echo the query).
    """
    settings = credential_settings()
    if not (settings or urlsplit(url).query) or not url.startswith(("http://", "https://")):
        return url, {}
    from ndvicube.redirects import same_origin

    now = time.monotonic()
    with _RESOLVED_LOCK:
        cached = _RESOLVED.get(url)
    if cached is None or again or now - cached[0] > RESOLVED_FOR_S:
        cached = (now, follow_redirects(url, credential_headers(settings)))
        with _RESOLVED_LOCK:
            _RESOLVED[url] = cached
    final = cached[1]
    if same_origin(final, url):
        return url, {}
    return final, dict.fromkeys(settings, "")


def follow_redirects(url: str, headers: dict[str, str]) -> str:
    """Where ``url``'s redirects lead: GETs of its first byte, ``headers`` sent to ``url``'s own
    origin only (harmless ones elsewhere), a ``Location`` echoing ``url``'s query stripped of it
    on another host (:func:`ndvicube.redirects.next_url`)."""
    import urllib3

    from ndvicube.read import retries
    from ndvicube.read.http_store import THROTTLE_STATUSES, pool_for
    from ndvicube.redirects import MAX_REDIRECTS, harmless_headers, next_url, same_origin

    current = url
    for _ in range(MAX_REDIRECTS + 1):
        sent = headers if same_origin(current, url) else harmless_headers(headers)
        left = retries.seconds_left() or math.inf  # the read's deadline bounds this request too
        try:
            answer = pool_for(current, 1).request(
                "GET", current, headers=sent | {"Range": "bytes=0-0"}, redirect=False,
                retries=False, preload_content=False,
                timeout=urllib3.Timeout(connect=min(retries.HTTP_TIMEOUTS_S[0], left),
                                        read=min(retries.HTTP_TIMEOUTS_S[1], left)),
            )  # fmt: skip
        except urllib3.exceptions.HTTPError as error:
            raise OSError(f"HTTP request failed: {error}") from None
        location = answer.headers.get("Location")
        answer.close()  # the body is not needed (a whole file, from a server without ranges)
        wait = retries.retry_after_s(answer.headers.get("Retry-After"))
        if answer.status in THROTTLE_STATUSES and wait is not None:  # the read waits, then asks
            retries.THROTTLE.hold(url, wait)
            raise OSError(f"HTTP response code: {answer.status} (Retry-After: {wait:g} s)")
        if answer.status not in (301, 302, 303, 307, 308) or not location:
            return current
        current = next_url(current, location, url)
    raise OSError(f"Maximum ({MAX_REDIRECTS}) redirects followed (a redirect loop?)")


def credential_headers(settings: dict[str, str]) -> dict[str, str]:
    """The request headers GDAL makes of ``settings`` (:func:`credential_settings`)."""
    lines = header_lines(settings.get("GDAL_HTTP_HEADERS", ""))
    if settings.get("GDAL_HTTP_HEADER_FILE"):
        text = Path(settings["GDAL_HTTP_HEADER_FILE"]).read_text(encoding="utf-8")
        lines += text.splitlines()
    headers = {}
    for line in lines:
        name, colon, value = line.partition(":")
        if colon and name.strip():
            headers[name.strip()] = value.strip()
    if settings.get("GDAL_HTTP_COOKIE"):
        headers["Cookie"] = settings["GDAL_HTTP_COOKIE"]
    return headers


def header_lines(value: str) -> list[str]:
    """The header lines of a ``GDAL_HTTP_HEADERS`` value, split as GDAL splits it: at CRLF if
    it has one, else at commas outside double quotes, unless no ``:`` follows the first comma
    (one header whose value has commas: ``Accept: text/plain, application/json``)."""
    if not value:
        return []
    if "\r\n" in value:
        return [line for line in value.split("\r\n") if line]
    comma = value.find(",")
    if comma < 0 or ":" not in value[comma:]:
        return [value]
    return [part.strip() for part in next(csv.reader([value], skipinitialspace=True)) if part]

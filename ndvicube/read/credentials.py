"""Credentials GDAL would carry to another host, and the redirects ndvicube follows instead.

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
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

from ndvicube.redirects import final_url, same_origin

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


def url_for_gdal(
    url: str, *, again: bool = False, timeout_s: float = 60.0
) -> tuple[str, dict[str, str]]:
    """The URL GDAL should read for ``url`` and the GDAL settings to read it with.

    Without credential settings or a query string (a signed URL's token), or for a file that is
    not http(s): ``url`` as it is. Else the redirects of ``url`` are followed here (each request
    within ``timeout_s``; reused for :data:`RESOLVED_FOR_S`, made again on a retry: ``again``);
    when they lead to another host, its URL with every credential setting blanked and without
    ``url``'s query parameters, so curl has none to carry there (curl follows a ``Location`` as
    written, and one may echo the query).
    """
    settings = credential_settings()
    if not (settings or urlsplit(url).query) or not url.startswith(("http://", "https://")):
        return url, {}
    now = time.monotonic()
    with _RESOLVED_LOCK:
        cached = _RESOLVED.get(url)
    if cached is None or again or now - cached[0] > RESOLVED_FOR_S:
        cached = (now, _final_url(url, credential_headers(settings), timeout_s))
        with _RESOLVED_LOCK:
            _RESOLVED[url] = cached
    final = cached[1]
    if same_origin(final, url):
        return url, {}
    return final, dict.fromkeys(settings, "")


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


class RedirectLookThrottled(OSError):
    """The look for a redirect was answered 429/503 with ``Retry-After``: the read waits that
    long, as for GDAL's own answers (:data:`ndvicube.read.retries.THROTTLE`), and asks again."""

    def __init__(self, status: int, retry_after: str) -> None:
        super().__init__(f"HTTP response code: {status} (Retry-After: {retry_after})")
        self.retry_after = retry_after


def _final_url(url: str, headers: dict[str, str], timeout_s: float) -> str:
    """Where ``url``'s redirects lead (:func:`ndvicube.redirects.final_url`); a throttling
    answer raises :class:`RedirectLookThrottled`."""
    final, status, answer_headers = final_url(url, headers, timeout_s=timeout_s)
    retry_after = answer_headers.get("Retry-After")
    if status in (429, 503) and retry_after:
        raise RedirectLookThrottled(status, retry_after)
    return final

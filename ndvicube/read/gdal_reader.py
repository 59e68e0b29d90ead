"""The GDAL reader (``compute.reader: gdal``): odc-loader's rasterio reader and driver, each
read retried by :func:`ndvicube.read.retries.with_retries`, with GDAL's limits for the time
left, redirects to another host followed without credentials
(:mod:`ndvicube.read.credentials`), and a file cut short named as such
(:mod:`ndvicube.read.short_file`).

Apart from :mod:`ndvicube.read.retries` (which only decides what is retried and for how long)
because the short-file check reads the header with the remote reader's client, which itself
imports the retry settings: kept here, the two never import each other.
"""

from __future__ import annotations

import logging
import math

import rasterio
from odc.loader import RioDriver, RioReader

from ndvicube.read.retries import (
    HTTP_TIMEOUTS_S,
    THROTTLE,
    gdal_request_limits,
    retry_after_s,
    seconds_left,
    transient_types,
    watch_retry_after,
    with_retries,
)
from ndvicube.search.profiles import fresh_href

# odc-loader logs every failed read as an ERROR before re-raising it, including reads
# with_retries then retries successfully; the retry's own warning (and the final error) say it.
logging.getLogger(RioReader.__module__).setLevel(logging.CRITICAL)  # where its reads log


class RetryingRioReader(RioReader):
    """odc-loader's rasterio reader, retrying each read."""

    def read(self, cfg, dst_geobox, *, dst=None, selection=None):
        return self.read_retried(cfg, dst_geobox, dst=dst, selection=selection)

    def read_retried(self, cfg, dst_geobox, *, dst=None, selection=None):
        """The read, retried by :func:`with_retries`."""

        watch_retry_after()  # in this process (a Dask worker's too)

        def attempt(number: int):
            self._src = self._src.patch(uri=fresh_href(self._src.uri))  # a token near expiry
            try:
                return self._read_once(number, cfg, dst_geobox, dst=dst, selection=selection)
            except AssertionError as error:  # odc-loader's "a CRS": a header cut short has none
                if number == 1:
                    raise_if_cut_short(self._src.uri, error)
                raise
            except transient_types() as error:
                if number == 1:
                    raise_if_cut_short(self._src.uri, error)
                # A SAS token that expired during the read: GDAL words the 403 in many ways
                # ("not recognized as being in a supported file format" at the open), and no
                # read with an expired token can work, so a new one is read with at once.
                renewed = fresh_href(self._src.uri, refused=True)
                if renewed == self._src.uri:
                    raise
                self._src = self._src.patch(uri=renewed)
                return self._read_once(number, cfg, dst_geobox, dst=dst, selection=selection)

        return with_retries(attempt, self._src.uri)

    def _read_once(self, number: int, cfg, dst_geobox, *, dst=None, selection=None):
        """One read by odc-loader's reader, with GDAL's limits for the time left; a redirect
        to another host is followed by ndvicube, so that curl carries no credential there
        (:func:`ndvicube.read.credentials.url_for_gdal`)."""
        from ndvicube.read.credentials import RedirectLookThrottled, url_for_gdal

        left = seconds_left()
        options = gdal_request_limits(left)
        asked = self._src
        try:
            target, blanked = url_for_gdal(
                asked.uri, again=number > 1, timeout_s=min(HTTP_TIMEOUTS_S[1], left or math.inf)
            )
        except RedirectLookThrottled as error:  # waited for as GDAL's own 429/503 are
            wait = retry_after_s(error.retry_after)
            if wait is not None:
                THROTTLE.hold(asked.uri, wait)
            raise
        options |= blanked
        if number > 1:
            # GDAL remembers a failed file ("does not exist" after a dropped HEAD, a cut-short
            # block): read it again without GDAL's cache, or the retry repeats it.
            options["CPL_VSIL_CURL_NON_CACHED"] = _gdal_path(target)
        try:
            if target != asked.uri:
                self._src = asked.patch(uri=target)
            with rasterio.Env(**options):
                return super().read(cfg, dst_geobox, dst=dst, selection=selection)
        finally:
            self._src = asked


def raise_if_cut_short(uri: str, error: BaseException) -> None:
    """After GDAL's first failure to read ``uri`` in words a file cut short could cause, an
    error naming it so when it is (not retried: :data:`PERMANENT`); GDAL itself never asks
    past the size its HEAD gave, so its words cannot tell (:mod:`ndvicube.read.short_file`)."""
    from ndvicube.read.short_file import could_be_short, raise_if_short

    if could_be_short(error):
        raise_if_short(uri, timeout_s=min(HTTP_TIMEOUTS_S[1], seconds_left() or math.inf))


class RetryingRioDriver(RioDriver):
    """odc-loader's rasterio driver whose readers retry (pass as ``odc.stac.load(driver=...)``)."""

    def open(self, src, ctx) -> RetryingRioReader:
        return RetryingRioReader(src, ctx)


def _gdal_path(uri: str) -> str:
    """The GDAL virtual path rasterio opens for ``uri`` (``/vsicurl/...``, ``/vsis3/...``)."""
    from ndvicube.read.vsi import vsi_path

    return vsi_path(uri)

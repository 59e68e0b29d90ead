"""Reading COGs through faults: retry what is transient, name what is not.

GDAL retries HTTP 429/5xx answers itself (``GDAL_HTTP_MAX_RETRY``, :mod:`ndvicube.read.gdal`), but
not every transient failure: measured on the fault-injecting loopback server, about one in ten
connections dropped before the answer ("Empty reply from server") and one in seven bodies cut
short ("Read failed") still failed the read. odc-stac would then fail the whole cube job.

:class:`RetryingRioDriver` is odc-stac's own rasterio reader driver (the documented ``driver=``
extension point of ``odc.stac.load``) whose reads are retried with exponential backoff. A read
that still fails - or fails in a way no retry can fix (404, 403, not a TIFF) - raises
:class:`UnreadableAsset` naming the asset's URL, which the cube job turns into a message naming
the item and asset (or, with ``on_missing_asset: skip``, into a skipped scene).

Only network and server errors are retried (:func:`is_transient`: ``OSError`` - resets, timeouts,
cut bodies, GDAL's I/O errors -, urllib3's errors and GDAL's ``CPLE_*`` errors). Anything else -
a missing module, a ``TypeError``, any other bug - is no fault of the asset: it fails the read at
once, unretried and never turned into a skipped scene; a missing module as
:class:`~ndvicube.errors.MissingDependencyError`, naming the module and the install command.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

import rasterio
import urllib3
from odc.loader._rio import RioDriver, RioReader
from rasterio._err import CPLE_BaseError

from ndvicube.errors import MissingDependencyError
from ndvicube.logs import redact_urls

log = logging.getLogger(__name__)
# odc-loader logs every failed read as an ERROR before re-raising it, including reads this
# module then retries successfully; the retry's own warning (and the final error) say it all.
logging.getLogger("odc.loader._rio").setLevel(logging.CRITICAL)

T = TypeVar("T")

#: Attempts per read (the first included) and the delay before the second; it doubles after.
READ_ATTEMPTS = 5
FIRST_DELAY_S = 0.5

#: obstore's retries of each request of the remote reader (:mod:`ndvicube.read.remote`):
#: 429/5xx answers, dropped connections and timeouts, 4 more attempts with backoff doubling
#: from 0.25 s (as GDAL's ``GDAL_HTTP_MAX_RETRY``/``GDAL_HTTP_RETRY_DELAY`` in
#: :mod:`ndvicube.read.gdal`); what still fails is retried as a whole read (:func:`with_retries`).
OBSTORE_RETRY: dict[str, Any] = {
    "max_retries": 4,
    "backoff": {"init_backoff": timedelta(seconds=0.25), "max_backoff": timedelta(seconds=8),
                "base": 2},
    "retry_timeout": timedelta(seconds=120),
}  # fmt: skip
#: GDAL's own retries of each request (``GDAL_HTTP_MAX_RETRY``/``GDAL_HTTP_RETRY_DELAY``,
#: applied by :mod:`ndvicube.read.gdal`): 429/5xx answers.
GDAL_REQUEST_RETRIES = 5
GDAL_RETRY_DELAY_S = 0.5
#: Timeouts of the remote reader's HTTP client: connecting, and each read of a body.
OBSTORE_CLIENT: dict[str, Any] = {"connect_timeout": "10s", "read_timeout": "60s"}

#: Error texts that no retry can fix: the file is not there, not allowed, or not a raster.
PERMANENT = (
    "HTTP response code: 404",
    "HTTP response code: 403",
    "HTTP response code: 410",
    "HTTP response code: 401",
    "not recognized as a supported file format",
    "No such file or directory",
)


class UnreadableAsset(Exception):
    """An asset that could not be read after retries, or can never be read.

    Raised inside Dask tasks, so it must pickle (its args are its fields); the cube job turns it
    into a :class:`~ndvicube.errors.UnreadableAssetError` naming the item and asset.
    """

    def __init__(self, uri: str, reason: str) -> None:
        super().__init__(uri, reason)
        self.uri, self.reason = uri, reason

    def __str__(self) -> str:
        return f"cannot read {self.uri}: {self.reason}"


#: Error classes of network, server and file I/O faults: worth another attempt (unless permanent).
#: ``OSError`` covers connection resets and timeouts, rasterio's ``RasterioIOError`` and
#: :class:`ndvicube.read.remote.RemoteFileError` (a 5xx/429 answer, a cut body, a corrupt tile).
TRANSIENT_TYPES: tuple[type[BaseException], ...] = (
    OSError,
    urllib3.exceptions.HTTPError,
    CPLE_BaseError,
)


def is_transient(error: BaseException) -> bool:
    """Whether ``error`` is a network or server fault that another attempt may not meet."""
    return isinstance(error, TRANSIENT_TYPES) and not is_permanent(error)


def is_permanent(error: BaseException) -> bool:
    """Whether retrying ``error`` is pointless (missing, forbidden or not a raster)."""
    text = f"{error} {error.__cause__ or ''}"
    return any(marker in text for marker in PERMANENT)


def with_retries(
    read: Callable[[int], T],
    uri: str,
    *,
    attempts: int = READ_ATTEMPTS,
    first_delay_s: float = FIRST_DELAY_S,
    sleep: Callable[[float], Any] = time.sleep,
) -> T:
    """``read(attempt)``, retried with doubling delays; :class:`UnreadableAsset` at the end."""
    delay = first_delay_s
    for attempt in range(1, attempts + 1):
        try:
            return read(attempt)
        except ImportError as error:
            raise MissingDependencyError.of(error) from error
        except TRANSIENT_TYPES as error:
            if not is_transient(error) or attempt == attempts:
                reason = _reason(error)
                if attempt > 1:
                    reason += f" (after {attempt} attempts)"
                raise UnreadableAsset(uri, reason) from error
            log.warning(
                "reading %s failed (%s); retry %d/%d in %.1f s",
                redact_urls(uri),
                _reason(error),
                attempt,
                attempts - 1,
                delay,
            )
            sleep(delay)
            delay *= 2
    raise AssertionError("unreachable")


class RetryingRioReader(RioReader):
    """odc-loader's rasterio reader, retrying each read."""

    def read(self, cfg, dst_geobox, *, dst=None, selection=None):
        def attempt(number: int):
            if number == 1:
                return super(RetryingRioReader, self).read(
                    cfg, dst_geobox, dst=dst, selection=selection
                )
            # GDAL remembers a failed file ("does not exist" after a dropped HEAD, a cut-short
            # block): read it again without GDAL's cache, or the retry repeats the failure.
            with rasterio.Env(CPL_VSIL_CURL_NON_CACHED=_gdal_path(self._src.uri)):
                return super(RetryingRioReader, self).read(
                    cfg, dst_geobox, dst=dst, selection=selection
                )

        return with_retries(attempt, self._src.uri)


class RetryingRioDriver(RioDriver):
    """odc-loader's rasterio driver whose readers retry (pass as ``odc.stac.load(driver=...)``)."""

    def open(self, src, ctx) -> RetryingRioReader:
        return RetryingRioReader(src, ctx)


def _gdal_path(uri: str) -> str:
    """The GDAL virtual path rasterio opens for ``uri`` (``/vsicurl/...``, ``/vsis3/...``)."""
    from rasterio._path import _parse_path

    return _parse_path(uri).as_vsi()


def _reason(error: BaseException) -> str:
    """The error's own text, with GDAL's underlying cause when it only says "see previous"."""
    text = str(error) or type(error).__name__
    if error.__cause__ is not None and "previous exception" in text:
        text = f"{text.split('.')[0]}: {error.__cause__}"
    return redact_urls(text)

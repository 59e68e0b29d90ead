"""Reading COGs through faults: retry what is transient, name what is not.

GDAL retries HTTP 429/5xx answers itself (``GDAL_HTTP_MAX_RETRY``, :mod:`ndvicube.read.gdal`), but
not every transient failure: measured on the fault-injecting loopback server, about one in ten
connections dropped before the answer ("Empty reply from server") and one in seven bodies cut
short ("Read failed") still failed the read. odc-stac would then fail the whole cube job.

:class:`~ndvicube.read.gdal_reader.RetryingRioDriver` is odc-stac's own rasterio reader driver
(the documented ``driver=`` extension point of ``odc.stac.load``) whose reads are retried with
exponential backoff (by :func:`with_retries`, defined here with what is retried). A read that
still fails - or fails in a way no retry can fix (404, 403, not a TIFF) - raises
:class:`UnreadableAsset` naming the asset's URL, which the cube job turns into a message naming
the item and asset (or, with ``on_missing_asset: skip``, into a skipped scene).

A server that throttles (429/503 with ``Retry-After``) is not asked again before the time it
gives, by either reader, and neither is any other file on that host (:class:`HostThrottle`);
a wait past the read deadline fails the read at once, saying so.

Only network and server errors are retried (:func:`is_transient`: ``OSError`` - resets, timeouts,
cut bodies, GDAL's I/O errors -, urllib3's errors and GDAL's ``CPLE_*`` errors). Anything else -
a missing module, a ``TypeError``, any other bug - is no fault of the asset: it fails the read at
once, unretried and never turned into a skipped scene; a missing module as
:class:`~ndvicube.errors.MissingDependencyError`, naming the module and the install command.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime
import email.utils
import logging
import math
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar
from urllib.parse import urlsplit

import urllib3

from ndvicube.errors import MissingDependencyError, ReadDeadlineError
from ndvicube.logs import redact_urls

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Attempts per read (the first included) and the delay before the second; it doubles after.
READ_ATTEMPTS = 5
FIRST_DELAY_S = 0.5
#: Seconds one COG's reads may take, every attempt and retry included (the default of
#: ``compute.read_deadline_s``): a COG that stalls is named after this, not after 60 s x 5
#: requests x 5 attempts (25 minutes).
COG_DEADLINE_S = 120.0
#: A job's reads may take one COG's deadline plus this many seconds per COG they read.
JOB_SECONDS_PER_COG = 2.0

#: Retries of each request of the remote reader (:mod:`ndvicube.read.remote`):
#: :mod:`ndvicube.read.http_store`'s, for ``http(s)://`` and ``s3://`` (which waits as a
#: 429/503's ``Retry-After`` asks instead of backing off): 429/5xx answers, dropped
#: connections and timeouts, 4 more attempts with backoff doubling from 0.25 s (as GDAL's
#: ``GDAL_HTTP_MAX_RETRY``/``GDAL_HTTP_RETRY_DELAY`` in :mod:`ndvicube.read.gdal`); what still
#: fails is retried as a whole read (:func:`with_retries`).
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
#: GDAL's timeout of each request when no read deadline applies (``GDAL_HTTP_TIMEOUT``).
GDAL_TIMEOUT_S = 60
#: Timeouts of the remote reader's HTTP client: connecting, and each read of a body.
OBSTORE_CLIENT: dict[str, Any] = {"connect_timeout": "10s", "read_timeout": "60s"}
HTTP_TIMEOUTS_S = (10.0, 60.0)

#: Error texts that no retry can fix: the file is not there, not allowed, not a raster, or
#: behind a redirect loop.
PERMANENT = (
    "HTTP response code: 404",
    "HTTP response code: 403",
    "HTTP response code: 410",
    "HTTP response code: 401",
    "not recognized as a supported file format",
    "missing codec",  # GDAL built without the file's compression ("... due to missing codec")
    "No such file or directory",
    "too many redirects",  # the remote reader's words for a redirect loop
    "redirects followed",  # GDAL's ("Maximum (10) redirects followed")
    "the file is shorter than its TIFF header says",  # http_store.ShortFileError: a cut file
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
#: GDAL's own error classes join them once rasterio is imported (:func:`transient_types`).
NETWORK_TYPES: tuple[type[BaseException], ...] = (OSError, urllib3.exceptions.HTTPError)


def transient_types() -> tuple[type[BaseException], ...]:
    """:data:`NETWORK_TYPES`, and GDAL's ``CPLE_*`` errors where rasterio is imported.

    Only a read through rasterio raises those, so a process that never imported it (the
    remote reader's cube job) does not pay rasterio's import (0.25 s) to name them.
    """
    if "rasterio" not in sys.modules:
        return NETWORK_TYPES
    try:  # GDAL's error classes (CPLE_*) have no public home in rasterio: only its `_err` module
        from rasterio._err import CPLE_BaseError
    except ImportError:  # a rasterio that moved them: GDAL's I/O errors (OSError) are retried
        return NETWORK_TYPES
    return (*NETWORK_TYPES, CPLE_BaseError)


# --- throttling: a server's Retry-After ---------------------------------------------------------


def retry_after_s(value: str | None, now: float | None = None) -> float | None:
    """Seconds a ``Retry-After`` header asks a client to wait: a number of seconds, or an HTTP
    date (RFC 9110 10.2.3) compared with ``now`` (``time.time()``); None if absent or unreadable.
    """
    if not value:
        return None
    text = value.strip()
    with contextlib.suppress(ValueError):
        return max(0.0, float(text))
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # an HTTP date is GMT
        when = when.replace(tzinfo=datetime.UTC)
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class HostThrottle:
    """Per host, the time before which no request may be sent to it, as a server's 429/503 with
    ``Retry-After`` asked.

    A server that throttles one COG throttles the client, not the file: every read of that host
    waits, the remote reader's requests (:mod:`ndvicube.read.http_store`) and GDAL's reads
    (:func:`with_retries`) alike. Per process: a Dask worker learns it from its own answers.
    """

    def __init__(self) -> None:
        self._until: dict[str, float] = {}
        self._lock = threading.Lock()

    def hold(self, url: str, seconds: float) -> None:
        """No request to ``url``'s host for ``seconds`` from now (a later time wins)."""
        host, until = _host(url), time.monotonic() + seconds
        with self._lock:
            self._until[host] = max(until, self._until.get(host, 0.0))

    def wait_s(self, url: str) -> float:
        """Seconds before a request to ``url``'s host may be sent (0 when it may now)."""
        with self._lock:
            until = self._until.get(_host(url), 0.0)
        return max(0.0, until - time.monotonic())

    def clear(self) -> None:
        with self._lock:
            self._until.clear()


THROTTLE = HostThrottle()
#: Whether a ``Retry-After`` holds every request to the host (True) or only those for the file
#: that was throttled (False: measured only, see docs/reliability.md).
THROTTLE_WHOLE_HOST = True


def _host(url: str) -> str:
    return urlsplit(url).netloc.lower() if THROTTLE_WHOLE_HOST else url


class ThrottledTooLong(OSError):
    """A server asked to wait past the read's deadline: no request-level retry may wait it out
    (the read then fails saying so, :func:`with_retries`)."""


def check_throttle_fits(url: str, wait_s: float) -> None:
    """:class:`ThrottledTooLong` when a server asks to wait longer than a COG's read deadline."""
    deadline = current_deadlines().cog_s
    if wait_s >= deadline:
        raise ThrottledTooLong(throttle_too_long(url, wait_s, deadline))


def throttle_too_long(url: str, wait_s: float, deadline_s: float) -> str:
    """What a read says when the server's ``Retry-After`` ends past its deadline."""
    return (
        f"the server throttles requests: it asked to wait {wait_s:.0f} s more (Retry-After) "
        f"before {urlsplit(url).netloc} is asked again, past the read deadline of "
        f"{deadline_s:g} s (compute.read_deadline_s); run again later, or raise "
        "compute.read_deadline_s"
    )


def is_transient(error: BaseException) -> bool:
    """Whether ``error`` is a network or server fault that another attempt may not meet."""
    return isinstance(error, transient_types()) and not is_permanent(error)


def is_permanent(error: BaseException) -> bool:
    """Whether retrying ``error`` is pointless (missing, forbidden or not a raster)."""
    text = f"{error} {error.__cause__ or ''}"
    return any(marker in text for marker in PERMANENT)


@dataclass
class Deadlines:
    """When reads must end: per COG (seconds from its first attempt) and for the whole job."""

    cog_s: float = COG_DEADLINE_S
    job_s: float = math.inf
    job_ends: float = math.inf
    """``time.monotonic()`` by which every read of the job must be done."""
    own: bool = False
    """Set by the job's own process (:func:`read_deadlines`), not adopted from a plan."""


#: The deadlines of the reads in this context: a job's own (:func:`read_deadlines`), set in the
#: context its block tasks run in, so that two cube jobs in one process (threads of
#: Snakemake's) each read by their own.
_DEADLINES: contextvars.ContextVar[Deadlines | None] = contextvars.ContextVar(
    "ndvicube_read_deadlines", default=None
)
#: The deadlines outside any job: a COG's default, none for the job.
NO_JOB_DEADLINES = Deadlines()
_CURRENT = threading.local()  # the deadline of the read running in this thread


@contextlib.contextmanager
def read_deadlines(cog_s: float, cogs: int) -> Iterator[Deadlines]:
    """Deadlines for the reads inside the block: ``cog_s`` per COG, and for the job one COG's
    deadline plus :data:`JOB_SECONDS_PER_COG` per COG read (a bound that grows with the work,
    not with retries multiplied together)."""
    job_s = round(cog_s + JOB_SECONDS_PER_COG * cogs, 3)
    deadlines = Deadlines(cog_s, job_s, time.monotonic() + job_s, own=True)
    token = _DEADLINES.set(deadlines)
    try:
        yield deadlines
    finally:
        _DEADLINES.reset(token)


def adopt_deadlines(cog_s: float, job_ends_epoch: float) -> None:
    """In a process that did not start the job (a Dask worker), the job's read deadlines: the
    COG's, and the job's end as wall-clock time (``time.time()``), since monotonic clocks are
    per process. The job's own process keeps those :func:`read_deadlines` set."""
    if current_deadlines().own:
        return
    left = job_ends_epoch - time.time()
    _DEADLINES.set(Deadlines(cog_s, round(left, 3), time.monotonic() + left))


def capture_env() -> dict[str, Any]:
    """odc-stac's GDAL settings of this process (:func:`ndvicube.read.gdal.configure_cloud_reads`),
    to apply in the block tasks, wherever they run."""
    from odc.loader import RioDriver

    return RioDriver().capture_env()


def current_deadlines() -> Deadlines:
    """The read deadlines of this context (its job's)."""
    return _DEADLINES.get() or NO_JOB_DEADLINES


def seconds_left() -> float | None:
    """Seconds the read running in this thread may still wait (None: no deadline)."""
    ends = getattr(_CURRENT, "ends", math.inf)
    return None if ends == math.inf else max(0.001, ends - time.monotonic())


def with_retries(
    read: Callable[[int], T],
    uri: str,
    *,
    attempts: int | None = None,
    first_delay_s: float = FIRST_DELAY_S,
    sleep: Callable[[float], Any] = time.sleep,
) -> T:
    """``read(attempt)``, retried with doubling delays; :class:`UnreadableAsset` at the end.

    ``attempts`` defaults to :data:`READ_ATTEMPTS`, read at each call.

    Retries stop at the COG's deadline too (``read`` bounds its own waits by
    :func:`seconds_left`); at the job's deadline, :class:`ReadDeadlineError` ends the job.
    """
    attempts = READ_ATTEMPTS if attempts is None else attempts
    delay = first_delay_s
    deadlines = current_deadlines()
    _CURRENT.ends = min(time.monotonic() + deadlines.cog_s, deadlines.job_ends)
    _CURRENT.uri = uri
    try:
        for attempt in range(1, attempts + 1):
            _check_job_deadline(uri, deadlines)
            _wait_for_host(uri, deadlines, sleep)
            try:
                return read(attempt)
            except ImportError as error:
                raise MissingDependencyError.of(error) from error
            except transient_types() as error:
                _check_job_deadline(uri, deadlines, error)
                if not is_transient(error) or attempt == attempts:
                    raise _unreadable(error, uri, attempt) from error
                held = THROTTLE.wait_s(uri)  # the server's Retry-After, if it sent one
                if time.monotonic() + max(delay, held) >= _CURRENT.ends:  # no time for another
                    if held > delay:
                        reason = throttle_too_long(uri, held, deadlines.cog_s)
                        raise UnreadableAsset(uri, reason) from error
                    raise _unreadable(error, uri, attempt, deadline_s=deadlines.cog_s) from error
                log.warning(
                    "reading %s failed (%s); retry %d/%d in %.1f s%s",
                    redact_urls(uri),
                    _reason(error),
                    attempt,
                    attempts - 1,
                    max(delay, held),
                    " (as the server asked: Retry-After)" if held > delay else "",
                )
                sleep(max(0.0, delay - held))  # the host's wait comes before the next attempt
                delay *= 2
    finally:
        _CURRENT.ends, _CURRENT.uri = math.inf, None
    raise AssertionError("unreachable")


def _wait_for_host(uri: str, deadlines: Deadlines, sleep: Callable[[float], Any]) -> None:
    """Wait until ``uri``'s host may be asked again (a server's Retry-After), or fail the read
    at once when that is past its deadline."""
    held = THROTTLE.wait_s(uri)
    if held <= 0:
        return
    if time.monotonic() + held >= _CURRENT.ends:
        raise UnreadableAsset(uri, throttle_too_long(uri, held, deadlines.cog_s))
    sleep(held)


def _check_job_deadline(uri: str, deadlines: Deadlines, error: BaseException | None = None):
    """:class:`ReadDeadlineError` naming ``uri`` once the job's read deadline has passed."""
    if time.monotonic() < deadlines.job_ends:
        return
    raise ReadDeadlineError(
        f"The cube job's reads stalled: {redact_urls(uri)} was still not read when the job's "
        f"read deadline passed ({deadlines.job_s:g} s: compute.read_deadline_s = "
        f"{deadlines.cog_s:g} s plus {JOB_SECONDS_PER_COG:g} s per COG read). The archive is "
        "down or far slower than usual: run again later, or raise compute.read_deadline_s."
    ) from error


def _unreadable(
    error: BaseException, uri: str, attempt: int, *, deadline_s: float | None = None
) -> UnreadableAsset:
    """The final error of a read: its reason, the attempts, and the deadline that ended them."""
    reason = _reason(error)
    if deadline_s is not None:
        reason = (
            f"no complete answer within its read deadline of {deadline_s:g} s "
            f"(compute.read_deadline_s): {reason}"
        )
    if attempt > 1:
        reason += f" (after {attempt} attempts)"
    return UnreadableAsset(uri, reason)


def gdal_request_limits(left: float | None) -> dict[str, str]:
    """GDAL's per-request timeout and retries, so that its own retries end by the deadline.

    GDAL retries a timed-out request itself, after delays growing from
    :data:`GDAL_RETRY_DELAY_S` by about 2.5x each (measured: 0.5, 1.2, 2.7, 6.4, 15.3 s). A
    quarter of the time left may go to those delays, the rest to the requests (120 s: 4
    retries, 21 s per request).
    """
    if left is None:
        return {"GDAL_HTTP_TIMEOUT": str(GDAL_TIMEOUT_S)}
    retries, waited, delay = 0, 0.0, GDAL_RETRY_DELAY_S
    while retries < GDAL_REQUEST_RETRIES and waited + delay <= left / 4:
        retries, waited, delay = retries + 1, waited + delay, delay * 2.5
    timeout = max(1, min(GDAL_TIMEOUT_S, int((left - waited) / (retries + 1))))
    return {"GDAL_HTTP_TIMEOUT": str(timeout), "GDAL_HTTP_MAX_RETRY": str(retries)}


def _reason(error: BaseException) -> str:
    """The error's own text, with GDAL's underlying cause when it only says "see previous"."""
    text = str(error) or type(error).__name__
    if error.__cause__ is not None and "previous exception" in text:
        text = f"{text.split('.')[0]}: {error.__cause__}"
    return redact_urls(text)


# --- GDAL and Retry-After: read from curl's trace of the answers' headers -----------------------

#: rasterio's loggers of GDAL's messages, debug ones included (curl's header lines among them):
#: the process-wide handler's, and the one rasterio installs while it reads pixels.
GDAL_LOGGERS = ("rasterio._env", "rasterio._err")
_STATUS_LINE = re.compile(r"CURL_INFO_HEADER_IN:\s*HTTP/[\d.]+ (\d{3})")
#: A request's first line and Host header: which host the next answer in this thread is from.
_REQUEST = re.compile(r"CURL_INFO_HEADER_OUT:\s*\w+ (\S+) HTTP.*?^Host: (\S+)", re.S | re.M)
_RETRY_AFTER = re.compile(r"CURL_INFO_HEADER_IN:\s*retry-after:\s*([^\r\n]+)", re.IGNORECASE)


class _RetryAfterFromCurl(logging.Filter):
    """Reads the status and ``Retry-After`` of each answer GDAL gets from curl's header lines
    (logged by rasterio in the reading thread); after a 429/503 that asks to wait, holds the
    host of the read running in that thread (:data:`THROTTLE`). The
    header lines themselves, and any other debug message, never reach a handler."""

    def __init__(self) -> None:
        super().__init__()
        self.status = threading.local()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "CURL_INFO_HEADER_" not in message:
            return record.levelno >= logging.getLogger("rasterio").getEffectiveLevel()
        request, line = _REQUEST.search(message), _STATUS_LINE.search(message)
        if request:  # GDAL's request threads need not be the read's: the host comes from here
            target = request[1]
            self.status.url = target if "://" in target else f"//{request[2]}{target}"
        elif line:
            self.status.code = int(line[1])
        elif getattr(self.status, "code", None) in (429, 503):
            self._note_retry_after(message)
        return False

    def _note_retry_after(self, message: str) -> None:
        """Hold the host and keep GDAL's thread here until it may ask again (within the COG's
        read deadline: past it, the read fails as :func:`with_retries`
        says)."""
        found = _RETRY_AFTER.search(message)
        url = getattr(self.status, "url", None) or getattr(_CURRENT, "uri", None)
        wait = retry_after_s(found[1]) if found else None
        if wait is None or not url:
            return
        THROTTLE.hold(url, wait)
        left = seconds_left()
        if wait < (left if left is not None else current_deadlines().cog_s):
            time.sleep(wait)


_WATCH = _RetryAfterFromCurl()
#: GDAL's settings for curl's trace of the headers, process-wide: GDAL's own threads (the
#: prefetch of a window's tiles) do not see the settings of the reading thread.
CURL_HEADER_TRACE = {
    "CPL_CURL_VERBOSE": "YES",
    # only curl's header lines (GDAL matches categories within the value): no other debug output
    "CPL_DEBUG": "CURL_INFO_HEADER_IN,CURL_INFO_HEADER_OUT",
}


def watch_retry_after() -> None:
    """Let GDAL's curl header lines reach :class:`_RetryAfterFromCurl` (idempotent, per
    process: Dask workers call it through the reader too)."""
    from rasterio.env import set_gdal_config

    loggers = [logging.getLogger(name) for name in GDAL_LOGGERS]
    if _WATCH in loggers[0].filters:
        return
    for key, value in CURL_HEADER_TRACE.items():
        set_gdal_config(key, value)
    for logger in loggers:
        logger.addFilter(_WATCH)
        logger.setLevel(logging.DEBUG)  # rasterio logs GDAL's debug messages only at DEBUG

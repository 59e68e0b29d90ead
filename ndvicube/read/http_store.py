"""The remote reader's HTTP(S) client: byte ranges of COGs on one host, retried as the server asks.

async-tiff reads through any object with obspec's ``get_range_async``/``get_ranges_async``;
:class:`HttpStore` is that object for ``http(s)://`` hrefs (``s3://`` keeps obstore's S3 client,
:func:`ndvicube.read.remote.store_and_path`). It replaces obstore's HTTP client there because
obstore retries 429/5xx answers itself, after its own backoff, and never shows the caller an
answer's headers: a server answering 429 with ``Retry-After: 3`` was asked 5 times within 1.2 s
per COG (issue 27). Here every answer is seen:

* a 429 or 503 with ``Retry-After`` (seconds or an HTTP date) holds the whole host
  (:data:`ndvicube.read.retries.THROTTLE`): no request to it, for any COG, leaves this process
  before that time. A wait longer than a COG's read deadline fails the request at once, saying
  so, instead of waiting for nothing;
* other 5xx/429 answers, dropped connections, timeouts and cut bodies are retried with backoff
  (:data:`ndvicube.read.retries.OBSTORE_RETRY`: 4 more attempts, 0.25 s doubling to 8 s);
* ranges a few bytes apart are fetched as one request (obstore's coalescing: gaps under 1 MiB),
  so a COG still costs 2 requests;
* a Planetary Computer SAS token near its expiry is renewed before the request, and one that
  expired meanwhile after the server refuses it with 403
  (:func:`ndvicube.search.profiles.fresh_href`);
* redirects are followed (at most 10, like obstore's and GDAL's) and carry no credential: the
  client sends no header but ``Range`` and ``User-Agent``, and a signed URL's query (a SAS
  token, an S3 presigned signature) goes only to the host it names, since a redirect is
  followed to its ``Location`` as written;
* proxies come from the environment (``http_proxy``, ``https_proxy``, ``no_proxy``) as for
  obstore and GDAL.

``s3://`` hrefs with credentials are fetched here too, by URLs obstore presigns
(:class:`ndvicube.read.s3.PresignedUrls`): obstore's own client sends the session token as an
``x-amz-security-token`` header, which reqwest kept on a redirect to another host.

Requests are urllib3's (connection pool per host), each in one of a few reused daemon threads
(:class:`_Workers`), so a read cancelled at its deadline never holds the process at exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import os
import queue
import threading
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any
from urllib.parse import urlsplit

import urllib3

from ndvicube.logs import redact_urls
from ndvicube.read import retries
from ndvicube.redirects import MAX_REDIRECTS, REDIRECT_STATUSES, next_url, pool_for
from ndvicube.search.profiles import BLOB_DOMAIN, fresh_href

#: Ranges closer than this are fetched as one request (object_store's ``coalesce_ranges``).
COALESCE_BYTES = 1024 * 1024
#: Statuses worth another attempt (the rest, 404 or 403 above all, are final).
RETRIED_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
#: Statuses whose ``Retry-After`` is a server's instruction to wait (RFC 9110 10.2.3).
THROTTLE_STATUSES = frozenset({429, 503})


class HttpStatusError(OSError):
    """A non-2xx answer, in obstore's words (``status code: 429 Too Many Requests``), so
    :func:`ndvicube.read.remote.remote_error` reads its status as it reads obstore's."""

    def __init__(self, status: int, reason: str, url: str, retry_after: float | None) -> None:
        super().__init__(
            f"Server returned non-2xx status code: {status} {reason} ({redact_urls(url)})"
        )
        self.status, self.retry_after = status, retry_after


class HttpStore:
    """obspec byte-range reads of ``http(s)://host/path`` for one host (one connection pool).

    ``signed_url``, when given, makes the URL of a path (an S3 object's presigned URL), anew
    for each attempt; else it is ``base_url``'s host and the path.
    """

    def __init__(
        self,
        base_url: str,
        *,
        connections: int = 32,
        signed_url: Callable[[str], Awaitable[str]] | None = None,
    ) -> None:
        parts = urlsplit(base_url)
        self.base = f"{parts.scheme}://{parts.netloc}/"
        self.pool = pool_for(self.base, connections)
        self.signed_url = signed_url

    async def _url(self, path: str) -> str:
        if self.signed_url is not None:
            return await self.signed_url(path)
        return self.base + path.lstrip("/")

    async def get_range_async(
        self, path: str, *, start: int, end: int | None = None, length: int | None = None
    ) -> bytes:
        """Bytes ``start`` to ``end`` (exclusive) of ``path``."""
        return await self._get(path, start, end if end is not None else start + (length or 0))

    async def get_ranges_async(
        self,
        path: str,
        *,
        starts: list[int],
        ends: list[int] | None = None,
        lengths: list[int] | None = None,
    ) -> list[bytes]:
        """Several ranges of ``path``; ranges less than :data:`COALESCE_BYTES` apart are
        fetched as one request, all requests at once."""
        if ends is None:
            ends = [s + n for s, n in zip(starts, lengths or [], strict=True)]
        merged = coalesce(list(zip(starts, ends, strict=True)))
        fetched = await asyncio.gather(*(self._get(path, a, b) for a, b in merged))
        out = []
        for start, end in zip(starts, ends, strict=True):
            i = next(i for i, (a, b) in enumerate(merged) if a <= start and end <= b)
            offset = start - merged[i][0]
            piece = fetched[i][offset : offset + end - start]
            if len(piece) < end - start:  # the answer stopped at the end of the file
                raise ShortFileError(merged[i][0] + len(fetched[i]), start, end)
            out.append(piece)
        return out

    async def _get(self, path: str, start: int, end: int) -> bytes:
        """One range, retried: after the host's ``Retry-After``, else with backoff."""
        url = await self._url(path)
        settings = retries.OBSTORE_RETRY
        delay = settings["backoff"]["init_backoff"].total_seconds()
        longest = settings["backoff"]["max_backoff"].total_seconds()
        for attempt in range(settings["max_retries"] + 1):
            await asyncio.sleep(retries.THROTTLE.wait_s(url))
            if attempt and self.signed_url is not None:
                url = await self._url(path)  # signed again: a retry may come late
            if BLOB_DOMAIN in url:  # a SAS token near its expiry: signed again (may ask for one)
                url = await _in_thread(fresh_href, url)
            try:
                return await _in_thread(self._fetch, url, start, end)
            except (retries.ThrottledTooLong, ShortFileError):
                raise
            except HttpStatusError as error:
                if error.status == 403:  # an expired SAS token: signed again, asked again
                    renewed = await _in_thread(partial(fresh_href, url, refused=True))
                    if renewed != url and attempt < settings["max_retries"]:
                        url = renewed
                        continue
                if error.status not in RETRIED_STATUSES or attempt == settings["max_retries"]:
                    raise
                if error.retry_after is not None:
                    continue  # the host is held until then (THROTTLE)
            except OSError:
                if attempt == settings["max_retries"]:
                    raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, longest)
        raise AssertionError("unreachable")

    def _fetch(self, url: str, start: int, end: int) -> bytes:
        """GET ``bytes=start-(end-1)`` of ``url`` (blocking; in a thread of its own), following
        redirects as :func:`ndvicube.redirects.next_url` says: a query of ``url`` (its signature
        or token) never goes to another host, even if a ``Location`` echoes it."""
        target = url
        for _ in range(MAX_REDIRECTS + 1):
            answer = self._request(target, start, end)
            location = answer.headers.get("Location")
            if answer.status not in REDIRECT_STATUSES or not location:
                break
            target = next_url(target, location, url)
        else:
            raise OSError(f"error following redirect: more than {MAX_REDIRECTS} redirects")
        if answer.status == 206:  # up to the end of the range, or of the file
            return answer.data
        if answer.status == 200:  # a server without Range support: the whole file
            return answer.data[start:end]
        if answer.status == 416:  # the range starts past the end of the file
            raise ShortFileError(_total_size(answer), start, end)
        raise self._status_error(answer, url)  # the host asked again (a redirect's included)

    def _request(self, url: str, start: int, end: int) -> Any:
        """One GET of the range, redirects not followed, the body read."""
        try:
            return self.pool.request(
                "GET",
                url,
                headers={"Range": f"bytes={start}-{end - 1}", "User-Agent": "ndvicube"},
                retries=urllib3.Retry(total=None, connect=0, read=0, status=0, other=0,
                                      redirect=0),
                redirect=False,
                timeout=urllib3.Timeout(connect=retries.HTTP_TIMEOUTS_S[0],
                                        read=retries.HTTP_TIMEOUTS_S[1]),
                decode_content=False,
            )  # fmt: skip
        except urllib3.exceptions.MaxRetryError as error:
            raise OSError(f"HTTP request failed: {error.reason}") from None
        except urllib3.exceptions.HTTPError as error:  # a cut body, a reset mid-answer
            raise OSError(f"HTTP request failed: {error}") from None

    def _status_error(self, answer: Any, url: str) -> HttpStatusError:
        """The answer's error; a throttling one first holds the host for its ``Retry-After``."""
        wait = None
        if answer.status in THROTTLE_STATUSES:
            wait = retries.retry_after_s(answer.headers.get("Retry-After"))
            if wait is not None:
                retries.THROTTLE.hold(url, wait)
                retries.check_throttle_fits(url, wait)
        return HttpStatusError(answer.status, answer.reason or "", url, wait)


class ShortFileError(OSError):
    """The file ends before a range its own TIFF header points to: it was cut short (a
    truncated or incomplete upload). The server said so itself - a 416, or a 206 whose
    ``Content-Range`` gives the file's size - so, unlike a connection cut mid-body (a network
    fault, retried), no retry can mend it (:data:`ndvicube.read.retries.PERMANENT`)."""

    def __init__(self, size: int | None, start: int, end: int) -> None:
        size_text = f"is {size:,} bytes long" if size is not None else f"ends before byte {start:,}"
        super().__init__(
            f"{SHORT_FILE}: it {size_text}, and bytes {start:,}-{end - 1:,} were asked for "
            "(its TIFF header, or tiles the header points to). It was truncated, or its upload "
            "did not complete; no retry "
            "can mend that: upload the file again, or set on_missing_asset: skip to leave the "
            "scene out"
        )
        self.size = size


#: The words of :class:`ShortFileError`, which mark it permanent.
SHORT_FILE = "the file is shorter than its TIFF header says"


def _total_size(answer: Any) -> int | None:
    """The file's size from a ``Content-Range`` (``bytes a-b/size`` or ``bytes */size``)."""
    total = (answer.headers.get("Content-Range") or "").rpartition("/")[2].strip()
    return int(total) if total.isdigit() else None


def coalesce(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """``(start, end)`` ranges merged where they overlap or lie less than
    :data:`COALESCE_BYTES` apart, sorted."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(ranges):
        if merged and start - merged[-1][1] < COALESCE_BYTES:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


class _Workers:
    """Daemon threads that run the client's blocking calls, reused from call to call.

    A thread is started only when every started one is busy (at most :attr:`limit`), so a
    job's hundreds of requests run in a few threads instead of one new thread each (issue 35:
    starting them was 5% of a cube job's samples). Daemon threads, so a read cancelled at
    its deadline, still blocked on its socket, never holds the process at exit.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.jobs: queue.SimpleQueue = queue.SimpleQueue()
        self.lock = threading.Lock()
        self.started = self.idle = self.waiting = 0

    def submit(self, call: Callable[[], Any], settle: Callable[[Any], None]) -> None:
        """``settle(call())`` in a worker thread (a new one if none is free and the limit
        allows). A worker counts as free again before it settles, so the next request, which
        the settled one may start, finds it free."""
        with self.lock:
            self.waiting += 1
            if self.waiting > self.idle and self.started < self.limit:
                self.started += 1
                self.idle += 1
                threading.Thread(target=self._work, name="ndvicube-http", daemon=True).start()
        # Run in the submitter's context: what the call logs is its job's (ndvicube.logs.JOB).
        self.jobs.put((partial(contextvars.copy_context().run, call), settle))

    def _work(self) -> None:
        while True:
            call, settle = self.jobs.get()
            with self.lock:
                self.idle -= 1
                self.waiting -= 1
            outcome = call()
            with self.lock:
                self.idle += 1
            settle(outcome)


#: Threads at once for the client's blocking calls: every host's connections (a store's
#: ``connections``, 32) with room for a second host and token renewals.
WORKER_THREADS = 64
_WORKERS = _Workers(WORKER_THREADS)


def _after_fork() -> None:
    """A forked child has none of the parent's threads: its own workers, started on use."""
    global _WORKERS
    _WORKERS = _Workers(WORKER_THREADS)


os.register_at_fork(after_in_child=_after_fork)


async def _in_thread(function, *args) -> Any:
    """``function(*args)`` in a worker thread (:class:`_Workers`), awaited; a cancelled wait
    leaves the thread to end its call at its socket's timeout without holding the process."""
    loop = asyncio.get_running_loop()
    future = loop.create_future()

    def call() -> tuple:
        try:
            return (function(*args), None)
        except BaseException as error:  # handed to the awaiting coroutine
            return (None, error)

    def settle(outcome: tuple) -> None:
        with contextlib.suppress(RuntimeError):  # the loop closed at exit
            loop.call_soon_threadsafe(_settle, future, *outcome)

    _WORKERS.submit(call, settle)
    return await future


def _settle(future: asyncio.Future, result: Any, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)

"""An HTTP file server that behaves like an object store: Range requests, latency, request log.

GDAL's ``/vsicurl/`` (and so rasterio) reads a Cloud-Optimized GeoTIFF with a few HTTP Range
requests on a kept-alive connection: the header first, then the tiles a window needs. Python's
``http.server`` has no Range support and closes connections, so tests of remote reads through it
would measure the wrong thing. This server answers what GDAL relies on:

- ``GET``/``HEAD`` over HTTP/1.1 with keep-alive (``Content-Length`` on every response);
- ``Range: bytes=a-b``, ``bytes=a-``, ``bytes=-n`` -> 206 with ``Content-Range``; several ranges
  -> 206 ``multipart/byteranges`` (what ``GDAL_HTTP_MULTIRANGE=SINGLE_GET`` asks for); none
  satisfiable -> 416; a malformed Range header is ignored (200 whole file, RFC 9110 section 14.2);
  ``If-Range`` that does not match the ETag also gives the whole file;
- ``Accept-Ranges``, ``Content-Type`` by extension, ``Last-Modified``, ``ETag``;
- 404 for missing files and for directories (no listings), 403 for paths outside the root
  (``..``, percent-encoded or not, and symlinks leading out), 405 for other methods.

``latency_s`` is slept before each answer, in the request's own thread, so concurrent requests
overlap as they would against a distant store. ``faults`` (a
:class:`~ndvicube.testing.faults.Faults`) turns chosen answers into what a struggling store
sends: 503/429, a dropped connection, a body cut short, a missing (404) or corrupt file.
``throttle`` (a :class:`Throttle`) answers 429/503 with ``Retry-After``, as a rate-limited store
does, and again to a client that asks before that time.

Every answered request is logged as a :class:`RequestRecord` with the body bytes actually
written and the fault it got, if any; :meth:`RangeHTTPServer.stats` sums them, e.g. to assert
how many bytes a windowed read fetched.

Example::

    with RangeHTTPServer(tmp_path, latency_s=0.02) as server:
        with rasterio.open(f"/vsicurl/{server.url}/scene/B04.tif") as src:
            src.read(1, window=Window(0, 0, 256, 256))
        assert server.stats("/scene/")["requests"] <= 3

Command line (serves until Ctrl-C or SIGTERM, prints the URL first)::

    python -m ndvicube.testing.rangeserver ROOT --port 8000 --latency-ms 20 --log-file req.jsonl
"""

from __future__ import annotations

import argparse
import contextlib
import email.utils
import json
import math
import mimetypes
import os
import re
import secrets
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import IO, BinaryIO
from urllib.parse import unquote

from ndvicube.testing import faults as fault_kinds
from ndvicube.testing._service import LoopbackService
from ndvicube.testing.faults import Faults, scramble

ByteRange = tuple[int, int]
"""First and last byte offsets of a range, both inclusive (as in ``Content-Range``)."""

#: Types GDAL and pystac care about; everything else falls back to :mod:`mimetypes`.
CONTENT_TYPES = {
    ".tif": "image/tiff",
    ".tiff": "image/tiff",
    ".json": "application/json",
    ".geojson": "application/geo+json",
}
_CHUNK = 256 * 1024
#: Longest wait of :attr:`RangeHTTPServer.requests` for requests in progress to be logged.
SETTLE_TIMEOUT_S = 5.0
_RANGE_SPEC = re.compile(r"(\d*)-(\d*)", re.ASCII)


#: The fault of a throttled answer in :attr:`RequestRecord.fault`.
THROTTLED = "throttled"


@dataclass
class Throttle:
    """429/503 answers with ``Retry-After``, and the times before which they hold.

    ``scope="path"``: the first request for each path is throttled, asking the client to wait
    ``retry_after_s``; every request for that path before then is throttled again (with the time
    left), so each early retry shows in the log. ``scope="host"``: the first request starts a
    window of ``retry_after_s`` in which every request, for any path, is throttled. Only paths
    ending with one of ``only`` are throttled, and only after the first ``after`` of them were
    served (a store that starts throttling mid-job). ``http_date`` sends the time as an HTTP date
    (whole seconds: the window then ends on the second the date names) instead of seconds.
    """

    retry_after_s: float = 3.0
    status: int = 429
    scope: str = "path"
    http_date: bool = False
    only: tuple[str, ...] = (".tif",)
    after: int = 0
    _seen: int = field(default=0, repr=False)
    _until: dict[str, float] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        if self.scope not in ("path", "host"):
            raise ValueError(f"Throttle scope must be 'path' or 'host', got {self.scope!r}")

    def decide(self, path: str, now: float) -> str | None:
        """The ``Retry-After`` value to answer a request for ``path`` with at ``now``
        (``time.time()``), or None to serve it."""
        if not path.endswith(self.only):
            return None
        key = path if self.scope == "path" else ""
        with self._lock:
            self._seen += 1
            if self._seen <= self.after:
                return None
            until = self._until.get(key)
            if until is None:
                until = now + self.retry_after_s
                if self.http_date:
                    until = float(math.ceil(until))
                self._until[key] = until
            if now >= until:
                return None
        if self.http_date:
            return email.utils.formatdate(until, usegmt=True)
        return str(max(1, math.ceil(until - now)))


@dataclass(frozen=True)
class RequestRecord:
    """One answered request, as an object store's access log would show it."""

    method: str
    path: str
    """URL path, percent-decoded, without the query string (``/scene/B04.tif``)."""
    range: str | None
    """The ``Range`` header as the client sent it, or None."""
    status: int
    bytes_sent: int
    """Body bytes actually written: 0 for HEAD, fewer than promised if the client hung up."""
    started: float
    """Wall-clock time (``time.time()``) at which the request was read."""
    duration: float
    """Seconds from reading the request to writing the last byte, latency included."""
    fault: str | None = None
    """The fault injected into the answer (see :mod:`ndvicube.testing.faults`), or None."""
    headers: tuple[tuple[str, str], ...] = ()
    """The request's headers (name lower-cased, value), as the client sent them."""
    host: str = ""
    """The host the request was for: of an absolute-form target (a request through this server
    as an HTTP proxy), else the ``Host`` header."""
    query: str = ""
    """The request target's query string, as sent (where a SAS token travels)."""


class RangeHTTPServer(LoopbackService):
    """Serve the files under ``root`` on ``http://host:port`` from a background thread.

    ``port=0`` picks a free port; :attr:`url` tells which once started. ``latency_s`` is added
    before every answer. ``log_file`` gets one JSON line per request; ``verbose`` prints the
    usual ``http.server`` access lines to stderr (off by default: tests stay quiet).

    Absolute-form targets (``GET http://host/path``, what a client sends to an HTTP proxy) are
    served as their path, so pointing ``http_proxy`` here serves a catalog whose hrefs name
    another host, e.g. ``http://account.blob.core.windows.net/container/...`` - the hosts
    Planetary Computer's signing recognises - from this folder.
    """

    def __init__(
        self,
        root: str | Path,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        latency_s: float = 0.0,
        log_file: str | Path | None = None,
        verbose: bool = False,
        faults: Faults | None = None,
        sas_token: str | Callable[[str], bool] | None = None,
        throttle: Throttle | None = None,
    ) -> None:
        self.root = Path(root).resolve()
        if not self.root.is_dir():
            raise NotADirectoryError(f"not a directory to serve: {self.root}")
        if latency_s < 0:
            raise ValueError(f"latency_s must be >= 0, got {latency_s}")
        self.host = host
        self.port = port
        """The port asked for, then the one in use once started."""
        self._asked_port = port
        self.latency_s = latency_s
        self.log_file = Path(log_file) if log_file is not None else None
        self.verbose = verbose
        self.faults = faults
        self.throttle = throttle
        self.sas_token = sas_token
        """When set, a request whose query string is not this token gets 403, as a private
        Azure Blob container answers an unsigned, wrongly signed or expired URL; a callable
        (e.g. :meth:`~ndvicube.testing.sasserver.SasTokenServer.accepts`) says which query
        strings it accepts."""
        self._records: list[RequestRecord] = []
        self._lock = threading.Lock()
        self._settled = threading.Condition(self._lock)
        self._in_flight = 0
        self._connections: set[socket.socket] = set()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None
        self._log: IO[str] | None = None
        self._stopping = threading.Event()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``, without a trailing slash; only while running."""
        if self._httpd is None:
            raise RuntimeError("RangeHTTPServer is not started")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> RangeHTTPServer:
        """Bind, then serve in a daemon thread; returns self for ``server = X(...).start()``."""
        if self._httpd is not None:
            raise RuntimeError("RangeHTTPServer is already started")
        if self.log_file is not None:
            self._log = self.log_file.open("a", encoding="utf-8")
        self._stopping.clear()
        self._httpd = _Server((self.host, self._asked_port), self)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"RangeHTTPServer:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and cut kept-alive connections, so no request is answered afterwards."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._stopping.set()  # silent answers end
        httpd.shutdown()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):  # already closed by the client
                conn.shutdown(socket.SHUT_RDWR)
        httpd.server_close()
        if self._thread is not None:
            self._thread.join()
        if self._log is not None:
            self._log.close()
            self._log = None

    @property
    def requests(self) -> list[RequestRecord]:
        """A copy of the log, oldest request first, once requests being answered are logged.

        A client can read the last byte of a response before the handler thread logs it, so
        this waits (at most ``SETTLE_TIMEOUT_S``) until no request is in progress: right after
        a read returns, its requests are all here. Records are appended as requests finish,
        which need not be the order they started in, hence the sort.
        """
        with self._lock:
            self._settled.wait_for(lambda: self._in_flight == 0, timeout=SETTLE_TIMEOUT_S)
            return sorted(self._records, key=lambda r: r.started)

    def reset_log(self) -> None:
        """Forget logged requests, e.g. after a warm-up read (the ``log_file`` is kept)."""
        with self._lock:
            self._settled.wait_for(lambda: self._in_flight == 0, timeout=SETTLE_TIMEOUT_S)
            self._records.clear()

    def stats(self, prefix: str = "") -> dict[str, int]:
        """Totals over logged requests whose path starts with ``prefix``.

        ``{"requests": n, "bytes": body bytes sent, "files": distinct paths}``.
        """
        records = [r for r in self.requests if r.path.startswith(prefix)]
        return {
            "requests": len(records),
            "bytes": sum(r.bytes_sent for r in records),
            "files": len({r.path for r in records}),
        }

    def _begin(self) -> None:
        """Count a request as in progress (before any byte of its answer is sent)."""
        with self._lock:
            self._in_flight += 1

    def _record(self, record: RequestRecord) -> None:
        """Log a finished request (also to the JSON-lines file); handlers run in threads."""
        with self._lock:
            self._records.append(record)
            if self._log is not None:
                self._log.write(json.dumps(asdict(record)) + "\n")
                self._log.flush()
            self._in_flight -= 1
            if self._in_flight == 0:
                self._settled.notify_all()

    def _track(self, conn: socket.socket, *, open_: bool) -> None:
        """Remember open connections so :meth:`stop` can cut idle keep-alive ones."""
        with self._lock:
            if open_:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def _resolve(self, request_target: str) -> Path | HTTPStatus:
        """The file a request target names, or why it cannot be served (403/404)."""
        path = _url_path(request_target).lstrip("/")
        if "\x00" in path:
            return HTTPStatus.NOT_FOUND
        candidate = (self.root / path).resolve()
        if not candidate.is_relative_to(self.root):
            return HTTPStatus.FORBIDDEN
        if not candidate.is_file():
            return HTTPStatus.NOT_FOUND
        return candidate


class _Server(ThreadingHTTPServer):
    """ThreadingHTTPServer bound for one :class:`RangeHTTPServer` (daemon handler threads)."""

    daemon_threads = True
    # socketserver's default listen backlog is 5: a client opening dozens of connections at once
    # (a reader fetching every COG header together) saw the rest wait for a SYN-ACK
    # retransmission, about 1 s, as no object store makes it wait.
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], owner: RangeHTTPServer) -> None:
        self.owner = owner
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    """Answers one connection's requests (several, thanks to HTTP/1.1 keep-alive)."""

    protocol_version = "HTTP/1.1"
    timeout = 60  # seconds an idle kept-alive connection may hold a thread
    # Headers and body are separate writes: with Nagle on, the body waits for the client's
    # delayed ACK of the headers, ~40 ms per request on a kept-alive connection.
    disable_nagle_algorithm = True
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.owner._track(self.connection, open_=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.owner._track(self.connection, open_=False)

    def handle(self) -> None:
        """Serve the connection; a client resetting it between requests is not an error."""
        with contextlib.suppress(ConnectionResetError, BrokenPipeError):
            super().handle()

    def do_GET(self) -> None:
        self._handle(send_body=True)

    def do_HEAD(self) -> None:
        self._handle(send_body=False)

    def do_POST(self) -> None:
        self._handle(send_body=True, allowed=False)

    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_POST

    def log_message(self, format: str, *args: object) -> None:
        if self.server.owner.verbose:
            super().log_message(format, *args)

    def _handle(self, *, send_body: bool, allowed: bool = True) -> None:
        """Sleep the latency, answer, and log the outcome even if the client hung up."""
        owner = self.server.owner
        started, t0 = time.time(), time.perf_counter()
        owner._begin()
        self._sent, self._budget = 0, None
        self._status = HTTPStatus.INTERNAL_SERVER_ERROR
        host, target = _split_target(self.path, self.headers.get("Host", ""))
        self.path = target
        self._fault = owner.faults.decide(_url_path(self.path)) if owner.faults else None
        signed = self._signed_as_required()  # a token is checked as the request arrives
        try:
            if owner.latency_s:
                time.sleep(owner.latency_s)
            if not allowed:
                self._error(HTTPStatus.METHOD_NOT_ALLOWED, send_body, close=True)
            elif not signed:
                self._error(HTTPStatus.FORBIDDEN, send_body)
            elif not self._throttled(started, send_body) and not self._inject(send_body):
                self._answer(send_body)
        except (BrokenPipeError, ConnectionResetError, _CutShort):
            self.close_connection = True
        finally:
            owner._record(
                RequestRecord(
                    method=self.command,
                    path=_url_path(self.path),
                    range=self.headers.get("Range"),
                    status=int(self._status),
                    bytes_sent=self._sent,
                    started=started,
                    duration=time.perf_counter() - t0,
                    fault=self._fault,
                    headers=tuple((k.lower(), v) for k, v in self.headers.items()),
                    host=host,
                    query=self.path.partition("?")[2].partition("#")[0],
                )
            )

    def _signed_as_required(self) -> bool:
        """Whether the request carries the SAS token the server asks for (if it asks)."""
        token = self.server.owner.sas_token
        query = self.path.partition("?")[2].partition("#")[0]
        return token is None or (token(query) if callable(token) else query == token)

    def _throttled(self, now: float, send_body: bool) -> bool:
        """Answer 429/503 with ``Retry-After`` if the server's :class:`Throttle` says so."""
        throttle = self.server.owner.throttle
        wait = throttle.decide(_url_path(self.path), now) if throttle else None
        if wait is None:
            return False
        self._fault = THROTTLED
        self._error(HTTPStatus(throttle.status), send_body, extra={"Retry-After": wait})
        return True

    def _inject(self, send_body: bool) -> bool:
        """Answer with the request's fault, if it is one that replaces the answer."""
        if self._fault == fault_kinds.ERROR:
            status = HTTPStatus(self.server.owner.faults.error_status())
            self._error(status, send_body, extra={"Retry-After": "0"})
        elif self._fault == fault_kinds.MISSING:
            self._error(HTTPStatus.NOT_FOUND, send_body)
        elif self._fault == fault_kinds.REDIRECT:
            location = self.server.owner.faults.redirect_to.rstrip("/") + self.path
            self._error(HTTPStatus.FOUND, send_body, extra={"Location": location})
        elif self._fault == fault_kinds.SILENT:
            self.server.owner._stopping.wait()  # hold the connection, say nothing
            self._status = 0
            self.close_connection = True
        elif self._fault == fault_kinds.DROP:
            self._status = 0  # nothing sent: the client sees the connection close
            self.close_connection = True
        else:
            return False
        return True

    def _answer(self, send_body: bool) -> None:
        """Whole file, one range, several ranges, or an error, as the headers ask."""
        target = self.server.owner._resolve(self.path)
        if isinstance(target, HTTPStatus):
            self._error(target, send_body)
            return
        with target.open("rb") as f:
            st = os.fstat(f.fileno())
            size = st.st_size
            etag = f'"{size:x}-{st.st_mtime_ns:x}"'
            modified = email.utils.formatdate(st.st_mtime, usegmt=True)
            ranges = self._requested_ranges(size, etag, modified)
            ctype = content_type(target)
            if ranges == []:
                self._error(
                    HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE,
                    send_body,
                    extra={"Content-Range": f"bytes */{size}"},
                )
                return
            common = {
                "Accept-Ranges": "bytes",
                "Last-Modified": modified,
                "ETag": etag,
            }
            if ranges is None:
                self._start(HTTPStatus.OK, size, {"Content-Type": ctype, **common})
                if send_body:
                    self._copy(f, 0, size)
            elif len(ranges) == 1:
                first, last = ranges[0]
                headers = {"Content-Type": ctype, "Content-Range": f"bytes {first}-{last}/{size}"}
                self._start(HTTPStatus.PARTIAL_CONTENT, last - first + 1, {**headers, **common})
                if send_body:
                    self._copy(f, first, last - first + 1)
            else:
                self._send_multipart(f, ranges, size, ctype, common, send_body)

    def _requested_ranges(self, size: int, etag: str, modified: str) -> list[ByteRange] | None:
        """Ranges to send; None means the whole file (no, malformed or stale Range)."""
        header = self.headers.get("Range")
        if header is None:
            return None
        if_range = self.headers.get("If-Range")
        if if_range is not None and if_range.strip() not in (etag, modified):
            return None
        return parse_range(header, size)

    def _send_multipart(
        self,
        f: BinaryIO,
        ranges: Sequence[ByteRange],
        size: int,
        ctype: str,
        common: dict[str, str],
        send_body: bool,
    ) -> None:
        """206 ``multipart/byteranges``: each range with its own Content-Range (RFC 9110 14.6)."""
        boundary = secrets.token_hex(16)
        parts = list(multipart_segments(ranges, size, ctype, boundary))
        length = sum(len(p) if isinstance(p, bytes) else p[1] - p[0] + 1 for p in parts)
        mtype = f"multipart/byteranges; boundary={boundary}"
        self._start(HTTPStatus.PARTIAL_CONTENT, length, {"Content-Type": mtype, **common})
        if not send_body:
            return
        for part in parts:
            if isinstance(part, bytes):
                self._write(part)
            else:
                self._copy(f, part[0], part[1] - part[0] + 1)

    def _start(self, status: HTTPStatus, length: int, headers: dict[str, str]) -> None:
        """Status line and headers; Content-Length always, so the connection can be reused."""
        self._status = status
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(length))
        self.end_headers()
        if self._fault == fault_kinds.TRUNCATE:
            self._budget = length // 2

    def _error(
        self,
        status: HTTPStatus,
        send_body: bool,
        *,
        extra: dict[str, str] | None = None,
        close: bool = False,
    ) -> None:
        """A short text error that keeps the connection open (``send_error`` would close it)."""
        body = f"{status.value} {status.phrase}\n".encode()
        headers = {"Content-Type": "text/plain; charset=utf-8", **(extra or {})}
        if status == HTTPStatus.METHOD_NOT_ALLOWED:
            headers["Allow"] = "GET, HEAD"
        if close:  # a request body we did not read would be taken for the next request
            headers["Connection"] = "close"
            self.close_connection = True
        self._start(status, len(body), headers)
        if send_body:
            self._write(body)

    def _copy(self, f: BinaryIO, offset: int, length: int) -> None:
        """Stream ``length`` bytes from ``offset`` in chunks (COGs can be large)."""
        f.seek(offset)
        while length > 0:
            chunk = f.read(min(_CHUNK, length))
            if not chunk:
                raise OSError(f"file shrank while serving it: {f.name}")
            if self._fault == fault_kinds.CORRUPT:
                chunk = scramble(chunk, offset, self.server.owner.faults.corrupt_after)
            self._write(chunk)
            offset += len(chunk)
            length -= len(chunk)

    def _write(self, data: bytes) -> None:
        """Write and count body bytes (the socket writer is unbuffered: written means sent).

        A truncated answer stops at its byte budget and closes the connection.
        """
        if self._budget is not None and len(data) >= self._budget:
            self.wfile.write(data[: self._budget])
            self._sent += self._budget
            raise _CutShort
        if self._budget is not None:
            self._budget -= len(data)
        self.wfile.write(data)
        self._sent += len(data)


class _CutShort(Exception):
    """Raised to abandon a response mid-body (the truncation fault)."""


def parse_range(header: str, size: int) -> list[ByteRange] | None:
    """Satisfiable ranges of a ``Range`` header for a file of ``size`` bytes.

    None if the header is malformed or not in bytes (the server must then ignore it); an empty
    list if it is valid but nothing is satisfiable (416). Ends past the file are clamped.

    >>> parse_range("bytes=0-9,-5,100-", 50)
    [(0, 9), (45, 49)]
    """
    unit, eq, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or not eq:
        return None
    specs = [s.strip() for s in spec.split(",") if s.strip()]
    if not specs:
        return None
    ranges: list[ByteRange] = []
    for s in specs:
        match = _RANGE_SPEC.fullmatch(s)
        if match is None or match.group(0) == "-":
            return None
        first, last = match.groups()
        if not first:
            suffix = int(last)
            if suffix > 0 and size > 0:
                ranges.append((max(size - suffix, 0), size - 1))
            continue
        start = int(first)
        end = int(last) if last else size - 1
        if last and end < start:
            return None
        if start < size:
            ranges.append((start, min(end, size - 1)))
    return ranges


def multipart_segments(
    ranges: Sequence[ByteRange], size: int, ctype: str, boundary: str
) -> Iterator[bytes | ByteRange]:
    """The body of a ``multipart/byteranges`` answer: delimiter bytes and file ranges in turn."""
    for i, (first, last) in enumerate(ranges):
        head = (
            ("\r\n" if i else "")
            + f"--{boundary}\r\n"
            + f"Content-Type: {ctype}\r\n"
            + f"Content-Range: bytes {first}-{last}/{size}\r\n\r\n"
        )
        yield head.encode("ascii")
        yield (first, last)
    yield f"\r\n--{boundary}--\r\n".encode("ascii")


def content_type(path: Path) -> str:
    """Media type by extension: ``image/tiff`` for GeoTIFFs, JSON types for STAC documents."""
    known = CONTENT_TYPES.get(path.suffix.lower())
    if known:
        return known
    guessed, _ = mimetypes.guess_type(path.name)
    return guessed or "application/octet-stream"


def _split_target(request_target: str, host_header: str) -> tuple[str, str]:
    """(host, origin-form target) of a request target, which may be absolute-form."""
    match = re.match(r"(?i)https?://([^/?#]*)", request_target)
    if match is None:
        return host_header, request_target
    rest = request_target[match.end() :]
    return match[1], rest if rest.startswith("/") else f"/{rest}"


def _url_path(request_target: str) -> str:
    """Percent-decoded path of a request target, without query or fragment.

    Split by hand: ``urlsplit("//etc/passwd")`` would take ``etc`` for a host name.
    """
    return unquote(request_target.split("?", 1)[0].split("#", 1)[0])


def main(argv: Sequence[str] | None = None) -> int:
    """Serve a folder until interrupted; print the URL first so scripts can read the port."""
    parser = argparse.ArgumentParser(
        prog="python -m ndvicube.testing.rangeserver",
        description="HTTP file server with Range requests, added latency and a request log.",
    )
    parser.add_argument("root", type=Path, help="folder to serve")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback)")
    parser.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="added per request")
    parser.add_argument("--log-file", type=Path, help="append one JSON line per request")
    parser.add_argument("-v", "--verbose", action="store_true", help="access log on stderr")
    args = parser.parse_args(argv)

    stopped = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stopped.set()

    signal.signal(signal.SIGTERM, _on_signal)
    server = RangeHTTPServer(
        args.root,
        host=args.host,
        port=args.port,
        latency_s=args.latency_ms / 1000,
        log_file=args.log_file,
        verbose=args.verbose,
    )
    with server:
        print(f"Serving {server.root} at {server.url}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            stopped.wait()
    stats = server.stats()
    print(f"{stats['requests']} request(s), {stats['bytes']} byte(s) sent", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

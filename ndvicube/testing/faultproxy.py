"""A fault-injecting HTTP reverse proxy, e.g. in front of :class:`StacApiServer`.

``rustac serve`` is a real STAC API but a well-behaved one; the proxy makes it behave like a busy
public API. Each request is either forwarded to the upstream server (body and headers as sent,
the answer's upstream address rewritten to the proxy's so pagination links come back through it)
or replaced by a fault from :class:`~ndvicube.testing.faults.Faults`: an error status (429/5xx),
a dropped connection, or a body cut short. A :class:`Refusal` makes it refuse some requests for
good, as a server refuses an invalid paging token: a 4xx with a JSON reason. Every request is
logged with its fault.

Example::

    with StacApiServer(collection, items) as api, FaultProxy(api.url, Faults(error_rate=0.3)) as p:
        Client.open(p.url).search(...)
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import threading
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from urllib.parse import urlsplit

from ndvicube.testing import faults as fault_kinds
from ndvicube.testing._service import ThreadedHTTPService
from ndvicube.testing.faults import Faults

#: Hop-by-hop headers a proxy must not forward (RFC 9110 section 7.6.1), plus the length it sets.
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


#: Where a HEAD answer's upstream ``Content-Length`` waits to be sent as it is.
_HEAD_LENGTH = "X-Faultproxy-Head-Length"

#: The fault a :class:`Refusal` is logged as.
REFUSED = "refused"


@dataclass(frozen=True)
class Refusal:
    """Requests the proxy refuses for good, with ``status`` and a JSON ``body`` (not forwarded).

    ``matching`` is looked for in the request's path and body: ``"skip"`` matches every page
    after the first of ``rustac serve`` (its next links carry ``skip``, in the GET query or the
    POST body), so the search starts and a later page is refused.
    """

    matching: str
    status: int = 400
    body: bytes = b'{"code": "BadRequest", "description": "invalid token"}'
    times: int = 0
    """Refuse only the first ``times`` matching requests (0: every one), as a store refuses
    a credential until the client reads a renewed one."""

    def applies(self, path: str, body: bytes) -> bool:
        """Whether the request for ``path`` with ``body`` is refused."""
        return self.matching in path or self.matching.encode() in body


@dataclass(frozen=True)
class ProxyRecord:
    """One request the proxy saw."""

    method: str
    path: str
    status: int
    """The status the client got (0: the connection was dropped before any answer)."""
    fault: str | None
    features: int | None = None
    """How many items (``features``) the answer held, if it was an ItemCollection."""
    body: bytes = b""
    """The request's body (a POST search's JSON)."""


class FaultProxy(ThreadedHTTPService):
    """Forward ``http://127.0.0.1:PORT/...`` to ``upstream``, injecting ``faults``."""

    def __init__(
        self,
        upstream: str,
        faults: Faults,
        *,
        refusal: Refusal | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self.upstream = upstream.rstrip("/")
        self.faults = faults
        self.refusal = refusal
        self.host = host
        self.records: list[ProxyRecord] = []
        self._lock = threading.Lock()
        self._refused = 0

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` of the proxy; only while running."""
        return self.base_url

    def handler(self) -> type[BaseHTTPRequestHandler]:
        return type("Handler", (_ProxyHandler,), {"proxy": self})

    def faulted(self) -> dict[str, int]:
        """How many requests got each fault (``None`` counts those forwarded untouched)."""
        with self._lock:
            counts: dict[str, int] = {}
            for record in self.records:
                counts[str(record.fault)] = counts.get(str(record.fault), 0) + 1
            return counts

    def _refuses(self, refusal: Refusal, path: str, body: bytes) -> bool:
        """Whether this request is refused (counting the refusals a ``times`` limits)."""
        if not refusal.applies(path, body):
            return False
        with self._lock:
            self._refused += 1
            return not refusal.times or self._refused <= refusal.times

    def _log(self, record: ProxyRecord) -> None:
        with self._lock:
            self.records.append(record)


class _ProxyHandler(BaseHTTPRequestHandler):
    """Forward or fault one request."""

    protocol_version = "HTTP/1.1"
    proxy: FaultProxy

    def do_GET(self) -> None:
        self._proxy()

    # PUT and DELETE too: in front of an S3 server (moto), the writes of a store are counted.
    do_POST = do_HEAD = do_PUT = do_DELETE = do_GET

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the records are the log."""

    def _proxy(self) -> None:
        """Decide the answer, log it, then send it: a client that has its answer finds the
        request already in :attr:`FaultProxy.records` (logging afterwards raced with it)."""
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        fault = self.proxy.faults.decide(urlsplit(self.path).path)
        status, headers, payload, cut = 0, {}, b"", None
        refusal = self.proxy.refusal
        if refusal is not None and self.proxy._refuses(refusal, self.path, body):
            fault, status, payload = REFUSED, refusal.status, refusal.body
            headers = {"Content-Type": "application/json"}
        elif fault == fault_kinds.ERROR:
            status = self.proxy.faults.error_status()
            # Throttling says when to come back, as public APIs do; server errors do not.
            headers = {"Retry-After": "1"} if status == 429 else {}
            payload = b'{"code": "injected fault"}'
        elif fault != fault_kinds.DROP:
            status, headers, payload = self._forward(body)
            cut = len(payload) // 2 if fault == fault_kinds.TRUNCATE else None
        self.proxy._log(
            ProxyRecord(self.command, self.path, status, fault, _features(payload), body)
        )
        if fault == fault_kinds.DROP:
            self.close_connection = True
            return
        try:
            self._send(status, payload, headers, cut=cut)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _forward(self, body: bytes) -> tuple[int, dict[str, str], bytes]:
        """The upstream's answer, with its address replaced by the proxy's."""
        upstream = urlsplit(self.proxy.upstream)
        conn = http.client.HTTPConnection(upstream.netloc, timeout=30)
        # Not Accept-Encoding: the upstream's address is rewritten in the answer, which a
        # compressed answer (stac-fastapi compresses) would hide.
        headers = {k: v for k, v in self.headers.items()
                   if k.lower() not in _HOP_BY_HOP | {"accept-encoding"}}  # fmt: skip
        try:
            conn.request(self.command, self.path, body=body or None, headers=headers)
            answer = conn.getresponse()
            payload = answer.read()
            kept = {k: v for k, v in answer.getheaders() if k.lower() not in _HOP_BY_HOP}
            if self.command == "HEAD" and answer.getheader("Content-Length"):
                kept[_HEAD_LENGTH] = answer.getheader("Content-Length")  # the object's size
        finally:
            conn.close()
        payload = payload.replace(self.proxy.upstream.encode(), self.proxy.url.encode())
        return answer.status, kept, payload

    def _send(
        self, status: int, payload: bytes, headers: dict[str, str], *, cut: int | None = None
    ) -> None:
        """Answer with ``payload``; with ``cut``, stop after that many bytes and hang up."""
        self.send_response(HTTPStatus(status))
        length = headers.pop(_HEAD_LENGTH, str(len(payload)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", length)
        if cut is not None:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command == "HEAD":
            return
        self.wfile.write(payload if cut is None else payload[:cut])
        if cut is not None:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)


def _features(payload: bytes) -> int | None:
    """The number of items of an ItemCollection answer (None for anything else)."""
    try:
        features = json.loads(payload).get("features")
    except (ValueError, AttributeError):
        return None
    return len(features) if isinstance(features, list) else None

"""Planetary Computer's SAS token endpoint, on loopback, for the ``planetary-computer`` profile.

The ``planetary-computer`` package signs an asset href on Azure Blob Storage
(``https://<account>.blob.core.windows.net/<container>/...``) by asking
``GET {PC_SDK_SAS_URL}/<account>/<container>`` for a token, answered as
``{"msft:expiry": "2026-12-01T18:00:00Z", "token": "st=...&se=...&sp=rl&...&sig=..."}``, and
appending the token as the URL's query string. This server answers that request with a fixed
token, so tests run the package's own signing code against it (point ``PC_SDK_SAS_URL`` at
:attr:`SasTokenServer.url`), and a :class:`~ndvicube.testing.rangeserver.RangeHTTPServer` with
the same ``sas_token`` refuses every unsigned read, as a private container would.

Every request is logged (:attr:`SasTokenServer.requests`: account, container and the
``Ocp-Apim-Subscription-Key`` header if one was sent).

``expiring=True`` makes it issue tokens as the real endpoint does: each one new, its ``se=``
(signed expiry) ``valid_s`` from now, and :meth:`SasTokenServer.accepts` - what a Range server
given it as ``sas_token`` asks - refuses a token once its expiry has passed (403, as Azure
refuses an expired SAS).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, quote

from ndvicube.testing._service import ThreadedHTTPService

#: A token shaped like Planetary Computer's (the parameters of a user-delegation SAS).
FAKE_SAS_TOKEN = (
    "st=2026-12-01T16%3A00%3A00Z&se=2026-12-02T17%3A00%3A00Z&sp=rl&sv=2024-05-04&sr=c"
    "&skoid=00000000-fake&sktid=00000000-fake&skt=2026-12-01T16%3A00%3A00Z"
    "&ske=2026-12-08T16%3A00%3A00Z&sks=b&skv=2024-05-04&sig=FAKE-SAS-SIGNATURE-7777"
)
_PATH = re.compile(r"^/api/sas/v1/token/([^/?]+)/([^/?]+)$")


@dataclass(frozen=True)
class TokenRequest:
    """One token request: for which storage account and container, with which key."""

    account: str
    container: str
    subscription_key: str | None


class SasTokenServer(ThreadedHTTPService):
    """``GET /api/sas/v1/token/{account}/{container}`` -> ``token`` valid for ``valid_s``.

    ``refuse`` (e.g. 403, 429) answers every token request with that status instead, as the
    endpoint does to a wrong subscription key or too many anonymous requests.
    """

    def __init__(
        self,
        token: str = FAKE_SAS_TOKEN,
        *,
        valid_s: float = 3600.0,
        refuse: int | None = None,
        expiring: bool = False,
    ) -> None:
        self.token = token
        self.valid_s = valid_s
        self.refuse = refuse
        self.expiring = expiring
        self.requests: list[TokenRequest] = []
        self.issued: dict[str, dt.datetime] = {}
        """Signature -> expiry of every token issued (``expiring`` only)."""
        self._lock = threading.Lock()

    def accepts(self, query: str) -> bool:
        """Whether a request's query string carries a token this server issued that has not
        expired (the fixed token, without ``expiring``)."""
        if not self.expiring:
            return query == self.token
        signature = parse_qs(query).get("sig", [""])[0]
        expiry = self.issued.get(signature)
        return expiry is not None and dt.datetime.now(dt.UTC) < expiry

    def _mint(self, expiry: dt.datetime) -> str:
        """A new token expiring at ``expiry`` (a whole second, as Azure writes ``se``)."""
        signature = f"FAKE-SAS-SIGNATURE-{len(self.issued) + 1:04d}"
        self.issued[signature] = expiry
        se = quote(expiry.strftime("%Y-%m-%dT%H:%M:%SZ"), safe="")
        return f"st=2026-12-01T16%3A00%3A00Z&se={se}&sp=rl&sv=2024-05-04&sr=c&sig={signature}"

    @property
    def url(self) -> str:
        """The value for ``PC_SDK_SAS_URL`` (no trailing slash); only while running."""
        return f"{self.base_url}/api/sas/v1/token"

    def handler(self) -> type[BaseHTTPRequestHandler]:
        return _handler(self)

    def answer(self, path: str, key: str | None) -> tuple[HTTPStatus, dict]:
        """The status and JSON body for a request to ``path``; logs token requests."""
        match = _PATH.match(path)
        if match is None:
            return HTTPStatus.NOT_FOUND, {"detail": "Not Found"}
        with self._lock:
            self.requests.append(TokenRequest(match[1], match[2], key))
        if self.refuse is not None:
            return HTTPStatus(self.refuse), {"detail": HTTPStatus(self.refuse).phrase}
        expiry = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=self.valid_s)
        token = self.token
        if self.expiring:
            expiry = expiry.replace(microsecond=0)
            with self._lock:
                token = self._mint(expiry)
        return HTTPStatus.OK, {"msft:expiry": expiry.strftime("%Y-%m-%dT%H:%M:%SZ"),
                               "token": token}  # fmt: skip


def _handler(owner: SasTokenServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            status, body = owner.answer(self.path, self.headers.get("Ocp-Apim-Subscription-Key"))
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler

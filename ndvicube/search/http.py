"""HTTP for STAC requests (API searches, remote ItemCollections): retried with backoff.

pystac-client's default (``max_retries=5``) retries only failed connections; a throttled (429)
or failing (5xx) API answer would end the search job. :func:`retrying_session` retries those too,
for GET and POST alike (a STAC search POST is idempotent), honouring ``Retry-After``.

A host name that does not resolve is retried once, not six times: DNS failing is no network or
a wrong URL, not throttling, and six retries with backoff kept a user without network waiting
16 s for the message that says so (:class:`StacRetry`). Every request has connect and read
timeouts that pystac-client cannot reset, a read timeout is retried once, and an HTML answer is
an error saying so (:class:`StacAdapter`): a silent server fails the search within about a
minute, naming its URL. A 4xx answer (other than 429 and 408) is the server refusing the request
for a reason it states: it is not retried, and the error carries that reason
(:class:`RefusedRequestError`), so the message can quote it instead of blaming the network.

A redirect to another host carries none of the request's own headers but a few harmless ones
(:class:`HostBoundSession`): requests itself drops only ``Authorization``, so a key in any other
header (``Ocp-Apim-Subscription-Key``, ``X-Api-Key``) or a ``Cookie`` went on to whatever host a
``302`` named.
"""

from __future__ import annotations

import json
from http import HTTPStatus

from requests import PreparedRequest, Response, Session
from requests.adapters import HTTPAdapter
from requests.exceptions import RequestException
from urllib3.exceptions import MaxRetryError, NameResolutionError, ReadTimeoutError
from urllib3.util.retry import Retry

from ndvicube.redirects import HARMLESS_HEADERS, without_query_of

#: Answers worth asking again: throttling, and server errors that are usually transient.
RETRY_STATUSES = (408, 429, 500, 502, 503, 504)
#: Retries of a host name that does not resolve (a resolver's hiccup, not throttling).
NAME_RESOLUTION_RETRIES = 1
#: Seconds to connect, and to wait for the answer, of every STAC request.
CONNECT_TIMEOUT_S = 10.0
READ_TIMEOUT_S = 30.0
#: Retries of a request the server accepted and did not answer in time: a server that is silent
#: for 30 s is rarely answering the next request, and six retries made 3.5 minutes of waiting.
READ_TIMEOUT_RETRIES = 1


class HtmlAnswerError(RequestException):
    """A STAC request answered by an HTML page (a captive portal, a proxy's login, a web site)."""


class RefusedRequestError(RequestException):
    """A STAC request the server refused (a 4xx other than 429/408): its answer is final, so it
    is not retried and is no network fault. :attr:`reason` is what the server said."""

    def __init__(self, request: PreparedRequest, response: Response) -> None:
        self.status = response.status_code
        self.reason = server_reason(response)
        super().__init__(
            f"{request.method} {request.url} was refused with HTTP {self.status} "
            f"{_phrase(self.status)}: {self.reason}",
            request=request,
            response=response,
        )


#: Fields of a JSON error body that hold its human-readable reason, in order of preference
#: (OGC API and stac-fastapi: ``description``; others ``message``, ``detail``, ``error``).
REASON_FIELDS = ("description", "message", "detail", "error", "title")


def server_reason(response: Response, limit: int = 300) -> str:
    """The reason a server gives in an error answer: a JSON body's ``description`` (or
    ``message``, ``detail``...), else the body's text, else the status's phrase."""
    try:
        body = json.loads(response.text)
    except ValueError:
        body = None
    if isinstance(body, dict):
        for field in REASON_FIELDS:
            value = body.get(field)
            if value:
                text = value if isinstance(value, str) else json.dumps(value)
                return text[:limit]
    return " ".join(response.text.split())[:limit] or _phrase(response.status_code)


def _phrase(status: int) -> str:
    """``Bad Request`` for 400; empty for a status http.HTTPStatus does not know."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


class StacRetry(Retry):
    """urllib3's retry policy, with name-resolution failures and read timeouts retried at most
    :data:`NAME_RESOLUTION_RETRIES` and :data:`READ_TIMEOUT_RETRIES` times whatever the other
    budgets allow."""

    def __init__(self, *args, name_resolution: int = NAME_RESOLUTION_RETRIES,
                 read_timeouts: int = READ_TIMEOUT_RETRIES, **kwargs) -> None:  # fmt: skip
        super().__init__(*args, **kwargs)
        self.name_resolution = name_resolution
        self.read_timeouts = read_timeouts

    def new(self, **kw) -> StacRetry:
        kw.setdefault("name_resolution", self.name_resolution)
        kw.setdefault("read_timeouts", self.read_timeouts)
        return super().new(**kw)

    def increment(
        self, method=None, url=None, response=None, error=None, _pool=None, _stacktrace=None
    ) -> StacRetry:
        budget = _limited_budget(error)
        if budget is None:
            return super().increment(method, url, response, error, _pool, _stacktrace)
        if getattr(self, budget) <= 0:
            raise MaxRetryError(_pool, url, error) from error
        retry = super().increment(method, url, response, error, _pool, _stacktrace)
        setattr(retry, budget, getattr(self, budget) - 1)
        return retry


def _limited_budget(error: BaseException | None) -> str | None:
    """The :class:`StacRetry` attribute counting retries of ``error``'s kind, if limited."""
    if isinstance(error, NameResolutionError):
        return "name_resolution"
    if isinstance(error, ReadTimeoutError):
        return "read_timeouts"
    return None


def retry_policy(total: int = 6, backoff_s: float = 0.25) -> StacRetry:
    """Up to ``total`` retries, waiting ``backoff_s`` x 2^n between them (0.25 s to 8 s, about
    16 s in all), or as long as a 429's ``Retry-After`` asks; one for an unresolved host name
    and one for an answer that did not come within :data:`READ_TIMEOUT_S`."""
    return StacRetry(
        total=total,
        connect=total,
        read=total,
        status=total,
        backoff_factor=backoff_s,
        backoff_max=30,
        status_forcelist=RETRY_STATUSES,
        allowed_methods=None,  # every method, POST searches included
        respect_retry_after_header=True,
        raise_on_status=True,
    )


class StacAdapter(HTTPAdapter):
    """requests' adapter retrying per :func:`retry_policy`, with a timeout no caller can drop,
    HTML answers refused and a server's refusal (4xx) raised with its reason.

    pystac-client 0.9 resets the timeout of a ``StacApiIO`` given to ``Client.open`` to None
    (no timeout: a server that accepts the connection and never answers hung the search for
    ever). A request sent without a timeout gets (:data:`CONNECT_TIMEOUT_S`,
    :data:`READ_TIMEOUT_S`) here, below anything pystac-client sets.
    """

    def __init__(self) -> None:
        super().__init__(max_retries=retry_policy())

    def send(self, request, stream=False, timeout=None, **kwargs):
        timeout = timeout if timeout is not None else (CONNECT_TIMEOUT_S, READ_TIMEOUT_S)
        response = super().send(request, stream=stream, timeout=timeout, **kwargs)
        if "html" in response.headers.get("Content-Type", "").lower():
            raise HtmlAnswerError(
                f"{request.url} answered with an HTML page (HTTP {response.status_code}), not "
                "STAC JSON",
                response=response,
            )
        if 400 <= response.status_code < 500 and response.status_code not in RETRY_STATUSES:
            raise RefusedRequestError(request, response)
        return response


class HostBoundSession(Session):
    """A requests session whose credentials stay on the host they were sent to.

    On a redirect to another host (scheme, host or port: requests' own test,
    ``should_strip_auth``) every header but :data:`ndvicube.redirects.HARMLESS_HEADERS` is
    dropped - requests drops only ``Authorization``, so a subscription key, an API key header or
    a cookie reached the host the redirect named - and so is any query parameter of the
    redirected request that the ``Location`` echoes (:func:`ndvicube.redirects.next_url`). A
    ``~/.netrc`` entry still applies to the new host: it was written for that host.
    """

    def rebuild_auth(self, prepared_request: PreparedRequest, response: Response) -> None:
        previous = response.request.url
        if self.should_strip_auth(previous, prepared_request.url):
            for name in [n for n in prepared_request.headers if n.lower() not in HARMLESS_HEADERS]:
                del prepared_request.headers[name]
            prepared_request.url = without_query_of(prepared_request.url, previous)
        super().rebuild_auth(prepared_request, response)


def mount_stac_adapter(session: Session) -> Session:
    """``session`` with :class:`StacAdapter` on http and https."""
    adapter = StacAdapter()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def retrying_session() -> Session:
    """A requests session for STAC documents: retries, timeouts, HTML refused, credentials kept
    on their host (:class:`HostBoundSession`)."""
    return mount_stac_adapter(HostBoundSession())

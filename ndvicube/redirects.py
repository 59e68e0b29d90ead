"""Redirects never carry a credential to another host.

A credential - a key header, a cookie, a session token, a signed URL's query - is configured
for one host. A redirect (``302 Location: ...``) may name another, and HTTP clients forward less
than one would think: requests and reqwest drop ``Authorization`` but keep every other header
(``Ocp-Apim-Subscription-Key``, ``x-amz-security-token``), curl (GDAL) keeps custom headers and
``CURLOPT_COOKIE``, and all of them follow a ``Location`` that echoes the request's query
(``return 302 https://other$request_uri``), signature included.

Every client of ndvicube follows redirects with the rules here: to another origin (scheme, host
or port, as requests' ``should_strip_auth`` and curl decide) only :data:`HARMLESS_HEADERS` go,
and the query parameters of the first request (its signature, its token) are taken out of the
URL a redirect names (:func:`next_url`); the parameters the redirecting server wrote itself (a
gateway's own signed URL) stay.
"""

from __future__ import annotations

import urllib.request
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import urllib3

#: Request headers that carry no credential: the only ones a redirect to another host keeps.
HARMLESS_HEADERS = frozenset(
    {"accept", "accept-encoding", "accept-language", "user-agent", "connection", "content-type",
     "content-length", "range"}
)  # fmt: skip
#: Redirects followed per request (reqwest's, curl's and GDAL's limit).
MAX_REDIRECTS = 10
_DEFAULT_PORTS = {"http": 80, "https": 443}


def origin(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) of ``url``, the default port made explicit."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or _DEFAULT_PORTS.get(scheme)


def same_origin(a: str, b: str) -> bool:
    """Whether ``a`` and ``b`` name the same scheme, host and port."""
    return origin(a) == origin(b)


def next_url(current: str, location: str, first: str) -> str:
    """The URL a redirect from ``current`` to ``location`` leads to, for a request first sent to
    ``first``: on another origin than ``first``'s, without the query parameters ``first``
    carried (its credential), which a ``Location`` may echo."""
    target = urljoin(current, location)
    if same_origin(target, first):
        return target
    return without_query_of(target, first)


def without_query_of(url: str, first: str) -> str:
    """``url`` without any ``name=value`` pair of ``first``'s query string."""
    sent = set(parse_qsl(urlsplit(first).query, keep_blank_values=True))
    parts = urlsplit(url)
    if not sent or not parts.query:
        return url
    kept = [p for p in parse_qsl(parts.query, keep_blank_values=True) if p not in sent]
    return urlunsplit(parts._replace(query=urlencode(kept)))


def harmless_headers(headers: dict[str, str]) -> dict[str, str]:
    """``headers`` without any that may carry a credential."""
    return {k: v for k, v in headers.items() if k.lower() in HARMLESS_HEADERS}


#: Answers that redirect (with a ``Location``).
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


def final_url(
    url: str, headers: dict[str, str], *, timeout_s: float
) -> tuple[str, int, dict[str, str]]:
    """Where ``url``'s redirects lead, followed by these rules with GETs of its first byte:
    ``headers`` go to ``url``'s own origin only (:func:`harmless_headers` elsewhere), a query
    echoed to another origin is taken out (:func:`next_url`). Returns the last URL, and the
    status and headers of its answer; ``OSError`` on a network fault or a redirect loop."""
    current = url
    for _ in range(MAX_REDIRECTS + 1):
        sent = headers if same_origin(current, url) else harmless_headers(headers)
        try:
            answer = pool_for(current, 1).request(
                "GET", current, headers=sent | {"Range": "bytes=0-0"}, redirect=False,
                retries=False, preload_content=False,
                timeout=urllib3.Timeout(connect=min(10.0, timeout_s), read=timeout_s),
            )  # fmt: skip
        except urllib3.exceptions.HTTPError as error:
            raise OSError(f"HTTP request failed: {error}") from None
        answer.close()  # the body is not needed (a whole file, from a server without ranges)
        location = answer.headers.get("Location")
        if answer.status not in REDIRECT_STATUSES or not location:
            return current, answer.status, dict(answer.headers)
        current = next_url(current, location, url)
    raise OSError(f"Maximum ({MAX_REDIRECTS}) redirects followed (a redirect loop?)")


def pool_for(base: str, connections: int) -> urllib3.PoolManager:
    """A pool of ``connections`` for ``base``'s host, through the environment's proxy if any
    (``http_proxy``, ``https_proxy``, ``no_proxy``, as obstore and GDAL read them)."""
    host = urlsplit(base).hostname or ""
    proxies = urllib.request.getproxies()
    proxy = proxies.get(urlsplit(base).scheme)
    if proxy and not urllib.request.proxy_bypass_environment(host, proxies):
        return urllib3.ProxyManager(proxy, maxsize=connections, block=False)
    return urllib3.PoolManager(maxsize=connections, block=False)

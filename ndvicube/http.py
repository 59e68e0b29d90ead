"""HTTP for STAC requests (API searches, remote ItemCollections): retried with backoff.

pystac-client's default (``max_retries=5``) retries only failed connections; a throttled (429)
or failing (5xx) API answer would end the search job. :func:`retrying_session` retries those too,
for GET and POST alike (a STAC search POST is idempotent), honouring ``Retry-After``.

A host name that does not resolve is retried once, not six times: DNS failing is no network or
a wrong URL, not throttling, and six retries with backoff kept a user without network waiting
16 s for the message that says so (:class:`StacRetry`).
"""

from __future__ import annotations

from requests import Session
from requests.adapters import HTTPAdapter
from urllib3.exceptions import MaxRetryError, NameResolutionError
from urllib3.util.retry import Retry

#: Answers worth asking again: throttling, and server errors that are usually transient.
RETRY_STATUSES = (408, 429, 500, 502, 503, 504)
#: Retries of a host name that does not resolve (a resolver's hiccup, not throttling).
NAME_RESOLUTION_RETRIES = 1


class StacRetry(Retry):
    """urllib3's retry policy, with name-resolution failures retried at most
    :data:`NAME_RESOLUTION_RETRIES` times whatever the other budgets allow."""

    def __init__(self, *args, name_resolution: int = NAME_RESOLUTION_RETRIES, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.name_resolution = name_resolution

    def new(self, **kw) -> StacRetry:
        kw.setdefault("name_resolution", self.name_resolution)
        return super().new(**kw)

    def increment(
        self, method=None, url=None, response=None, error=None, _pool=None, _stacktrace=None
    ) -> StacRetry:
        if not isinstance(error, NameResolutionError):
            return super().increment(method, url, response, error, _pool, _stacktrace)
        if self.name_resolution <= 0:
            raise MaxRetryError(_pool, url, error) from error
        retry = super().increment(method, url, response, error, _pool, _stacktrace)
        retry.name_resolution = self.name_resolution - 1
        return retry


def retry_policy(total: int = 6, backoff_s: float = 0.25) -> StacRetry:
    """Up to ``total`` retries, waiting ``backoff_s`` x 2^n between them (0.25 s to 8 s, about
    16 s in all), or as long as a 429's ``Retry-After`` asks; one for an unresolved host name."""
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


def retrying_session() -> Session:
    """A requests session that retries per :func:`retry_policy` on http and https."""
    session = Session()
    adapter = HTTPAdapter(max_retries=retry_policy())
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session

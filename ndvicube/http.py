"""HTTP for STAC requests (API searches, remote ItemCollections): retried with backoff.

pystac-client's default (``max_retries=5``) retries only failed connections; a throttled (429)
or failing (5xx) API answer would end the search job. :func:`retrying_session` retries those too,
for GET and POST alike (a STAC search POST is idempotent), honouring ``Retry-After``.
"""

from __future__ import annotations

from requests import Session
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

#: Answers worth asking again: throttling, and server errors that are usually transient.
RETRY_STATUSES = (408, 429, 500, 502, 503, 504)


def retry_policy(total: int = 6, backoff_s: float = 0.25) -> Retry:
    """Up to ``total`` retries, waiting ``backoff_s`` x 2^n between them (0.25 s to 8 s, about
    16 s in all), or as long as a 429's ``Retry-After`` asks."""
    return Retry(
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

"""Credentials stay on the host they were configured for, whatever a redirect says (issue 33).

Each request path that can carry a credential is sent to a Range server on 127.0.0.1 that answers
every request ``302`` to a server on 127.0.0.2 (two hosts to every HTTP client, as two domains
would be); the second server's log must show no credential: no header, cookie, session token,
subscription key or signed query. Where a cube is read, it must still be built.
"""

from __future__ import annotations

import pytest

from ndvicube.compute import Compute
from ndvicube.jobs import build_cube
from ndvicube.search import profiles
from ndvicube.search.http import retrying_session
from ndvicube.testing.faults import Faults
from ndvicube.testing.rangeserver import RangeHTTPServer
from ndvicube.testing.sasserver import FAKE_SAS_TOKEN, SasTokenServer
from tests.fault_helpers import CUBE, TOKEN, items_subset, ndvi_chunks

SECRET = "SECRET-4242"
OTHER_HOST = "127.0.0.2"


def headers_of(server: RangeHTTPServer) -> list[dict[str, str]]:
    """The headers of every request ``server`` answered."""
    return [dict(r.headers) for r in server.requests]


def leaked(server: RangeHTTPServer) -> list[str]:
    """Every header value or query string ``server`` received that holds :data:`SECRET`."""
    found = [f"{k}: {v}" for h in headers_of(server) for k, v in h.items() if SECRET in v]
    return found + [r.query for r in server.requests if SECRET in r.query]


def test_the_planetary_computer_key_is_not_sent_to_the_host_a_redirect_names(tmp_path, monkeypatch):
    """requests drops only ``Authorization`` on a redirect to another host: the subscription key
    (``Ocp-Apim-Subscription-Key``) went on to the host the token endpoint's 302 named."""
    sas = SasTokenServer()
    sas.host = OTHER_HOST
    with sas, RangeHTTPServer(tmp_path, faults=Faults(redirect_to=sas.base_url)) as endpoint:
        monkeypatch.setenv("PC_SDK_SAS_URL", f"{endpoint.url}/api/sas/v1/token")
        monkeypatch.setenv("PC_SDK_SUBSCRIPTION_KEY", SECRET)
        token = profiles.container_token("redirected", "container-1")
    assert token.query == FAKE_SAS_TOKEN  # the redirect was followed
    assert [h.get("ocp-apim-subscription-key") for h in headers_of(endpoint)] == [SECRET]
    assert [(r.container, r.subscription_key) for r in sas.requests] == [("container-1", None)]


def test_the_stac_session_keeps_headers_and_cookies_on_their_host(tmp_path):
    """The session of every STAC request (API searches, static catalogs): a key header, a
    cookie, a ``user:password@`` URL and a signed query (echoed by the redirect's Location)
    reach the host named, never the one it redirects to."""
    (tmp_path / "items.json").write_text('{"type": "FeatureCollection", "features": []}')
    with (
        RangeHTTPServer(tmp_path, host=OTHER_HOST) as target,
        RangeHTTPServer(tmp_path, faults=Faults(redirect_to=target.url)) as origin,
        retrying_session() as session,
    ):
        url = origin.url.replace("http://", f"http://user:{SECRET}@") + f"/items.json?k={SECRET}"
        answer = session.get(url, headers={"X-Api-Key": SECRET}, cookies={"session": SECRET})
    assert answer.json()["features"] == []
    sent = headers_of(origin)[0]
    assert sent["x-api-key"] == SECRET and SECRET in sent["cookie"] and "authorization" in sent
    assert target.requests and leaked(target) == []
    assert {"authorization", "cookie", "x-api-key"}.isdisjoint(headers_of(target)[0])


@pytest.mark.parametrize(
    "setting, value",
    [
        ("GDAL_HTTP_HEADERS", f"X-Api-Key: {SECRET}"),
        ("GDAL_HTTP_COOKIE", f"session={SECRET}"),
        (None, None),  # only the hrefs' signed query, which the redirect's Location echoes
    ],
)
def test_gdals_headers_and_cookies_stay_on_the_archives_host(
    catalog, clean, tmp_path, monkeypatch, setting, value
):
    """curl sends ``GDAL_HTTP_HEADERS`` and ``GDAL_HTTP_COOKIE`` to the host a redirect names,
    on every request, and GDAL cannot be told not to: ndvicube follows the redirect itself and
    GDAL reads the other host's URL without them. The cube is the same."""
    if setting:
        monkeypatch.setenv(setting, value)
    with (
        RangeHTTPServer(catalog.root, host=OTHER_HOST) as files,
        RangeHTTPServer(catalog.root, faults=Faults(redirect_to=files.url, only=(".tif",))) as cdn,
    ):
        items = items_subset(catalog, tmp_path / "items.json", base_url=cdn.url)
        build_cube(
            CUBE, items_path=items, out=tmp_path / "ndvi.zarr", compute=Compute(reader="gdal")
        )
    assert files.requests and leaked(files) == []
    assert not any(TOKEN in r.query for r in files.requests)  # the href's signed query neither
    assert ndvi_chunks(tmp_path / "ndvi.zarr") == ndvi_chunks(clean)
    # The archive's host got the credential with each request: ndvicube's, one per COG read.
    asked = [r for r in cdn.requests if r.path.endswith(".tif")]
    assert asked and {r.status for r in asked} == {302}
    assert len(leaked(cdn)) == (len(asked) if setting else 0)
    print(f"{len(asked)} requests to the archive's host, {len(files.requests)} to the other")

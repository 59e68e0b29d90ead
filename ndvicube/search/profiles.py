"""Archive profiles (``stac.profile``): an archive's item conventions mapped to what the cube reads.

The cube reads Earth Search's shape: asset keys ``red``, ``nir``, ``scl``...; each reflectance
asset's ``raster:bands`` scale and offset; hrefs that can be read as they are. Other archives
of the same Sentinel-2 L2A products differ:

- ``earth-search`` (the default): Earth Search v1 ``sentinel-2-c1-l2a``; items are used as found.
- ``planetary-computer``: Microsoft Planetary Computer ``sentinel-2-l2a``. Its items name
  assets by band (``B04``, ``B08``, ``SCL``), carry no ``raster:bands``, and its hrefs on Azure
  Blob Storage need a SAS token.

A profile works in two places. The search job *normalises* items (:func:`normalised`): assets
are renamed to Earth Search's keys and given the ``raster:bands`` the cube needs, so
``items.json`` and everything after it have one shape. The cube job *signs* hrefs in memory
just before reading (:func:`signed`), so no token is written to ``items.json``, the cube's
provenance or a log (URL query strings are redacted there too). Tokens expire (Planetary
Computer's after about 45 minutes, sooner than a region's cube job ends): the readers sign a
href again when its token is near its expiry or a read of it was refused with 403 once it had
expired (:func:`fresh_href`), from tokens kept per process.

Planetary Computer's reflectance is ``DN * 0.0001 + offset`` like Earth Search's: the scale is
L2A's quantification value (10000, the same at every processing baseline), and since baseline
04.00 ESA adds ``BOA_ADD_OFFSET`` = -1000 DN, i.e. an offset of -0.1; before 04.00 the offset is
0. The baseline comes from ``s2:processing_baseline``. An item with neither that property nor a
``raster:bands`` offset is left without one, and the cube job refuses it by name (or skips it
under ``on_missing_asset: skip``): the offset is never guessed.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit, urlunsplit

import pystac

from ndvicube.errors import ConfigError, SourceUnreachableError
from ndvicube.logs import redact_urls

EARTH_SEARCH, PLANETARY_COMPUTER = "earth-search", "planetary-computer"
PROFILES = (EARTH_SEARCH, PLANETARY_COMPUTER)

#: ndvicube's (Earth Search's) asset key -> Planetary Computer's.
PC_ASSET_KEYS: Mapping[str, str] = {
    "coastal": "B01",
    "blue": "B02",
    "green": "B03",
    "red": "B04",
    "rededge1": "B05",
    "rededge2": "B06",
    "rededge3": "B07",
    "nir": "B08",
    "nir08": "B8A",
    "nir09": "B09",
    "swir16": "B11",
    "swir22": "B12",
    "scl": "SCL",
}
#: L2A digital numbers per unit of reflectance (``BOA_QUANTIFICATION_VALUE``).
L2A_QUANTIFICATION = 10000
#: ``BOA_ADD_OFFSET`` in DN from processing baseline 04.00 on (0 before).
L2A_ADD_OFFSET_DN = -1000
OFFSET_SINCE_BASELINE = (4, 0)


def check_profile(profile: str) -> None:
    """Only the profiles above exist (the schema checks this too; scripts call it directly)."""
    if profile not in PROFILES:
        raise ConfigError(
            f"stac.profile is {profile!r}; use one of {', '.join(map(repr, PROFILES))}: "
            "earth-search for Earth Search v1, planetary-computer for Microsoft Planetary "
            "Computer."
        )


def normalised(items: Iterable[pystac.Item], profile: str) -> list[pystac.Item]:
    """Items in Earth Search's shape (copies); unchanged under ``earth-search``."""
    check_profile(profile)
    if profile == EARTH_SEARCH:
        return list(items)
    return [_from_planetary_computer(item) for item in items]


def _from_planetary_computer(item: pystac.Item) -> pystac.Item:
    """A copy of a Planetary Computer item with Earth Search's asset keys and raster:bands."""
    copy = item.clone()
    offset = baseline_offset(item)
    for ours, theirs in PC_ASSET_KEYS.items():
        asset = copy.assets.pop(theirs, None)
        if asset is None or ours in copy.assets:
            continue
        bands = asset.extra_fields.get("raster:bands") or [{}]
        band = {"nodata": 0} | bands[0]
        if ours == "scl":
            band.setdefault("data_type", "uint8")
        else:
            band.setdefault("data_type", "uint16")
            if "offset" not in band and offset is not None:
                band |= {"scale": band.get("scale", 1 / L2A_QUANTIFICATION), "offset": offset}
        asset.extra_fields["raster:bands"] = [band, *bands[1:]]
        copy.add_asset(ours, asset)
    return copy


def baseline_offset(item: pystac.Item) -> float | None:
    """L2A reflectance offset from ``s2:processing_baseline``: -0.1 from 04.00 on, else 0;
    None when the item does not say its baseline."""
    baseline = item.properties.get("s2:processing_baseline")
    numbers = re.fullmatch(r"\s*(\d+)\.(\d+)\s*", str(baseline)) if baseline else None
    if numbers is None:
        return None
    since = (int(numbers[1]), int(numbers[2])) >= OFFSET_SINCE_BASELINE
    return L2A_ADD_OFFSET_DN / L2A_QUANTIFICATION if since else 0.0


def signed(items: Iterable[pystac.Item], profile: str) -> list[pystac.Item]:
    """Items whose hrefs can be read: signed copies under ``planetary-computer``.

    Hrefs on Azure Blob Storage get the SAS token of their storage container, asked of
    Planetary Computer's token endpoint (``PC_SDK_SAS_URL``, with ``PC_SDK_SUBSCRIPTION_KEY`` if
    set: the ``planetary-computer`` package's settings) once per container and kept in the
    process until it is about to expire; other hrefs are left as they are. The readers keep
    them signed while a job runs (:func:`fresh_href`).
    """
    check_profile(profile)
    items = list(items)
    if profile == EARTH_SEARCH:
        return items
    copies = [item.clone() for item in items]
    for item in copies:
        for asset in item.assets.values():
            asset.href = sign_href(asset.href)
    return copies


# --- SAS tokens: asked for, kept per process, renewed before they expire ----------------------

#: A token is renewed when less than this is left of it, or half its lifetime if that is
#: shorter (Planetary Computer's tokens last about 45 minutes: renewed 5 minutes before). A
#: GDAL read keeps the href it opened, so the margin must outlast a read.
TOKEN_MARGIN_S = 300.0
#: A token refused (403) this close to its expiry, or after it, is taken for expired (the
#: store's clock may run ahead of this machine's) and renewed; one further from it is not.
TOKEN_SKEW_S = 60.0
#: The token request's connect and read timeouts (the package's own request has none).
TOKEN_TIMEOUT_S = (10.0, 30.0)
#: Retries of a token request that met a network fault or a 5xx (a 4xx is final: the message
#: says what to do).
TOKEN_RETRIES = 3
BLOB_DOMAIN = ".blob.core.windows.net"


@dataclass(frozen=True)
class SasToken:
    """A container's SAS token (the query string to append) and when it expires."""

    query: str
    expires: float
    """``time.time()`` of its expiry (``msft:expiry``)."""
    lifetime: float
    """Seconds it was valid for when received."""

    def margin(self) -> float:
        return min(TOKEN_MARGIN_S, self.lifetime / 2)

    def due(self, now: float) -> bool:
        """Whether it is within its margin of expiring (or expired)."""
        return now >= self.expires - self.margin()


#: This process's tokens by token request URL (account and container). Per process on purpose:
#: a Dask worker asks for its own when it first signs, and renews them itself.
_TOKENS: dict[str, SasToken] = {}
_TOKENS_LOCK = threading.Lock()


def sign_href(href: str, *, stale: str | None = None) -> str:
    """``href`` with its container's current SAS token, if it is on Azure Blob Storage (a new
    token if the current one is ``stale``: a store refused it)."""
    parts = urlsplit(href)
    if not parts.netloc.endswith(BLOB_DOMAIN) or "/" not in parts.path.strip("/"):
        return href
    container = parts.path.lstrip("/").split("/")[0]
    token = container_token(parts.netloc.split(".")[0], container, stale=stale)
    return urlunsplit(parts._replace(query=token.query))


def fresh_href(href: str, *, refused: bool = False) -> str:
    """``href``, signed again when its SAS token is within its margin of expiring - or, when a
    server ``refused`` it (403), when that token has expired; else ``href`` as it is (also any
    href without a token: those of Earth Search, S3, local files).

    The readers call this before each request or read, in whichever process runs it.
    """
    parts = urlsplit(href)
    if not parts.netloc.endswith(BLOB_DOMAIN):
        return href
    expires = signed_expiry(parts.query)
    if expires is None:
        return href
    cached = _TOKENS.get(_token_url(parts))
    margin = cached.margin() if cached is not None else TOKEN_MARGIN_S
    now = time.time()
    if refused:  # expired by the store's clock? Not if far from its expiry: a real refusal
        if now < expires - max(margin, TOKEN_SKEW_S):
            return href
        return sign_href(href, stale=parts.query)
    return href if now < expires - margin else sign_href(href)


def signed_expiry(query: str) -> float | None:
    """``time.time()`` of a SAS token's signed expiry (``se=``), None if it has none."""
    value = parse_qs(query).get("se", [None])[0]
    if not value:
        return None
    try:
        return _utc(value).timestamp()
    except ValueError:
        return None


def container_token(account: str, container: str, *, stale: str | None = None) -> SasToken:
    """This process's token for ``account``/``container``, asked for when it has none, the one
    it has is due (:meth:`SasToken.due`) or is ``stale`` (refused by a store)."""
    url = f"{sas_url()}/{account}/{container}"
    with _TOKENS_LOCK:
        token = _TOKENS.get(url)
        if token is None or token.due(time.time()) or token.query == stale:
            token = _TOKENS[url] = _request_token(url)
        return token


def sas_url() -> str:
    """The token endpoint: ``PC_SDK_SAS_URL`` as it is now, else the package's setting."""
    from planetary_computer.settings import Settings

    return (os.environ.get("PC_SDK_SAS_URL") or Settings.get().sas_url).rstrip("/")


def _token_url(parts) -> str:
    return f"{sas_url()}/{parts.netloc.split('.')[0]}/{parts.path.lstrip('/').split('/')[0]}"


def _request_token(url: str) -> SasToken:
    """Ask the endpoint for a token: timeouts, and retries of network faults and 5xx only."""
    import requests
    from planetary_computer.settings import Settings
    from requests.adapters import HTTPAdapter
    from urllib3.util.retry import Retry

    from ndvicube.search.http import HostBoundSession

    key = os.environ.get("PC_SDK_SUBSCRIPTION_KEY") or Settings.get().subscription_key
    session = HostBoundSession()  # the key never goes to the host a redirect names
    retry = Retry(total=TOKEN_RETRIES, status_forcelist=(500, 502, 503, 504),
                  backoff_factor=0.5, raise_on_status=False)  # fmt: skip
    session.mount("http://", HTTPAdapter(max_retries=retry))
    session.mount("https://", HTTPAdapter(max_retries=retry))
    headers = {"Ocp-Apim-Subscription-Key": key} if key else None
    try:
        answer = session.get(url, headers=headers, timeout=TOKEN_TIMEOUT_S)
        answer.raise_for_status()
        body = answer.json()
        expires = _utc(body["msft:expiry"]).timestamp()
        query = str(body["token"])
    except (requests.RequestException, ValueError, KeyError, TypeError) as error:
        raise _no_token(error) from None
    return SasToken(query, expires, max(1.0, expires - time.time()))


def _utc(text: str) -> dt.datetime:
    """An RFC 3339 time (``Z`` or an offset; naive taken as UTC)."""
    when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def _no_token(error: BaseException) -> Exception:
    """The one-paragraph error for a token that could not be had."""
    return SourceUnreachableError(
        f"Cannot get a Planetary Computer SAS token to read the scenes from "
        f"{sas_url()} ({redact_urls(str(error))[:300]}). Check the network; if "
        "the endpoint refuses anonymous requests (401/403, or 429 for too many), set "
        "PC_SDK_SUBSCRIPTION_KEY to your Planetary Computer key, and run again: nothing "
        "computed so far is lost."
    )

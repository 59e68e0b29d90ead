"""Find the scenes of an area: search a STAC API or filter a static JSON, then store the result.

A source is either a STAC API root (searched with bbox, datetime and, where the server conforms
to the Query extension, ``eo:cloud_cover``; pagination followed) or a JSON document - an
ItemCollection or a static catalog/collection - read from a path or URL and filtered here the
same way. Either way every time is rewritten in UTC as items are read (the date filter, sorting
and solar days all work from that instant), the cloud filter is applied again client-side, items
repeated across pages and older processings of reprocessed scenes are dropped, and items are
sorted by (acquisition time, id) so the stored result is deterministic.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import urllib.error
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pystac

from ndvicube.errors import NoScenesError, SourceUnreachableError, StorageFullError, is_disk_full
from ndvicube.geo import BBox
from ndvicube.search.items import (
    acquired,
    in_utc,
    keep_newest_processing,
    sort_items,
    without_repeats,
)

if TYPE_CHECKING:
    from ndvicube.search.http import RefusedRequestError

log = logging.getLogger(__name__)

#: Shown whenever the default online source cannot be reached.
DEMO_COMMAND = "snakemake --cores all --configfile config/demo.yaml"


@dataclass(frozen=True)
class SearchRequest:
    """What to look for: one area over one period."""

    url: str
    """STAC API root, or path/URL of an ItemCollection or static catalog JSON."""
    collection: str
    bbox: BBox
    """lon_min, lat_min, lon_max, lat_max (EPSG:4326)."""
    start: dt.date
    end: dt.date
    """Inclusive: items acquired on ``end`` (UTC) are kept."""
    max_cloud_cover: float
    """Percent; items with ``eo:cloud_cover >= max_cloud_cover`` are dropped."""
    area: str = ""
    page_size: int = 100
    """Items per page asked of a STAC API (pages are followed until the last)."""
    profile: str = "earth-search"
    """The archive's conventions (:mod:`ndvicube.search.profiles`); items are normalised to them."""

    @classmethod
    def from_params(
        cls,
        *,
        url: str,
        collection: str,
        bbox: Sequence[float],
        start: str,
        end: str,
        max_cloud_cover: float,
        area: str = "",
        profile: str = "earth-search",
    ) -> SearchRequest:
        """A request from rule parameters (dates as ISO strings, bbox as a list)."""
        return cls(
            url=url,
            collection=collection,
            bbox=tuple(bbox),
            start=dt.date.fromisoformat(start),
            end=dt.date.fromisoformat(end),
            max_cloud_cover=max_cloud_cover,
            area=area,
            profile=profile,
        )


def search(request: SearchRequest, *, allow_empty: bool = False) -> list[pystac.Item]:
    """Items matching ``request``: filtered, de-duplicated, sorted, in Earth Search's shape
    (:func:`ndvicube.search.profiles.normalised`).

    Raises :class:`NoScenesError` when nothing matches, unless ``allow_empty``.
    """
    from ndvicube.search.profiles import check_profile, normalised

    check_profile(request.profile)
    if _is_json_document(request.url):
        found, where = _read_json_items(request.url), f"in {request.url}"
    else:
        found, where = _search_api(request), "across pages"
    found = _filter(in_utc(found), request)
    items = normalised(_deduplicated(found, where), request.profile)
    if not items and not allow_empty:
        raise no_scenes(request)
    log.info("found %d item(s) for area %r", len(items), request.area)
    return items


def _deduplicated(items: Iterable[pystac.Item], where: str) -> list[pystac.Item]:
    """Each item once, and the newest processing of every scene, logging each kind of drop
    apart: a repeated item is not a reprocessed scene."""
    unique, repeated = without_repeats(items)
    if repeated:
        log.info(
            "%d item(s) repeated %s were dropped as duplicates: %s",
            len(repeated),
            where,
            sorted(set(repeated)),
        )
    kept, dropped = keep_newest_processing(unique)
    if dropped:
        log.info("dropped %d older processing(s) of reprocessed scenes: %s", len(dropped), dropped)
    return kept


def no_scenes(request: SearchRequest) -> NoScenesError:
    """The one-paragraph error for an empty search: area, box, dates, cloud limit, source."""
    return NoScenesError(
        f"No scene found for area {request.area!r} (box {list(request.bbox)}) from "
        f"{request.start} to {request.end} with eo:cloud_cover < {request.max_cloud_cover} "
        f"in collection {request.collection!r} at {request.url}. Widen the dates, raise "
        "stac.max_cloud_cover, or check the box and the collection name."
    )


def write_items(items: Sequence[pystac.Item], path: str | Path) -> None:
    """Store items as a GeoJSON ItemCollection with sorted keys (byte-stable across runs).

    Written to ``<path>.partial`` and renamed, so ``path`` is never half-written; on a failure
    (a full disk) the partial file is removed. Asset hrefs are made absolute and ``self`` links
    dropped: pystac resolves even an absolute local path against an item's ``self`` link
    (``/data/B04.tif`` under an ``s3://`` self link becomes ``s3://bucket/data/B04.tif``), so
    the stored items must not carry one.
    """
    # Each item is copied once, by _standalone: not again by the collection (20 ms of a search).
    standalone = [_standalone(i) for i in sort_items(items)]
    collection = pystac.ItemCollection(standalone, clone_items=False)
    text = json.dumps(collection.to_dict(transform_hrefs=False), indent=1, sort_keys=True)
    tmp = Path(f"{path}.partial")
    try:
        tmp.write_text(text + "\n")
    except OSError as error:
        tmp.unlink(missing_ok=True)  # never left behind, whatever failed
        if is_disk_full(error):
            raise StorageFullError(
                f"No space left on the device (or quota) while writing the search results "
                f"{path}. Nothing half-written is left. Free space on {Path(path).parent} "
                f"(df -h {Path(path).parent}) and run again."
            ) from error
        raise
    os.replace(tmp, path)


def _standalone(item: pystac.Item) -> pystac.Item:
    """A copy of ``item`` with absolute asset hrefs and no ``self`` link."""
    copy = item.clone()
    for key, asset in copy.assets.items():
        if "://" not in asset.href and not Path(asset.href).is_absolute():
            asset.href = item.assets[key].get_absolute_href() or asset.href
    copy.remove_links("self")
    return copy


def read_items(path: str | Path) -> list[pystac.Item]:
    """Items stored by :func:`write_items`, in their stored order, their times in UTC (a file
    written by hand or by an older ndvicube may carry offsets)."""
    return in_utc(pystac.ItemCollection.from_file(str(path)))


def _is_json_document(url: str) -> bool:
    """Local paths and URLs of ``.json``/``.geojson`` files are documents, not API roots."""
    if "://" not in url or url.startswith("file://"):
        return True
    return url.lower().split("?", 1)[0].endswith((".json", ".geojson"))


def _read_json_items(url: str) -> list[pystac.Item]:
    """All items of an ItemCollection, or of a static catalog/collection (recursively)."""
    try:
        data = _load_json(url)
    except (OSError, urllib.error.URLError, ValueError) as exc:
        raise _source_error(url, exc) from None
    if data.get("type") == "FeatureCollection":
        return list(pystac.ItemCollection.from_dict(data, preserve_dict=False))
    if data.get("type") == "Feature":
        return [pystac.Item.from_dict(data)]
    try:
        catalog = pystac.read_file(url, stac_io=_BoundedStacIO())
        if not isinstance(catalog, pystac.Catalog):
            raise SourceUnreachableError(f"{url} is neither an ItemCollection nor a STAC catalog.")
        return list(catalog.get_items(recursive=True))
    except (OSError, urllib.error.URLError, ValueError, pystac.STACError) as exc:
        raise _source_error(url, exc) from None


class _BoundedStacIO(pystac.stac_io.DefaultStacIO):
    """pystac's reader of a static catalog's children and items, its URLs fetched through
    :func:`.http.retrying_session` (pystac's own ``urlopen`` has no timeout at all)."""

    def read_text_from_href(self, href: str) -> str:
        if "://" not in href or href.startswith("file://"):
            return super().read_text_from_href(href)
        return _get_text(href)


def _load_json(url: str) -> dict:
    """Read a JSON document from a path, file:// URL or http(s) URL."""
    if url.startswith("file://"):
        url = url[len("file://") :]
    if "://" not in url:
        with open(url) as f:
            return json.load(f)
    return json.loads(_get_text(url))


def _get_text(url: str) -> str:
    """The body of ``url``, through the STAC session (:func:`.http.retrying_session`)."""
    from ndvicube.search.http import retrying_session

    with retrying_session() as session:
        response = session.get(url)
        response.raise_for_status()
        return response.text


def _filter(items: Iterable[pystac.Item], request: SearchRequest) -> list[pystac.Item]:
    """Client-side equivalent of an API search: collection, bbox, dates, cloud cover."""
    return [
        item
        for item in items
        if (item.collection_id in (None, request.collection))
        and _intersects(item.bbox, request.bbox)
        and request.start <= acquired(item).date() <= request.end
        and _cloud_ok(item, request.max_cloud_cover)
    ]


def _cloud_ok(item: pystac.Item, max_cloud_cover: float) -> bool:
    """``eo:cloud_cover < max``; items without the property are kept (cannot judge them)."""
    cover = item.properties.get("eo:cloud_cover")
    return cover is None or float(cover) < max_cloud_cover


def _intersects(item_bbox: Sequence[float] | None, bbox: BBox) -> bool:
    """Axis-aligned overlap of two lon/lat boxes (items without bbox are kept)."""
    if not item_bbox:
        return True
    return not (
        item_bbox[2] < bbox[0]
        or item_bbox[0] > bbox[2]
        or item_bbox[3] < bbox[1]
        or item_bbox[1] > bbox[3]
    )


def _search_api(request: SearchRequest) -> list[pystac.Item]:
    """Search a STAC API, with the Query extension when the server conforms to it."""
    from pystac_client import Client
    from pystac_client.exceptions import APIError
    from pystac_client.stac_api_io import StacApiIO

    from ndvicube.search.http import CONNECT_TIMEOUT_S, READ_TIMEOUT_S, retrying_session

    timeout = (CONNECT_TIMEOUT_S, READ_TIMEOUT_S)
    try:
        stac_io = StacApiIO(timeout=timeout)
        # The timeout stays, whatever open() resets; credentials stay on their host.
        stac_io.session = retrying_session()
        client = Client.open(request.url, stac_io=stac_io, timeout=timeout)
        query = _cloud_query(client, request)
        found = client.search(
            collections=[request.collection],
            bbox=list(request.bbox),
            datetime=f"{request.start.isoformat()}T00:00:00Z/{request.end.isoformat()}T23:59:59.999Z",
            query=query,
            limit=request.page_size,
        )
        items = list(found.items())
    except (APIError, OSError, urllib.error.URLError, ValueError) as exc:
        raise _source_error(request.url, exc) from None
    log.info("STAC API returned %d item(s) before client-side filtering", len(items))
    return items


def _cloud_query(client, request: SearchRequest) -> dict | None:
    """Ask the server to filter cloud cover if it can; otherwise say it is done here."""
    from pystac_client.conformance import ConformanceClasses

    if client.conforms_to(ConformanceClasses.QUERY):
        return {"eo:cloud_cover": {"lt": request.max_cloud_cover}}
    log.info(
        "%s does not conform to the STAC Query extension: filtering eo:cloud_cover < %s "
        "client-side",
        request.url,
        request.max_cloud_cover,
    )
    return None


def _source_error(url: str, exc: BaseException) -> SourceUnreachableError:
    """The one-paragraph error for a source that could not be read: refused by its server
    (a 4xx with a reason), or not reached."""
    from ndvicube.search.http import RefusedRequestError

    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, RefusedRequestError):
        cause = cause.__cause__ or cause.__context__
    return _refused(url, cause) if cause is not None else _unreachable(url, exc)


def _refused(url: str, refusal: RefusedRequestError) -> SourceUnreachableError:
    """A server's refusal, quoted: the network worked, so the message never blames it."""
    from ndvicube.logs import redact_urls

    asked = redact_urls(f"{refusal.request.method} {refusal.request.url}")
    status = f"HTTP {refusal.status} {refusal.response.reason or ''}".strip()
    return SourceUnreachableError(
        f"The STAC source {url} refused the request ({status} to {asked}), saying: "
        f'"{refusal.reason}". This is the answer of the server, not a network fault, so it '
        f"was not asked again. {_refusal_hint(refusal.status)}"
    )


def _refusal_hint(status: int) -> str:
    """What to change for a refusal with ``status``."""
    if status in (401, 403):
        return (
            "It wants credentials or a valid token: check that this archive is open to you and "
            "that stac.url is its STAC API."
        )
    if status == 404:
        return "Nothing is there: check stac.url and stac.collection."
    return (
        "Check stac.url, stac.collection and the area's box and dates; if a later page was "
        "refused (its paging token expired or was rejected), run the search again."
    )


def _unreachable(url: str, exc: BaseException) -> SourceUnreachableError:
    """The one-paragraph message shown when the source cannot be reached."""
    return SourceUnreachableError(
        f"Cannot reach the STAC source {url} ({_reason(exc)}). Check the network "
        f"connection and stac.url. To run the whole pipeline offline on the synthetic demo "
        f"catalog instead, run: {DEMO_COMMAND}"
    )


def _reason(exc: BaseException) -> str:
    """A short cause for a failed request (urllib3 messages run to several hundred characters)."""
    from ndvicube.search.http import CONNECT_TIMEOUT_S, READ_TIMEOUT_RETRIES, READ_TIMEOUT_S

    text, cause = str(exc), exc.__cause__ or exc.__context__
    while cause is not None:  # pystac wraps a failed read in "does not resolve to a STAC object"
        text, cause = f"{text} <- {cause}", cause.__cause__ or cause.__context__
    if "Failed to resolve" in text or "Name or service not known" in text:
        return "its host name could not be resolved: no network or a wrong URL"
    if "Connection refused" in text:
        return "connection refused: nothing is listening there"
    if "HTML page" in text:
        return (
            f"{text[:200]}: a captive portal, a proxy's login page or a web page, not a STAC "
            "API; open the URL in a browser, log in to the network if asked, or fix stac.url"
        )
    if "Read timed out" in text:
        asked = re.search(r"with url: (\S+) \(Caused", text)
        return (
            f"the server accepted the connection but sent no answer within {READ_TIMEOUT_S:g} s, "
            f"{READ_TIMEOUT_RETRIES + 1} times{f' (to {asked[1]})' if asked else ''}: it is down "
            "or overloaded"
        )
    if "timed out" in text.lower():
        return f"could not connect within {CONNECT_TIMEOUT_S:g} s"
    return f"{type(exc).__name__}: {text[:300]}"

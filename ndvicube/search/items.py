"""What ndvicube reads from a STAC item: projection, band scaling, processing baseline, scene.

Earth Search has written the projection as ``proj:epsg`` (an integer) and newer catalogs write
``proj:code`` (``"EPSG:32644"``); scale, offset and nodata come from each asset's
``raster:bands``. Reading them per item (never as constants) is what keeps items of different
processing baselines (offset 0 before baseline 04.00, -0.1 since) from being mixed.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import pystac

from ndvicube.errors import ItemMetadataError


@dataclass(frozen=True)
class BandScaling:
    """How to turn one asset's digital numbers into physical values: ``dn * scale + offset``."""

    scale: float
    offset: float
    nodata: float | None


def item_epsg(item: pystac.Item) -> int | None:
    """EPSG code of the item's grid from ``proj:epsg`` or ``proj:code`` (item or first asset)."""
    for props in (item.properties, *(a.extra_fields for a in item.assets.values())):
        if props.get("proj:epsg") is not None:
            return int(props["proj:epsg"])
        code = props.get("proj:code")
        if isinstance(code, str) and code.upper().startswith("EPSG:"):
            return int(code.split(":", 1)[1])
    return None


def band_scaling(item: pystac.Item, asset_key: str, *, require_scale: bool = True) -> BandScaling:
    """Scale, offset and nodata of ``item.assets[asset_key]`` from its ``raster:bands``.

    Reflectance assets must declare scale and offset (``require_scale``): guessing them is how
    a cube silently mixes processing baselines. Classification assets (SCL) only need nodata.
    """
    asset = item.assets.get(asset_key)
    if asset is None:
        raise ItemMetadataError(
            f"Item {item.id!r} has no asset {asset_key!r} (it has: "
            f"{', '.join(sorted(item.assets))}).{_profile_hint(item)} Check stac.collection, "
            "or drop this item."
        )
    bands = asset.extra_fields.get("raster:bands") or [{}]
    info = bands[0]
    if require_scale and ("scale" not in info or "offset" not in info):
        raise ItemMetadataError(
            f"Item {item.id!r}, asset {asset_key!r}: raster:bands lacks scale/offset "
            f"({info!r}), so its reflectance cannot be computed without guessing"
            f"{_no_baseline(item)}. Use a collection whose items declare them (Earth Search "
            "sentinel-2-c1-l2a does)."
        )
    return BandScaling(
        scale=float(info.get("scale", 1.0)),
        offset=float(info.get("offset", 0.0)),
        nodata=None if info.get("nodata") is None else float(info["nodata"]),
    )


def _profile_hint(item: pystac.Item) -> str:
    """A pointer to ``stac.profile`` when the item's assets are named the Planetary Computer way."""
    if {"B04", "SCL"} & set(item.assets):
        return (
            " Its assets are named by band, as Planetary Computer names them: set "
            "stac.profile: planetary-computer."
        )
    return ""


def _no_baseline(item: pystac.Item) -> str:
    """Why no offset was derived: the item does not say its processing baseline either."""
    if item.properties.get("s2:processing_baseline"):
        return ""
    return (
        ", and it has no s2:processing_baseline either, from which stac.profile: "
        "planetary-computer would derive the offset"
    )


def processing_baseline(item: pystac.Item) -> str:
    """ESA processing baseline (``"05.10"``); from ``s2:processing_baseline`` or the product URI."""
    baseline = item.properties.get("s2:processing_baseline")
    if baseline:
        return str(baseline)
    match = re.search(r"_N(\d{2})(\d{2})_", str(item.properties.get("s2:product_uri", "")))
    return f"{match.group(1)}.{match.group(2)}" if match else "00.00"


def tile_code(item: pystac.Item) -> str:
    """MGRS tile of the item (``"44RPR"``), from ``grid:code``, the ``mgrs:`` fields or the id."""
    props = item.properties
    if isinstance(props.get("s2:mgrs_tile"), str):  # Planetary Computer
        return props["s2:mgrs_tile"]
    code = props.get("grid:code")
    if isinstance(code, str) and code.startswith("MGRS-"):
        return code[5:]
    if "mgrs:utm_zone" in props:
        return f"{props['mgrs:utm_zone']}{props.get('mgrs:latitude_band', '')}" + str(
            props.get("mgrs:grid_square", "")
        )
    match = re.search(r"_T?(\d{1,2}[A-Z]{3})_", item.id)
    return match.group(1) if match else item.id


#: Item properties that hold a time (STAC common metadata): rewritten in UTC where items are read.
TIME_PROPERTIES = ("datetime", "start_datetime", "end_datetime")


def acquired(item: pystac.Item) -> dt.datetime:
    """Acquisition time as a UTC instant (timezone-aware).

    STAC asks for UTC, but a catalog may write ``19:07:31+14:00`` or no zone at all. A naive time
    is read as UTC; an aware one is converted, never taken at its own offset, which would move
    its date and its solar day (``+14:00`` by one day forward, ``-12:00`` by one back).
    """
    when = item.datetime or pystac.utils.str_to_datetime(item.properties["start_datetime"])
    return _in_utc(when)


def _in_utc(when: dt.datetime) -> dt.datetime:
    """``when`` as a UTC instant: converted if it has an offset, read as UTC if naive."""
    return when.astimezone(dt.UTC) if when.tzinfo else when.replace(tzinfo=dt.UTC)


def in_utc(items: Iterable[pystac.Item]) -> list[pystac.Item]:
    """``items`` with ``datetime``, ``start_datetime`` and ``end_datetime`` rewritten in UTC
    (``...Z``), in place: done once, where items are read (search, ``items.json``).

    Every consumer after it - the search's date filter, sorting, solar days, odc-stac's
    grouping and time labels, the stored ``items.json`` and the cube's provenance - then sees one
    instant written one way, whatever offset the catalog used.
    """
    items = list(items)
    for item in items:
        if item.datetime is not None:
            item.datetime = _in_utc(item.datetime)
        for key in TIME_PROPERTIES:
            text = item.properties.get(key)
            if isinstance(text, str) and not text.endswith("Z"):
                utc = _in_utc(pystac.utils.str_to_datetime(text))
                item.properties[key] = pystac.utils.datetime_to_str(utc)
    return items


def solar_day(item: pystac.Item, lon: float) -> dt.date:
    """Local solar date of the acquisition at longitude ``lon``: UTC shifted by lon/15 hours.

    Same rule as odc-stac's ``groupby="solar_day"``: both tiles of one pass land on one day
    even where the UTC date changes during the pass.
    """
    return (acquired(item) + dt.timedelta(hours=lon / 15.0)).date()


def without_repeats(items: Iterable[pystac.Item]) -> tuple[list[pystac.Item], list[str]]:
    """Each item id once; return (kept, the ids of the copies dropped, one per copy).

    An API that pages by offset repeats items when its list shifts between two pages, and a
    catalog may list an item twice. A repeat is the same item, not a reprocessed scene, so it is
    dropped (and counted) here, before :func:`keep_newest_processing` compares processings. Of
    two copies that differ, the higher processing (baseline, then ``updated``) is kept.
    """
    kept: dict[str, pystac.Item] = {}
    repeated: list[str] = []
    for item in items:
        if item.id in kept:
            repeated.append(item.id)
            if _processing_rank(item) <= _processing_rank(kept[item.id]):
                continue
        kept[item.id] = item
    return list(kept.values()), repeated


def keep_newest_processing(items: Iterable[pystac.Item]) -> tuple[list[pystac.Item], list[str]]:
    """Drop older processings of a scene that was reprocessed; return (kept, dropped ids).

    Earth Search lists some scenes twice (``..._0_L2A`` at baseline 02.14, offset 0, and
    ``..._1_L2A`` reprocessed at 05.00, offset -0.1) with acquisition times 1 ms apart. A scene
    is (platform, tile, acquisition time within 60 s); the highest baseline wins, then the
    latest ``updated``/id.
    """
    by_scene: dict[tuple[str, str], list[pystac.Item]] = {}
    for item in sorted(items, key=lambda i: (acquired(i), i.id)):
        key = (str(item.properties.get("platform", "")), tile_code(item))
        by_scene.setdefault(key, []).append(item)
    kept: list[pystac.Item] = []
    dropped: list[str] = []
    for group in by_scene.values():
        for scene in _cluster_by_time(group, seconds=60):
            best = max(scene, key=_processing_rank)
            kept.append(best)
            dropped.extend(i.id for i in scene if i is not best)
    return sort_items(kept), sorted(dropped)


def _cluster_by_time(items: Sequence[pystac.Item], *, seconds: float) -> list[list[pystac.Item]]:
    """Split time-sorted items into runs whose neighbours are at most ``seconds`` apart."""
    clusters: list[list[pystac.Item]] = []
    for item in items:
        if clusters and (acquired(item) - acquired(clusters[-1][-1])).total_seconds() <= seconds:
            clusters[-1].append(item)
        else:
            clusters.append([item])
    return clusters


def _processing_rank(item: pystac.Item) -> tuple[tuple[int, ...], str, str]:
    """Order processings: baseline numerically, then ``updated``, then id."""
    baseline = tuple(int(p) for p in re.findall(r"\d+", processing_baseline(item)))
    return baseline, str(item.properties.get("updated", "")), item.id


def sort_items(items: Iterable[pystac.Item]) -> list[pystac.Item]:
    """Deterministic order used everywhere: acquisition time, then id."""
    return sorted(items, key=lambda i: (acquired(i), i.id))

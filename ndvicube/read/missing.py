"""Scenes whose assets cannot be used: stop naming them, or (``on_missing_asset: skip``) leave
them out of the cube, list them in ``results/{area}/skipped.csv`` and warn.

Two kinds are caught: items whose metadata is unusable (an asset missing from the item, or
reflectance without ``raster:bands`` scale/offset - never guessed), found before reading; and
assets that cannot be read (404, corrupt, or failing after every retry of
:mod:`ndvicube.read.retries`), found while the cube is computed.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pystac

from ndvicube.errors import ConfigError, ItemMetadataError, NoScenesError, UnreadableAssetError

log = logging.getLogger(__name__)

FAIL, SKIP = "fail", "skip"

#: Assets holding classes or percentages, not reflectance: they have no scale/offset to check.
CLASS_ASSETS = ("scl", "cloud")
POLICIES = (FAIL, SKIP)

HOW_TO_SKIP = (
    "To build the cube without such scenes instead, set `on_missing_asset: skip` in the config: "
    "they are then left out, listed in results/{area}/skipped.csv, and a warning is logged."
)


@dataclass(frozen=True)
class SkippedAsset:
    """One scene left out of a cube, and why (a row of ``skipped.csv``)."""

    item_id: str
    asset: str
    href: str
    """The asset's URL without its query string (no signed-URL tokens)."""
    reason: str


def _how_to_skip(area: str) -> str:
    """The hint naming the setting and where skipped scenes are listed."""
    return HOW_TO_SKIP.format(area=area or "AREA")


def check_policy(policy: str) -> None:
    """Only ``fail`` and ``skip`` exist."""
    if policy not in POLICIES:
        raise ConfigError(
            f"on_missing_asset is {policy!r}; use one of {', '.join(map(repr, POLICIES))}."
        )


def usable_items(
    items: Sequence[pystac.Item], assets: Sequence[str], policy: str, area: str
) -> tuple[list[pystac.Item], list[SkippedAsset]]:
    """Items whose ``assets`` all exist with usable scaling; the others skipped, or an error."""
    from ndvicube.search.items import band_scaling

    usable, skipped = [], []
    for item in items:
        try:
            for key in assets:
                band_scaling(item, key, require_scale=key not in CLASS_ASSETS)
        except ItemMetadataError as error:
            if policy != SKIP:
                raise ItemMetadataError(f"{error} {_how_to_skip(area)}") from None
            href = item.assets[key].href if key in item.assets else ""
            skipped.append(SkippedAsset(item.id, key, strip_query(href), str(error)))
            log.warning("skipping item %s: %s", item.id, error)
            continue
        usable.append(item)
    return usable, skipped


def skip_unreadable(
    items: Sequence[pystac.Item], uri: str, reason: str, policy: str, area: str
) -> tuple[list[pystac.Item], SkippedAsset]:
    """The items without the one whose asset at ``uri`` failed, or the error naming it."""
    item, key = asset_at(items, uri)
    skipped = SkippedAsset(item.id, key, strip_query(uri), reason)
    if policy != SKIP:
        raise UnreadableAssetError(
            f"Cannot read asset {key!r} of item {item.id!r} ({skipped.href}): {reason}. The cube "
            f"of area {area!r} is not written, so no scene silently goes missing from it; if "
            f"the failure is transient, run again. {_how_to_skip(area)}"
        )
    log.warning(
        "skipping item %s: its asset %r cannot be read (%s); the cube is built without it",
        item.id,
        key,
        reason,
    )
    return [i for i in items if i.id != item.id], skipped


def no_readable_scene(area: str, skipped: Sequence[SkippedAsset]) -> NoScenesError:
    """The error when every scene of an area was left out: how many, and the first reasons."""
    reasons = "; ".join(f"{s.item_id} {s.asset}: {s.reason}" for s in skipped[:3])
    more = f" (and {len(skipped) - 3} more)" if len(skipped) > 3 else ""
    return NoScenesError(
        f"No scene of area {area!r} could be used: all {len(skipped)} were left out under "
        f"on_missing_asset: skip, so there is no cube to write. First reasons: {reasons}{more}. "
        "If the archive is failing, run again later; if every asset is missing, check stac.url "
        "and stac.collection (and the area's box and dates)."
    )


def asset_at(items: Iterable[pystac.Item], uri: str) -> tuple[pystac.Item, str]:
    """The item and asset key whose href is ``uri`` (compared without query strings)."""
    wanted = strip_query(uri)
    for item in items:
        for key, asset in item.assets.items():
            if strip_query(asset.href) == wanted:
                return item, key
    raise LookupError(f"no item has an asset at {wanted}")


def write_skipped(skipped: Sequence[SkippedAsset], path: str | Path) -> None:
    """``skipped.csv``: one row per skipped scene (a header only when none was skipped)."""
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=[field.name for field in fields(SkippedAsset)])
        writer.writeheader()
        writer.writerows(asdict(s) for s in skipped)


def read_skipped(path: str | Path) -> list[SkippedAsset]:
    """The rows of a ``skipped.csv``."""
    with open(path, newline="") as f:
        return [SkippedAsset(**row) for row in csv.DictReader(f)]


def strip_query(href: str) -> str:
    """``https://host/a.tif?X-Amz-Signature=...`` -> ``https://host/a.tif``."""
    parts = urlsplit(href)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))

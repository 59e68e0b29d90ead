"""Reuse an existing cube: which solar days can be copied instead of read from the archive.

A cube records, in its attributes, the grid and mask that shaped its pixels
(``ndvicube:grid``) and the item ids merged into each solar day (``ndvicube:days``). When the
cube job runs again (new months searched, the cloud limit changed, a catalog refreshed), a day
whose item ids and grid are unchanged is copied from the existing store; only the other days'
scenes are read. Copied values are the stored float32 values, so old dates stay byte-identical.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from ndvicube.cube.load import CubeSpec, SceneGroup
from ndvicube.cube.store import DAYS_ATTR, GRID_ATTR, drop_encodings, open_cube, read_attrs

log = logging.getLogger(__name__)

#: Put before the item ids of a day that must be read again (:func:`marked_unreadable`).
UNREADABLE_MARK = "!unreadable"


def grid_signature(spec: CubeSpec) -> dict[str, Any]:
    """Everything besides the items that decides a cube's pixel values and layout."""
    return spec.to_params()


def items_by_day(groups: Sequence[SceneGroup]) -> dict[str, list[str]]:
    """``{"2023-01-05": [item ids]}`` (several groups of one day are joined)."""
    days: dict[str, list[str]] = {}
    for group in groups:
        days.setdefault(group.day.isoformat(), []).extend(group.item_ids)
    return {day: sorted(ids) for day, ids in sorted(days.items())}


def reusable(
    store: Path, wanted: Mapping[str, list[str]], signature: Mapping[str, Any]
) -> tuple[xr.Dataset | None, list[str]]:
    """The existing cube (lazy) and the days of ``wanted`` it already holds, identically made.

    Returns ``(None, [])`` when there is no complete store, or it was made with another grid or
    mask (then every day must be read again).
    """

    if not (store / ".zmetadata").is_file():
        return None, []
    attrs = read_attrs(store)
    if attrs.get(GRID_ATTR) != dict(signature):
        log.info("existing cube was made with another grid or mask: rebuilding every day")
        return None, []
    stored = attrs.get(DAYS_ATTR, {})
    same = [day for day, ids in wanted.items() if stored.get(day) == ids]
    return open_cube(store), same


def unchanged(existing: xr.Dataset, wanted: Mapping[str, list[str]], reused: Sequence[str]) -> bool:
    """Whether the stored cube holds exactly the wanted days, each from the same items (nothing
    to do): a day whose items changed (a reprocessed scene, one left out as unreadable) is not."""
    days = [str(t)[:10] for t in existing["time"].values]
    return days == list(wanted) and len(reused) == len(wanted)


def marked_unreadable(days: Mapping[str, list[str]], bad_items: set[str]) -> dict[str, list[str]]:
    """``days`` with every day holding one of ``bad_items`` marked so no later run reuses it.

    The store written while unreadable scenes were collected holds those days without the bad
    scene's pixels, but possibly with another scene's bands fused in their place: the days are
    read again without it, and a kill before that must not let them pass as finished.
    """
    return {
        day: [UNREADABLE_MARK, *ids] if bad_items.intersection(ids) else ids
        for day, ids in days.items()
    }


def old_days(cube: xr.Dataset, days: Sequence[str]) -> xr.Dataset:
    """The stored values of ``days``, lazily, without the store's encodings and CRS variable."""

    times = np.array([np.datetime64(dt.date.fromisoformat(d), "ns") for d in days])
    part = cube.sel(time=times).drop_vars("spatial_ref", errors="ignore")
    drop_encodings(part)
    return part

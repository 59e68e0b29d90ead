"""Reuse an existing cube: which solar days can be copied instead of read from the archive.

A cube records, in its attributes, the grid and mask that shaped its pixels
(``ndvicube:grid``) and the item ids merged into each solar day (``ndvicube:days``). When the
cube job runs again (new months searched, the cloud limit changed, a catalog refreshed), a day
whose item ids and grid are unchanged is copied from the existing store; only the other days'
scenes are read. Copied values are the stored float32 values, so old dates stay byte-identical.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ndvicube.cube.spec import CubeSpec
from ndvicube.cube.store import DAYS_ATTR, GRID_ATTR, cube_attrs, open_cube, read_attrs

if TYPE_CHECKING:  # a first build opens no existing store: xarray is not imported for it
    import xarray as xr

    from ndvicube.cube.load import SceneGroup

log = logging.getLogger(__name__)

#: Put before the item ids of a day that must be read again (:func:`marked_unreadable`).
UNREADABLE_MARK = "!unreadable"


#: Keys of a grid signature written before the config sections (flat), and where each is now.
_FLAT_KEYS = {
    "scl_classes": ("cloud_mask", "scl_classes"),
    "scl_buffer_m": ("cloud_mask", "buffer_m"),
    "max_cloud_probability": ("cloud_mask", "max_probability"),
    "time_chunk": ("cube", "time_chunk"),
    "spatial_chunk": ("cube", "spatial_chunk"),
}


def grid_signature(spec: CubeSpec) -> dict[str, Any]:
    """Everything besides the items that decides a cube's pixel values and layout.

    A sparse cube's chunk list is not part of it: a chunk holds the same pixels whichever
    others are present, so a field set that gains fields copies the chunks it holds and reads
    only the new ones (the list is its own attribute, :data:`~ndvicube.cube.store.CHUNKS_ATTR`).
    """
    params = spec.to_params()
    params.pop("chunks", None)
    return params


def current_signature(grid: Mapping[str, Any]) -> dict[str, Any]:
    """A store's recorded grid in today's form: a store written with the flat keys of earlier
    versions is reused, not read again from the archive (at region scale, hours of reads)."""
    if "cube" in grid or not grid:
        return dict(grid)
    nested: dict[str, Any] = {k: v for k, v in grid.items() if k not in _FLAT_KEYS}
    for old, (section, key) in _FLAT_KEYS.items():
        if old in grid:
            nested.setdefault(section, {})[key] = grid[old]
    return nested


def items_by_day(groups: Sequence[SceneGroup]) -> dict[str, list[str]]:
    """``{"2023-01-05": [item ids]}`` (several groups of one day are joined)."""
    days: dict[str, list[str]] = {}
    for group in groups:
        days.setdefault(group.day.isoformat(), []).extend(group.item_ids)
    return {day: sorted(ids) for day, ids in sorted(days.items())}


def reusable(
    store: Path | str, wanted: Mapping[str, list[str]], signature: Mapping[str, Any]
) -> tuple[xr.Dataset | None, list[str]]:
    """The existing cube (lazy) and the days of ``wanted`` it already holds, identically made.

    Returns ``(None, [])`` when there is no complete store, or it was made with another grid or
    mask (then every day must be read again). ``store`` may be a finished version in an object
    store (``s3://...``, :mod:`.objectstore`): its metadata is read once.
    """
    from ndvicube.cube.objectstore import is_url

    if is_url(store):
        existing = open_cube(store)
        attrs = cube_attrs(existing)
    elif not (Path(store) / ".zmetadata").is_file():
        return None, []
    else:
        existing, attrs = None, read_attrs(store)
    if current_signature(attrs.get(GRID_ATTR, {})) != dict(signature):
        log.info("existing cube was made with another grid or mask: rebuilding every day")
        return None, []
    stored = attrs.get(DAYS_ATTR, {})
    same = [day for day, ids in wanted.items() if stored.get(day) == ids]
    return existing if existing is not None else open_cube(store), same


def unchanged(existing: xr.Dataset, wanted: Mapping[str, list[str]], reused: Sequence[str]) -> bool:
    """Whether the stored cube holds exactly the wanted days, each from the same items (nothing
    to do): a day whose items changed (a reprocessed scene, one left out as unreadable) is not,
    nor a store whose grid is recorded in an earlier form (it is written again, every day
    copied, so what reads its attributes finds today's)."""
    days = [str(t)[:10] for t in existing["time"].values]
    recorded = json.loads(existing.attrs.get(GRID_ATTR, "{}"))
    return (
        days == list(wanted)
        and len(reused) == len(wanted)
        and recorded == current_signature(recorded)
    )


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


def stored_index(existing: xr.Dataset | None, days: Sequence[str]) -> dict[str, int]:
    """Where each of ``days`` lies along the existing store's time axis."""
    if existing is None:
        return {}
    position = {str(t)[:10]: n for n, t in enumerate(existing["time"].values)}
    return {day: position[day] for day in days}

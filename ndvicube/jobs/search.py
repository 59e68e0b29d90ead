"""Rule ``search``: the area's items over the whole period, as ``items.json``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ndvicube.search.stac import SearchRequest


def search_area(request: SearchRequest, *, out: str | Path) -> int:
    """Search the source for one area over the whole period; store the items as JSON (sorted,
    de-duplicated: the cube's input); return how many."""
    from ndvicube.search.stac import search, write_items

    items = search(request)
    write_items(items, out)
    return len(items)

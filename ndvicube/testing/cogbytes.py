"""The fewest bytes any reader must fetch to read a box from a COG - the benchmark's and the
tests' yardstick for what a reader fetched (counted by the loopback server's log)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


def minimum_bytes(path: str | Path, bbox: Sequence[float]) -> int:
    """The COG's header (every byte before the first tile of any image) plus its
    full-resolution tiles that intersect ``bbox`` (lon/lat degrees)."""
    import rasterio
    import tifffile
    from rasterio.warp import transform_bounds

    with rasterio.open(path) as src:
        left, bottom, right, top = transform_bounds("EPSG:4326", src.crs, *bbox)
        window = src.window(left, bottom, right, top).round_offsets().round_lengths()
        rows = range(max(window.row_off, 0), min(window.row_off + window.height, src.height))
        cols = range(max(window.col_off, 0), min(window.col_off + window.width, src.width))
    with tifffile.TiffFile(path) as tif:
        page = tif.pages.first
        header = min(min(p.dataoffsets) for p in tif.pages)
        across = -(-page.imagewidth // page.tilewidth)
        tiles = {(r // page.tilelength) * across + c // page.tilewidth for r in rows for c in cols}
        return header + sum(page.databytecounts[t] for t in tiles)

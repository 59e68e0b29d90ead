"""How one remote COG lands on a block's grid: pasted, or resampled by nearest neighbour in
numpy, from the tiles it needs (:mod:`ndvicube.read.tiles`) - exactly as odc-stac's reader does
with what GDAL read.

* **paste**: the COG's grid is the block's, shifted by whole pixels (odc-geo's
  ``compute_reproject_roi`` with odc-loader's tolerance for nearest resampling): the window is
  copied.
* **take**: same CRS, no rotation, another pixel size (SCL at 20 m into a 10 m cube): each
  block row and column takes the source row and column its pixel centre falls in, which is what
  GDAL's nearest-neighbour warper computes for a linear transform. A centre within 1e-6 px of a
  source pixel edge, where rounding could differ, goes to GDAL instead.
* anything else (another UTM zone, a coarser cube reading overviews, an unusual TIFF) is read by
  GDAL (:class:`UseGdal`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from odc.geo.geobox import GeoBox

from ndvicube.read.remote import NEAREST_TTOL, CogLayout, UseGdal, tile_error

#: Distance (in source pixels) from a pixel edge under which "take" defers to GDAL.
EDGE_EPS = 1e-6


@dataclass(frozen=True)
class ReadBoxes:
    """Where the build's write blocks read, in rows and columns of the load grid: a block reads
    a COG tile when its read box (one of ``rows`` by one of ``cols``) meets the tile. ``origin``
    is the load-grid row and column of the reading block's own box."""

    rows: tuple[tuple[int, int], ...]
    cols: tuple[tuple[int, int], ...]
    origin: tuple[int, int]


@dataclass(frozen=True)
class WindowPlan:
    """What to fetch of one COG for one block, and how to place it."""

    kind: str
    """``empty`` (nothing of the block), ``nodata``, ``paste`` or ``take``."""
    layout: CogLayout
    roi_dst: tuple[slice, slice]
    rows: slice
    cols: slice
    take: tuple[np.ndarray, np.ndarray] | None
    src_nodata: float | None
    dst_nodata: float | None
    dtype: np.dtype

    @property
    def needs_pixels(self) -> bool:
        return self.kind in ("paste", "take")

    async def fetch(self, url: str, boxes: ReadBoxes | None = None) -> np.ndarray:
        """The window's pixels, from decoded tiles (each dropped from the cache once every
        block of ``boxes`` that reads it has: :meth:`readers`)."""
        from ndvicube.read.remote import runtime
        from ndvicube.read.tiles import read_window

        readers = self.readers(boxes)
        async with runtime().limit:
            try:
                return await read_window(url, self.layout.tif, self.rows, self.cols, readers)
            except Exception as error:
                raise tile_error(error, url) from error

    def readers(self, boxes: ReadBoxes | None) -> Callable[[int, int], int] | None:
        """How many of the blocks of ``boxes`` read tile (x, y) of this COG; None (unknown:
        the cache's LRU decides) but for a paste, whose source pixels are the load grid's
        shifted by whole pixels."""
        if boxes is None or self.kind != "paste":
            return None
        tif, (height, width) = self.layout.tif, self.layout.geobox.shape.yx
        th, tw = tif.tile_height, tif.tile_width
        # the source row (column) of the load grid's row (column) 0
        dr = self.rows.start - self.roi_dst[0].start - boxes.origin[0]
        dc = self.cols.start - self.roi_dst[1].start - boxes.origin[1]

        def count(x: int, y: int) -> int:
            rows = _meeting(boxes.rows, y * th - dr, min((y + 1) * th, height) - dr)
            return rows * _meeting(boxes.cols, x * tw - dc, min((x + 1) * tw, width) - dc)

        return count


def _meeting(spans: tuple[tuple[int, int], ...], start: int, stop: int) -> int:
    """How many of ``spans`` meet ``[start, stop)``."""
    return sum(1 for a, b in spans if a < stop and start < b)


def plan_window(layout: CogLayout, box: GeoBox, cfg: Any) -> WindowPlan:
    """How the COG of ``layout`` fills ``box`` (odc-loader's ``_do_read`` decisions)."""
    from odc.geo.overlap import compute_reproject_roi
    from odc.geo.roi import roi_is_empty

    from ndvicube.read.nodata import resolve_dst_dtype, resolve_dst_nodata, resolve_src_nodata

    rr = compute_reproject_roi(layout.geobox, box, ttol=NEAREST_TTOL if cfg.nearest else 0.05)
    if rr.read_shrink > 1:
        raise UseGdal("a coarser grid: GDAL reads overviews")
    dtype = resolve_dst_dtype(layout.dtype.name, cfg)
    src_nodata = resolve_src_nodata(layout.nodata, cfg)
    dst_nodata = resolve_dst_nodata(dtype, cfg, src_nodata)
    none = slice(0, 0)
    base = dict(layout=layout, src_nodata=src_nodata, dst_nodata=dst_nodata, dtype=dtype)
    if roi_is_empty(rr.roi_dst):
        return WindowPlan("empty", roi_dst=rr.roi_dst, rows=none, cols=none, take=None, **base)
    if roi_is_empty(rr.roi_src):
        return WindowPlan("nodata", roi_dst=rr.roi_dst, rows=none, cols=none, take=None, **base)
    if rr.paste_ok:
        rows, cols = rr.roi_src
        return WindowPlan("paste", roi_dst=rr.roi_dst, rows=rows, cols=cols, take=None, **base)
    take = _nearest_indices(layout.geobox, box)
    if take is None:
        raise UseGdal("a reprojection: GDAL's warper")
    rows_i, cols_i = take
    inside_r = rows_i[(rows_i >= 0) & (rows_i < layout.geobox.shape.y)]
    inside_c = cols_i[(cols_i >= 0) & (cols_i < layout.geobox.shape.x)]
    if not inside_r.size or not inside_c.size:
        full = (slice(0, box.shape.y), slice(0, box.shape.x))
        return WindowPlan("nodata", roi_dst=full, rows=none, cols=none, take=None, **base)
    rows = slice(int(inside_r.min()), int(inside_r.max()) + 1)
    cols = slice(int(inside_c.min()), int(inside_c.max()) + 1)
    full = (slice(0, box.shape.y), slice(0, box.shape.x))
    return WindowPlan("take", roi_dst=full, rows=rows, cols=cols, take=take, **base)


def _nearest_indices(src: GeoBox, dst: GeoBox) -> tuple[np.ndarray, np.ndarray] | None:
    """Source row and column of each destination row and column, or None when the grids are
    not both axis-aligned in one CRS, or a pixel centre lies on a source pixel edge."""
    a, b = dst.affine, src.affine
    if src.crs != dst.crs or a.b or a.d or b.b or b.d:
        return None
    u = (a.c + (np.arange(dst.shape.x) + 0.5) * a.a - b.c) / b.a
    v = (a.f + (np.arange(dst.shape.y) + 0.5) * a.e - b.f) / b.e
    for pos in (u, v):
        if np.any(np.abs(pos - np.round(pos)) < EDGE_EPS):
            return None
    return np.floor(v).astype(np.int64), np.floor(u).astype(np.int64)


def _taken(plan: WindowPlan, pixels: np.ndarray, shape: tuple[int, int], fill) -> np.ndarray:
    """The block's pixels of a "take": each row and column from its source row and column,
    ``fill`` where the source has none. The rows (and columns) with a source are one run (the
    indices grow with the position), so they are written as one slice, or are the whole block."""
    rows_i, cols_i = plan.take
    ok_r = (rows_i >= plan.rows.start) & (rows_i < plan.rows.stop)
    ok_c = (cols_i >= plan.cols.start) & (cols_i < plan.cols.stop)
    picked = pixels.take(rows_i[ok_r] - plan.rows.start, axis=0)
    picked = picked.take(cols_i[ok_c] - plan.cols.start, axis=1)
    rows, cols = _one_run(ok_r), _one_run(ok_c)
    if rows == slice(0, shape[0]) and cols == slice(0, shape[1]):
        return picked.astype(plan.dtype, copy=False)
    out = np.full(shape, fill, dtype=plan.dtype)
    if rows is None or cols is None:
        out[np.ix_(ok_r, ok_c)] = picked
    else:
        out[rows, cols] = picked
    return out


def _one_run(mask: np.ndarray) -> slice | None:
    """The slice of ``mask``'s True values when they are one run, else None."""
    where = np.flatnonzero(mask)
    if where.size == 0 or where[-1] - where[0] + 1 != where.size:
        return None
    return slice(int(where[0]), int(where[-1]) + 1)


def settle_window(plan: WindowPlan, pixels: np.ndarray | None, box: GeoBox) -> tuple:
    """``(roi, pixels)`` of the block, as odc-loader's reader returns them."""
    from ndvicube.read.nodata import nodata_mask, same_nodata

    roi = plan.roi_dst
    shape = (roi[0].stop - roi[0].start, roi[1].stop - roi[1].start)
    if plan.kind == "empty":
        return roi, np.empty(shape, dtype=plan.dtype)
    fill = plan.dst_nodata if plan.dst_nodata is not None else 0
    if plan.kind == "nodata":
        return roi, np.full(shape, fill, dtype=plan.dtype)
    if plan.kind == "paste":
        out = pixels.astype(plan.dtype, copy=False)
    else:
        out = _taken(plan, pixels, shape, fill)
    if plan.dst_nodata is not None and not same_nodata(plan.src_nodata, plan.dst_nodata):
        out = out.copy() if out is pixels else out
        np.copyto(out, plan.dst_nodata, where=nodata_mask(out, plan.src_nodata))
    return roi, out

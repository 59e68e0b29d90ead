"""One write block of the cube engine (:mod:`ndvicube.cube.engine`): where it lies, the
sources it reads (all at once), its groups fused, masked and turned into indices in numpy, and
its chunks written with zarr.

A block is read on a box of the load grid: the block plus the SCL buffer's margin, so clouds
across its border mask it as in a whole-area build. Each source (an asset of an item) is read
only where the item's footprint touches the load grid's chunks, as odc-stac reads it, and fused
into its group's mosaic where that is still nodata (odc-stac's fuser).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from odc.geo.geobox import GeoBox

    from ndvicube.cube.plan import DayPlan, EnginePlan, GroupPlan, Source
    from ndvicube.read.remote_window import ReadBoxes


@dataclass(frozen=True)
class Block:
    """Where one write block lies: in the cube (rows, cols) and in the read grid (with halo)."""

    t: int
    rows: slice
    cols: slice
    read_rows: slice
    read_cols: slice
    inner: tuple[slice, slice]
    """The block inside its read box."""


def locate(plan: EnginePlan, t: int, by: int, bx: int) -> Block:
    """Block (t, by, bx): its cube rows and columns, and its read box in the load grid (the SCL
    buffer's margin added, within the load grid)."""
    (h, w), b, r = plan.shape, plan.block_px, plan.spec.buffer_px
    oy, ox = plan.crop[0].start, plan.crop[1].start
    rows, cols = slice(by * b, min(h, (by + 1) * b)), slice(bx * b, min(w, (bx + 1) * b))
    lh, lw = plan.load_geobox.shape.yx
    read_rows = slice(max(0, oy + rows.start - r), min(lh, oy + rows.stop + r))
    read_cols = slice(max(0, ox + cols.start - r), min(lw, ox + cols.stop + r))
    y0, x0 = oy + rows.start - read_rows.start, ox + cols.start - read_cols.start
    inner = (slice(y0, y0 + rows.stop - rows.start), slice(x0, x0 + cols.stop - cols.start))
    return Block(t, rows, cols, read_rows, read_cols, inner)


@dataclass
class BlockResult:
    """What a block task reports: the assets it could not read (with ``skip``) and its scenes."""

    t: int
    unreadable: list
    scenes: int


def write_block(plan: EnginePlan, t: int, by: int, bx: int) -> BlockResult:
    """Compute and write block (t, by, bx) of every index variable; see the module docstring."""
    from ndvicube.read import retries

    retries.adopt_deadlines(plan.deadline_s, plan.job_ends_epoch)
    block = locate(plan, t, by, bx)
    tc = plan.spec.cube.time_chunk
    days = plan.days[t * tc : (t + 1) * tc]
    if _copied_in_the_bucket(plan, t, (by, bx), block, days):
        return BlockResult(t, [], 0)
    shape = (block.rows.stop - block.rows.start, block.cols.stop - block.cols.start)
    out = {v: np.full((len(days), *shape), np.nan, dtype="float32") for v in plan.variables}
    reader = BlockReader(plan, block)
    copied = [plan.copies(day, (by, bx)) for day in days]
    reader.read_all(
        [g for day, copy in zip(days, copied, strict=True) if not copy for g in day.groups]
    )
    for n, day in enumerate(days):
        if copied[n]:
            _copy_old(plan, day.old_index, block, {v: a[n] for v, a in out.items()})
            continue
        merged = _day_indices(plan, day, reader)
        for v in plan.variables:
            if merged is not None:
                out[v][n] = merged[v][block.inner]
    _write(plan, block, t * tc, out)
    return BlockResult(t, reader.unreadable, sum(d.scenes for d in days))


def _day_indices(plan: EnginePlan, day: DayPlan, reader: BlockReader) -> dict | None:
    """The indices of one solar day on the block's read box: groups merged, first clear wins."""
    merged: dict[str, np.ndarray] | None = None
    for group in day.groups:
        indices = _group_indices(plan, group, reader.raw(group))
        if merged is None:
            merged = indices
        else:
            for v, value in indices.items():
                np.copyto(merged[v], value, where=np.isnan(merged[v]))
    return merged


def _group_indices(plan: EnginePlan, group: GroupPlan, raw: dict) -> dict[str, np.ndarray]:
    """Scale one group with its own metadata, mask, and compute every index (float32)."""
    from ndvicube.cube.indices import column, evaluate
    from ndvicube.cube.mask import clear_mask
    from ndvicube.cube.radiometry import to_reflectance

    spec, scaling = plan.spec, group.group.scaling
    reflectance = {
        b: to_reflectance(raw[b], scaling(b).scale, scaling(b).offset) for b in spec.bands
    }
    valid = clear_mask(
        raw["scl"],
        [(raw[b], scaling(b).nodata) for b in spec.bands],
        scl_classes=spec.cloud_mask.scl_classes,
        buffer_px=spec.buffer_px,
        cloud=raw.get("cloud"),
        max_cloud_probability=spec.cloud_mask.max_probability,
    )
    out = {}
    invalid = ~valid
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for name in spec.indices:
            value = np.asarray(evaluate(name, reflectance), dtype="float32")
            if any(value is r for r in reflectance.values()):  # an index that is one band
                value = value.copy()
            value[~np.isfinite(value) | invalid] = np.nan  # in place: no copy of the block
            out[column(name)] = value
    return out


def _copied_in_the_bucket(
    plan: EnginePlan, t: int, at: tuple[int, int], block: Block, days: Sequence[DayPlan]
) -> bool:
    """Copy the block's chunk objects from the previous version inside the bucket, when the
    cube is written to an object store and its time chunk ``t`` is whole and holds, at the
    same places, only days copied from that version (a rerun that added days at the end):
    no chunk is read or written through the task (:func:`.objectstore.copy_chunks`). A tile's
    store copies from the same tile of the previous version, at the area's keys of both
    (:func:`.objecttiles.chunk_objects`)."""
    from ndvicube.cube.objectstore import copy_chunks, is_url
    from ndvicube.cube.objecttiles import chunk_objects

    tc, chunk = plan.spec.cube.time_chunk, plan.spec.cube.spatial_chunk
    if not (is_url(plan.store) and is_url(plan.old_store) and len(days) == tc):
        return False
    if any(d.old_index != t * tc + n or not plan.copies(d, at) for n, d in enumerate(days)):
        return False
    rows = range(block.rows.start // chunk, -(-block.rows.stop // chunk))
    cols = range(block.cols.start // chunk, -(-block.cols.stop // chunk))
    keys = [f"{v}/{t}.{r}.{c}" for v in plan.variables for r in rows for c in cols]
    old, old_keys = chunk_objects(str(plan.old_store), keys)  # a tile's: in its version
    new, new_keys = chunk_objects(plan.store, keys)
    if old_keys != new_keys:  # (a tile at other offsets: its days are copied through zarr)
        return False
    copy_chunks(old, new, new_keys)
    return True


def _copy_old(plan: EnginePlan, index: int, block: Block, out: dict[str, np.ndarray]) -> None:
    """A day the existing store holds, identically made: its stored float32 values."""
    from ndvicube.cube.zarrstore import open_group

    group = open_group(str(plan.old_store), mode="r")
    for v, target in out.items():
        target[...] = group[v][index, block.rows, block.cols]


def _write(plan: EnginePlan, block: Block, t0: int, out: dict[str, np.ndarray]) -> None:
    """Write the block's chunks of every variable (whole chunks: the block is chunk-aligned),
    into a local store or straight into an object store's version (:mod:`.objectstore`)."""
    from ndvicube.cube.objectstore import refreshing
    from ndvicube.cube.zarrstore import open_group

    def write() -> None:  # (again with renewed credentials, if they expired meanwhile)
        group = open_group(plan.store, mode="r+")
        for v, values in out.items():
            group[v][t0 : t0 + values.shape[0], block.rows, block.cols] = values

    refreshing(write)


# --- reading one block's sources ---------------------------------------------------------------


class BlockReader:
    """The raw digital numbers of a block's groups, each source read once for the block."""

    def __init__(self, plan: EnginePlan, block: Block) -> None:
        self.plan, self.block = plan, block
        self.box = plan.load_geobox[block.read_rows, block.read_cols]
        chunk = plan.spec.cube.spatial_chunk
        self.chunks = [
            (cy, cx)
            for cy in range(block.read_rows.start // chunk, (block.read_rows.stop - 1) // chunk + 1)
            for cx in range(block.read_cols.start // chunk, (block.read_cols.stop - 1) // chunk + 1)
        ]
        self.unreadable: list = []
        self.pixels: dict[tuple[str, str], tuple | None] = {}
        self.boxes = read_boxes(plan, block)

    def read_all(self, groups: Sequence[GroupPlan]) -> None:
        """Read every source the block needs at once (one round trip, all in flight)."""
        self._read([s for g in groups for item in g.items for s in item if self._allowed(s)])

    def raw(self, group: GroupPlan) -> dict[str, np.ndarray]:
        """The group's fused digital numbers per asset on the read box (odc-stac's fill
        value where no scene has data)."""
        wanted = [s for item in group.items for s in item if self._allowed(s)]
        self._read([s for s in wanted if (s.item_id, s.asset) not in self.pixels])
        raw = {}
        for asset in self.plan.spec.assets:
            cfg = self.plan.cfgs[asset]
            dtype = np.dtype(cfg.dtype)
            fill = _fill(cfg)
            dst = np.full(self.box.shape.yx, fill, dtype=dtype)
            fresh = True  # nothing pasted into dst yet: all of it is still the fill value
            for source in (s for s in wanted if s.asset == asset):
                read = self.pixels.pop((source.item_id, source.asset), None)
                if read is not None and self._fuse(dst, read, source, fill, fresh):
                    fresh = False
            raw[asset] = dst
        return raw

    def _allowed(self, source: Source) -> bool:
        return any(c in source.chunks for c in self.chunks)

    def _fuse(self, dst: np.ndarray, read: tuple, source: Source, fill, fresh: bool) -> bool:
        """odc-stac's fuser (copy where ``dst`` is still nodata), within the chunks the item's
        footprint touches; whether anything was pasted. Into a ``fresh`` ``dst`` (all of it
        ``fill``, which is its own nodata: a mask of all True) the pixels are copied without
        testing each (as the floor pastes a day's first scene): the same values, one pass."""
        from ndvicube.read.nodata import nodata_mask

        roi, pix = read
        if pix.size == 0:
            return False
        regions = [(roi, pix)]
        if not all(c in source.chunks for c in self.chunks):
            regions = list(self._within_footprint(roi, pix, source))
        for (rows, cols), values in regions:
            target = dst[rows, cols]
            if fresh:
                np.copyto(target, values)
            else:
                np.copyto(target, values, where=nodata_mask(target, fill))
        return bool(regions)

    def _within_footprint(self, roi, pix, source: Source):
        chunk, b = self.plan.spec.cube.spatial_chunk, self.block
        for cy, cx in self.chunks:
            if (cy, cx) not in source.chunks:
                continue
            rows = slice(max(roi[0].start, cy * chunk - b.read_rows.start),
                         min(roi[0].stop, (cy + 1) * chunk - b.read_rows.start))  # fmt: skip
            cols = slice(max(roi[1].start, cx * chunk - b.read_cols.start),
                         min(roi[1].stop, (cx + 1) * chunk - b.read_cols.start))  # fmt: skip
            if rows.start < rows.stop and cols.start < cols.stop:
                yield (
                    (rows, cols),
                    pix[
                        rows.start - roi[0].start : rows.stop - roi[0].start,
                        cols.start - roi[1].start : cols.stop - roi[1].start,
                    ],
                )

    def _read(self, sources: list[Source]) -> None:
        """Read ``sources`` into :attr:`pixels`: the remote ones all at once, then GDAL's."""
        from ndvicube.read import remote

        remote_ones = [
            s for s in sources if self.plan.reader == "range" and remote.is_remote(s.href)
        ]
        results = (
            read_remote(remote_ones, self.box, self.plan.cfgs, self.plan.deadline_s, self.boxes)
            if remote_ones
            else []
        )
        first = dict(zip([(s.item_id, s.asset) for s in remote_ones], results, strict=True))
        for source in sources:
            key = (source.item_id, source.asset)
            self.pixels[key] = self._settled(source, first.get(key))

    def _settled(self, source: Source, result: Any) -> tuple | None:
        """A source's pixels: the first attempt's, or retried, or read by GDAL; None when it
        cannot be read and ``skip`` collects it."""
        from ndvicube.read.remote import UseGdal
        from ndvicube.read.retries import UnreadableAsset, with_retries

        def attempt(number: int) -> tuple | None:
            if number == 1:  # the first attempt was the block's, all sources at once
                raise result
            return self._retry_remote(source)

        try:
            if isinstance(result, tuple):
                return result
            if result is None or isinstance(result, UseGdal):
                return self._gdal(source)
            return with_retries(attempt, source.href) or self._gdal(source)
        except UnreadableAsset as error:
            if not self.plan.collect:
                raise
            if all(e.uri != error.uri for e in self.unreadable):
                self.unreadable.append(error)
            return None

    def _retry_remote(self, source: Source) -> tuple | None:
        """One more attempt at a remote source, its header and tiles forgotten first."""
        from ndvicube.read import remote
        from ndvicube.read.tiles import TILES

        remote.forget(source.href)
        TILES.forget(source.href)
        (result,) = read_remote([source], self.box, self.plan.cfgs, self.plan.deadline_s)
        if isinstance(result, remote.UseGdal):
            return None
        if isinstance(result, BaseException):
            raise result
        return result

    def _gdal(self, source: Source) -> tuple:
        """The source read by GDAL (odc-loader's reader, retried): into the read box when its
        CRS is the cube's, else chunk by chunk of the read grid, as odc-stac warps it."""
        import warnings

        from rasterio.errors import NotGeoreferencedWarning

        from ndvicube.read.gdal_reader import RetryingRioDriver, RetryingRioReader

        # odc-loader warps through an in-memory raster without geotransform when filling
        # nodata; rasterio's warning about it says nothing about the user's data.
        warnings.filterwarnings("ignore", category=NotGeoreferencedWarning)
        from ndvicube.cube.sources import as_odc
        from ndvicube.read.gdal import cloud_read_env

        cfg = as_odc(self.plan.cfgs[source.asset])  # odc-loader's types, for its reader
        reader = RetryingRioReader(as_odc(source.raster), None)
        driver = RetryingRioDriver()  # the GDAL settings captured at planning, restored here
        env = self.plan.rio_env if self.plan.rio_env is not None else cloud_read_env()
        with driver.restore_env(env, driver.new_load(self.box)):
            if _same_crs(source, self.box):
                return reader.read_retried(cfg, self.box)
            out = np.full(self.box.shape.yx, _fill(cfg), dtype=np.dtype(cfg.dtype))
            for rows, cols, chunk_box, inner in self._chunk_boxes():
                roi, pix = reader.read_retried(cfg, chunk_box)
                part = np.full(chunk_box.shape.yx, _fill(cfg), dtype=out.dtype)
                part[roi] = pix
                out[rows, cols] = part[inner]
            return (slice(0, out.shape[0]), slice(0, out.shape[1])), out

    def _chunk_boxes(self):
        """Per chunk of the read grid that the read box touches: the box's rows and columns in
        it, the chunk's grid, and the part of the chunk inside the box."""
        yield from chunk_boxes(self.plan, self.block, self.chunks)


def chunk_boxes(plan: EnginePlan, block: Block, chunks):
    """See :meth:`BlockReader._chunk_boxes`."""
    chunk = plan.spec.cube.spatial_chunk
    lh, lw = plan.load_geobox.shape.yx
    for cy, cx in chunks:
        cr = slice(cy * chunk, min(lh, (cy + 1) * chunk))
        cc = slice(cx * chunk, min(lw, (cx + 1) * chunk))
        rows = slice(max(cr.start, block.read_rows.start), min(cr.stop, block.read_rows.stop))
        cols = slice(max(cc.start, block.read_cols.start), min(cc.stop, block.read_cols.stop))
        yield (
            slice(rows.start - block.read_rows.start, rows.stop - block.read_rows.start),
            slice(cols.start - block.read_cols.start, cols.stop - block.read_cols.start),
            plan.load_geobox[cr, cc],
            (slice(rows.start - cr.start, rows.stop - cr.start),
             slice(cols.start - cc.start, cols.stop - cc.start)),
        )  # fmt: skip


def read_boxes(plan: EnginePlan, block: Block) -> ReadBoxes:
    """The read boxes of every block of the build, and ``block``'s own corner: which blocks
    read a COG tile (:meth:`.remote_window.WindowPlan.readers`). A sparse cube counts every
    block of its grid, present or not: a count too high leaves a tile to LRU eviction."""
    from ndvicube.read.remote_window import ReadBoxes

    _, ny, nx = plan.grid()
    rows = tuple(
        (b.read_rows.start, b.read_rows.stop) for b in (locate(plan, 0, by, 0) for by in range(ny))
    )
    cols = tuple(
        (b.read_cols.start, b.read_cols.stop) for b in (locate(plan, 0, 0, bx) for bx in range(nx))
    )
    return ReadBoxes(rows, cols, (block.read_rows.start, block.read_cols.start))


def _same_crs(source: Source, box: GeoBox) -> bool:
    crs = getattr(source.raster, "geobox", None)
    return crs is None or crs.crs == box.crs


def _fill(cfg) -> Any:
    from ndvicube.read.nodata import dst_fill_value, resolve_src_nodata

    return dst_fill_value(np.dtype(cfg.dtype), cfg, resolve_src_nodata(cfg.fill_value, cfg))


def read_remote(
    sources: list[Source],
    box: GeoBox,
    cfgs: dict[str, Any],
    deadline_s: float,
    boxes: ReadBoxes | None = None,
) -> list[Any]:
    """First attempt at remote sources: headers, then every window, all requests in flight at
    once. Per source: ``(roi, pixels)``, or the exception (``UseGdal`` when GDAL must read it).
    ``boxes``: the build's read boxes, so a tile leaves the cache once its blocks have it.
    """
    from ndvicube.read import remote
    from ndvicube.read.remote_window import plan_window, settle_window

    rt = remote.runtime()
    layouts = rt.submit(_gather([remote.cog_layout(s.href) for s in sources], deadline_s)).result()
    plans: list[Any] = []
    for source, layout in zip(sources, layouts, strict=True):
        if isinstance(layout, BaseException):
            plans.append(layout)
            continue
        try:
            plans.append(plan_window(layout, box, cfgs[source.asset]))
        except remote.UseGdal as error:
            plans.append(error)
    fetches = [
        p.fetch(s.href, boxes)
        if not isinstance(p, BaseException) and p.needs_pixels
        else _nothing()
        for s, p in zip(sources, plans, strict=True)
    ]
    windows = rt.submit(_gather(fetches, deadline_s)).result()
    return [
        p if isinstance(p, BaseException) else w if isinstance(w, BaseException) else
        settle_window(p, w, box)
        for p, w in zip(plans, windows, strict=True)
    ]  # fmt: skip


async def _gather(coroutines: list, timeout_s: float) -> list:
    """Every result or exception; a coroutine still running after ``timeout_s`` (the COG's
    read deadline) is cancelled and gives ``TimeoutError``, the others go on."""
    import asyncio

    async def bounded(coroutine):
        try:
            return await asyncio.wait_for(coroutine, timeout_s)
        except TimeoutError:
            raise TimeoutError("no answer before the read's deadline") from None

    return await asyncio.gather(*(bounded(c) for c in coroutines), return_exceptions=True)


async def _nothing() -> None:
    return None

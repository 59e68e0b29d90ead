"""The cube job's reads started ahead: every header at once, then the next blocks' windows.

The cube is written in blocks of ``time_chunk`` solar days, one after another
(:func:`ndvicube.cube.store.write_cube`). Left to Dask, each block's reads would start only when the
block is computed, and wait for their own round trips (at 100 ms per request the demo year's
cube took 8.5 s, then 2.8 s with this). A :class:`Pipeline` is handed, before the Dask graph is
even built, the hrefs of each block in writing order; it requests every header at once
(:data:`ndvicube.read.remote.IN_FLIGHT` COGs in flight) and then the blocks' windows through
:data:`ndvicube.read.remote.WINDOWS`, where the chunk tasks find them, ahead of the block being
written as long as the windows requested and not yet written total at most
:data:`PIPELINE_BYTES`. A written block's headers and windows are dropped.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable, Iterator

from odc.geo.geobox import GeoBox

from ndvicube.read.remote import (
    NEAREST_TTOL,
    WINDOWS,
    cog_layout,
    cube_window,
    forget,
    is_remote,
    runtime,
)

#: Decoded window pixels requested ahead of the block being written (bench_memory: a 20 km box,
#: 17 MB per item, peaks at 1212 MB RSS with this, 693 MB without reading ahead).
PIPELINE_BYTES = 512 * 1024 * 1024


class Pipeline:
    """The cube job's reads, started ahead: every header at once, then block after block.

    ``blocks`` lists, per write block in the order they are written, the remote hrefs it
    reads. Windows of later blocks are requested while earlier ones are read and written, as
    long as the windows requested and not yet released total at most ``budget`` bytes of
    decoded pixels (reckoned from each header; the block being written is always requested).
    :meth:`written` releases a block's windows.
    """

    def __init__(
        self, blocks: list[list[str]], load_geobox: GeoBox, *, budget: int | None = None
    ) -> None:
        self.blocks, self.load_geobox = blocks, load_geobox
        self.budget = PIPELINE_BYTES if budget is None else budget
        self.done = 0
        self.requested: dict[str, int] = {}
        self.cond = threading.Condition()
        self.stopped = False
        urls = dict.fromkeys(u for b in blocks for u in b)
        self.headers = {url: runtime().submit(cog_layout(url)) for url in urls}
        self.thread = threading.Thread(target=self._feed, name="ndvicube-pipeline", daemon=True)
        self.thread.start()

    def _feed(self) -> None:
        """Request each block's windows, waiting while the budget is spent."""
        for number, block in enumerate(self.blocks):
            sizes = {url: self._window_bytes(url) for url in block}
            size = sum(sizes.values())
            with self.cond:
                self.cond.wait_for(lambda n=number, b=size: self._may_request(n, b))
                if self.stopped:
                    return
                self.requested |= sizes
            for url in block:
                WINDOWS.get(url, self.load_geobox, NEAREST_TTOL)

    def _may_request(self, block: int, size: int) -> bool:
        """Whether block ``block`` (of ``size`` bytes) may be requested now (lock held)."""
        return (
            self.stopped or block <= self.done or sum(self.requested.values()) + size <= self.budget
        )

    def _window_bytes(self, url: str) -> int:
        """Decoded bytes of the cube's window of ``url`` (0 if its header failed: the read will
        say why)."""
        try:
            layout = self.headers[url].result()
        except Exception:
            return 0
        window = cube_window(layout, self.load_geobox, NEAREST_TTOL)
        if window is None:
            return 0
        rows, cols = window
        return (rows.stop - rows.start) * (cols.stop - cols.start) * layout.dtype.itemsize

    def written(self, block: int) -> None:
        """Block ``block`` is written: drop its headers and windows, let the feeder go on."""
        later = {u for b in self.blocks[block + 1 :] for u in b}
        with self.cond:
            for url in self.blocks[block]:
                if url not in later:
                    forget(url)
                    self.requested.pop(url, None)
                    self.headers.pop(url, None)
            self.done = block + 1
            self.cond.notify_all()

    def stop(self) -> None:
        with self.cond:
            self.stopped = True
            self.cond.notify_all()
        self.thread.join(timeout=5)


@contextlib.contextmanager
def pipelined(blocks: list[list[str]], load_geobox: GeoBox) -> Iterator[Pipeline | None]:
    """A :class:`Pipeline` of the remote hrefs of ``blocks`` (None when there are none)."""
    blocks = [[u for u in b if is_remote(u)] for b in blocks]
    if not any(blocks):
        yield None
        return
    pipeline = Pipeline(blocks, load_geobox)
    try:
        yield pipeline
    finally:
        pipeline.stop()
        for block in blocks:
            for url in block:
                WINDOWS.forget(url)


def hrefs_by_block(
    groups: Iterable, assets: Iterable[str], items: dict, days: list[str], time_chunk: int
) -> list[list[str]]:
    """Per write block (``time_chunk`` days of ``days``), the hrefs of the groups' assets."""
    blocks: list[list[str]] = [[] for _ in range(-(-len(days) // time_chunk))]
    position = {day: n for n, day in enumerate(days)}
    for group in groups:
        block = blocks[position[group.day.isoformat()] // time_chunk]
        for item_id in group.item_ids:
            assets_of = items[item_id].assets
            block += [_href(assets_of[a]) for a in assets if a in assets_of]
    return blocks


def _href(asset) -> str:
    """The URI odc-stac reads for ``asset`` (its absolute href)."""
    return asset.get_absolute_href() or asset.href

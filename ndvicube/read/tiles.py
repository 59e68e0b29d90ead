"""Decoded COG tiles, fetched and decoded once per process and shared by the cube's block tasks.

The cube engine (:mod:`ndvicube.cube.engine`) asks for windows of COGs: the pixels one write
block needs. A window is assembled from the COG's own internal tiles, and a tile is the unit
that is fetched and decoded. Neighbouring blocks share the tiles on their common edge (COG
tiles of two MGRS tiles never align with the cube's chunks, nor with each other), so decoded
tiles are kept in a least-recently-used cache of at most :data:`CACHE_BYTES`: the block next door,
which the engine runs next, finds them decoded. What a block needs and the cache lacks is
fetched in one call (adjacent tiles coalesced into one request by the store) and decoded in
async-tiff's Rust threads, outside the GIL (:func:`fetch_first_band`).

A tile is dropped as soon as every block that reads it has read it (:meth:`TileCache.read_by`:
the window says how many blocks' read boxes meet each tile), so the cache holds the tiles
still wanted and least-recently-used eviction rarely has to guess: on COG tiles of 1024 px,
LRU alone dropped tiles a neighbouring block still needed, and 777 were decoded where 728 were
needed (issue 35).

:data:`TILES` counts the tiles fetched and decoded (``bench/bench_engine.py`` compares them with
the least a build needs: each tile once).
"""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

#: Decoded tile bytes kept per process (a setting, not a function of the area or the period:
#: at 20 km a time block's tiles of one block row fit; beyond it a tile may be decoded twice).
CACHE_BYTES = 256 * 1024 * 1024


@dataclass
class TileCounts:
    """Tiles this process fetched and decoded (every tile fetched is decoded once)."""

    fetched: int = 0
    decoded: int = 0


class TileCache:
    """Decoded tiles by (url, column, row), least recently used dropped past ``limit`` bytes.

    Entries are asyncio futures on the reading loop, so blocks asking for one tile at once wait
    for one fetch. Only the loop's thread touches the entries; the counts are read anywhere.
    """

    def __init__(self, limit: int = CACHE_BYTES) -> None:
        self.limit = limit
        self.entries: OrderedDict[tuple[str, int, int], asyncio.Future] = OrderedDict()
        self.held = 0
        self.stats = TileCounts()
        self.lock = threading.Lock()
        self.reads: dict[tuple[str, int, int], int] = {}
        """Blocks that have read each tile so far (of those :meth:`read_by` counts)."""

    def counts(self) -> dict[str, int]:
        """``{"fetched": n, "decoded": n}`` since this process started (or :meth:`reset`)."""
        return {"fetched": self.stats.fetched, "decoded": self.stats.decoded}

    def reset(self) -> None:
        """Forget every tile and zero the counts."""
        with self.lock:
            self.entries.clear()
            self.reads.clear()
            self.held = 0
            self.stats = TileCounts()

    def forget(self, *urls: str) -> None:
        """Drop the tiles of ``urls`` (before a retry: the failure may come from them)."""
        wanted = set(urls)
        with self.lock:
            for key in [k for k in self.entries if k[0] in wanted]:
                self._drop(key)
            for key in [k for k in self.reads if k[0] in wanted]:
                del self.reads[key]

    def read_by(self, url: str, xy: list[tuple[int, int]], readers: Callable[[int, int], int]):
        """One more block has read the tiles ``xy`` of ``url``: drop those that all their
        ``readers(x, y)`` blocks have now read (none will ask again). A count that is too high
        only leaves the tile to LRU eviction; one too low costs a decode, never a value."""
        with self.lock:
            for x, y in xy:
                key, wanted = (url, x, y), readers(x, y)
                done = self.reads.pop(key, 0) + 1
                if done < wanted:
                    self.reads[key] = done
                elif wanted >= 1 and key in self.entries and self.entries[key].done():
                    self._drop(key)

    def _drop(self, key: tuple[str, int, int]) -> None:
        future = self.entries.pop(key)
        if future.done() and not future.cancelled() and future.exception() is None:
            self.held -= future.result().nbytes

    async def tiles(self, url: str, tif, xy: list[tuple[int, int]]) -> list[np.ndarray]:
        """The decoded tiles ``xy`` of ``tif`` (first band, full resolution), fetching those
        the cache lacks in one call."""
        loop = asyncio.get_running_loop()
        created: dict[tuple[int, int], asyncio.Future] = {}
        futures = []
        with self.lock:
            for x, y in xy:
                key = (url, x, y)
                future = self.entries.get(key)
                if future is None or _failed(future):
                    future = self.entries[key] = created[(x, y)] = loop.create_future()
                else:
                    self.entries.move_to_end(key)
                futures.append(future)
        if created:
            await self._fetch(url, tif, created)
        return list(await asyncio.gather(*futures))

    async def _fetch(self, url: str, tif, created: dict[tuple[int, int], asyncio.Future]) -> None:
        """Fetch and decode the tiles of ``created``, settling those futures - which other blocks
        may be waiting on even if :meth:`forget` dropped them from the cache meanwhile."""
        try:
            fetched = await fetch_first_band(tif, list(created))
        except BaseException as error:
            # Another block waiting on these tiles must retry, not be cancelled with this one
            # (a read that passed its deadline): it gets a network error it may retry.
            shared = (
                TimeoutError("a read of this COG passed its deadline")
                if isinstance(error, asyncio.CancelledError)
                else error
            )
            with self.lock:
                for (x, y), future in created.items():
                    if self.entries.get((url, x, y)) is future:
                        del self.entries[(url, x, y)]
                    if not future.done():
                        future.set_exception(shared)
                        future.exception()  # retrieved: the waiting blocks raise it
            raise
        with self.lock:
            self.stats.fetched += len(created)
            self.stats.decoded += len(created)
            for x, y, data in fetched:
                future = created.get((x, y))
                if future is not None and not future.done():
                    future.set_result(data)
                    if self.entries.get((url, x, y)) is future:
                        self.held += data.nbytes
            for future in created.values():
                if not future.done():  # a tile the answer lacked: no block waits forever
                    future.set_exception(OSError("a COG tile was missing from the answer"))
                    future.exception()
            self._evict()

    def _evict(self) -> None:
        for key in list(self.entries):
            if self.held <= self.limit:
                break
            if self.entries[key].done():
                self._drop(key)


async def fetch_first_band(tif, xy: list[tuple[int, int]]) -> list[tuple[int, int, np.ndarray]]:
    """``(x, y, pixels)`` of the tiles ``xy`` of the full-resolution image of ``tif`` (an
    async-geotiff ``GeoTIFF``), first band, fetched and decoded by async-tiff itself.

    async-geotiff's ``fetch_tiles`` would wrap each decoded tile in a georeferenced array (its
    transform, its band order: 44 us of Python a tile, 0.28 CPU s of a build's 6,396 tiles of
    256 px, in the thread that runs every read) and fetch the tiles of an internal mask too,
    which the engine does not read (nodata marks the missing pixels, as for GDAL's reader).
    """
    from async_tiff.enums import PlanarConfiguration

    ifd = tif.ifd
    tiles = await ifd.fetch_tiles(xy)
    where = [(tile.x, tile.y) for tile in tiles]  # (a tile cannot be asked once decoded)
    arrays = await asyncio.gather(*(tile.decode() for tile in tiles))
    chunky = ifd.planar_configuration == PlanarConfiguration.Chunky  # (height, width, band)
    return [
        (x, y, np.asarray(a)[:, :, 0] if chunky else np.asarray(a)[0])
        for (x, y), a in zip(where, arrays, strict=True)
    ]


def _failed(future: asyncio.Future) -> bool:
    return future.done() and (future.cancelled() or future.exception() is not None)


TILES = TileCache()


async def read_window(
    url: str, tif, rows: slice, cols: slice, readers: Callable[[int, int], int] | None = None
) -> np.ndarray:
    """Full-resolution pixels ``[rows, cols]`` of the first band of ``tif``, from its tiles.

    Pixels outside the image are 0 (they are never pasted: the engine asks only for what the
    image covers, padded within it). ``readers(x, y)``, when given, is the number of blocks
    that read tile (x, y): once they all have, it leaves the cache (:meth:`TileCache.read_by`).
    """
    th, tw = tif.tile_height, tif.tile_width
    ty = range(rows.start // th, (rows.stop - 1) // th + 1)
    tx = range(cols.start // tw, (cols.stop - 1) // tw + 1)
    xy = [(x, y) for y in ty for x in tx]
    tiles = await TILES.tiles(url, tif, xy)
    out = np.zeros((rows.stop - rows.start, cols.stop - cols.start), dtype=tiles[0].dtype)
    for (x, y), tile in zip(xy, tiles, strict=True):
        r0, c0 = y * th, x * tw
        rs = slice(max(rows.start, r0), min(rows.stop, r0 + tile.shape[0]))
        cs = slice(max(cols.start, c0), min(cols.stop, c0 + tile.shape[1]))
        if rs.start < rs.stop and cs.start < cs.stop:
            target = (
                slice(rs.start - rows.start, rs.stop - rows.start),
                slice(cs.start - cols.start, cs.stop - cols.start),
            )
            out[target] = tile[rs.start - r0 : rs.stop - r0, cs.start - c0 : cs.stop - c0]
    if readers is not None:
        TILES.read_by(url, xy, readers)
    return out

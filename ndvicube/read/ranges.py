"""Read windows of Cloud-Optimized GeoTIFFs over HTTP in the fewest requests and bytes.

GDAL (3.10, in rasterio's wheels) opens every remote file with a HEAD request, then reads a
fixed-size header block (``GDAL_INGESTED_BYTES_AT_OPEN``) that on small COGs reaches into the
overviews' pixels; neither can be configured away (measured: 2.67 requests per COG, 1.26x the
bytes needed). This reader, plugged into odc-stac through the same ``driver=`` hook as
:mod:`ndvicube.read.retries`, makes for each COG:

1. one GET of the first :data:`HEADER_BYTES` (the response's ``Content-Range`` gives the file
   size, so no HEAD); the TIFF header and tile index are parsed from it with ``tifffile`` (a
   header larger than that is fetched on demand);
2. one GET per run of adjacent tiles (at most :data:`MERGE_GAP` bytes apart) that intersect
   the window - for a box inside one tile row of a COG that is one request - and nothing of
   the overviews.

Tiles are decoded by ``tifffile`` (deflate, LZW, zstd...; horizontal predictor), and pasted, or
warped with ``rasterio.warp.reproject`` from the window read, exactly as odc-stac's own reader
does with what GDAL read (same nodata handling, same resampling): the cube is byte-identical to
one read through GDAL (tested). Headers and tiles are kept per process (:class:`_TileCache`): a
tile that several cube chunks need crosses the network once.

What it does not do falls back to GDAL's reader: non-HTTP URIs (local files, ``s3://``), reads
from overviews (a cube coarser than the data), multi-band files, pixel-is-point rasters, or a
TIFF it cannot parse as a tiled GeoTIFF. Every HTTP failure is retried like GDAL's reads
(:func:`ndvicube.read.retries.with_retries`); a 404/403 or a file that is not a TIFF is not.
"""

from __future__ import annotations

import contextlib
import io
import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np
from odc.geo.geobox import GeoBox
from odc.geo.roi import roi_is_empty, roi_pad

from ndvicube.logs import redact_urls
from ndvicube.read.retries import RetryingRioDriver, RetryingRioReader, is_permanent, with_retries

log = logging.getLogger(__name__)

#: Bytes of the first request to a COG: its header and tile index. A Sentinel-2 COG's header
#: is 1-3 KB, the demo's 786 B; a larger one costs one more request, not a failure.
HEADER_BYTES = 4096
#: Tiles this close are fetched in one request: GDAL's COGs put 8 bytes (a size leader and a
#: trailer) between consecutive tiles, which are worth reading to save a round trip.
MERGE_GAP = 1024
#: Compressed tiles kept per process, in bytes (a Sentinel-2 10 m tile is 1-2 MB).
TILE_CACHE_BYTES = 128 * 1024 * 1024
#: The tiles a whole cube needs from one COG are fetched at its first read up to this size.
PREFETCH_BYTES = 32 * 1024 * 1024
#: Pixels read around a window that is warped (not pasted): resampling kernels and GDAL's
#: warper may look that far beyond the pixels the window maps to.
WARP_PAD = 3
#: A header read that would skip this far past what was fetched is no COG's (its directory is
#: not at the start): GDAL reads that file instead of this reader fetching all bytes between.
HEADER_SKIP_LIMIT = 64 * 1024
#: Headers kept per process (a few KB each).
HEADER_CACHE = 4096
#: Attempts per HTTP request (the first included), and the wait before the second (doubling).
REQUEST_ATTEMPTS = 5
FIRST_DELAY_S = 0.25
#: Concurrent HTTP connections per host (at least the cube job's ``io_threads``).
CONNECTIONS = 64


class NotCogError(Exception):
    """The file is not a tiled, georeferenced TIFF this reader handles: GDAL reads it."""


class RemoteFileError(OSError):
    """An HTTP answer that is not the bytes asked for (its text names the status)."""


@dataclass(frozen=True)
class CogLayout:
    """What the reader needs of a COG's full-resolution image, from its header."""

    size: int
    geobox: GeoBox
    dtype: np.dtype
    tile: tuple[int, int]
    offsets: tuple[int, ...]
    counts: tuple[int, ...]
    nodata: float | None
    page: Any
    """tifffile's page, for decoding tiles (its compression, predictor, byte order)."""

    @property
    def tiles_across(self) -> int:
        return -(-self.geobox.shape.x // self.tile[1])


# --- HTTP --------------------------------------------------------------------------------------

_POOL = None
_POOL_LOCK = threading.Lock()


def _pool():
    """One connection pool per process, shared by the reading threads (urllib3 is thread-safe)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            import urllib3

            _POOL = urllib3.PoolManager(
                num_pools=32,
                maxsize=CONNECTIONS,
                block=False,
                retries=False,
                timeout=urllib3.Timeout(connect=10, read=60),
            )
        return _POOL


def fetch(url: str, start: int, stop: int) -> tuple[bytes, int | None]:
    """Bytes ``[start, stop)`` of ``url`` in one GET, and the file's size if the answer says it.

    A short body, a dropped connection or a 429/5xx answer is retried (:data:`REQUEST_ATTEMPTS`
    in all, waits doubling from :data:`FIRST_DELAY_S`), as GDAL retries its requests; then it
    raises, and the whole read is retried (:func:`ndvicube.read.retries.with_retries`). A 404 or 403
    raises at once, with "HTTP response code: N" in its text, which marks it permanent.
    """
    import urllib3

    delay = FIRST_DELAY_S
    for attempt in range(1, REQUEST_ATTEMPTS + 1):
        try:
            return _fetch_once(url, start, stop)
        except (RemoteFileError, urllib3.exceptions.HTTPError, OSError) as error:
            if is_permanent(error) or attempt == REQUEST_ATTEMPTS:
                raise
            log.warning(
                "request for %s failed (%s); retry %d/%d in %.2f s",
                redact_urls(url),
                redact_urls(str(error)),
                attempt,
                REQUEST_ATTEMPTS - 1,
                delay,
            )
            time.sleep(delay)
            delay *= 2
    raise AssertionError("unreachable")


def _fetch_once(url: str, start: int, stop: int) -> tuple[bytes, int | None]:
    """One GET of ``[start, stop)``; any answer but the bytes asked for raises."""
    response = _pool().request(
        "GET", url, headers={"Range": f"bytes={start}-{stop - 1}"}, preload_content=True
    )
    if response.status == 200:  # a server without Range support: the whole file
        data = response.data
        return data[start:stop], len(data)
    if response.status != 206:
        raise RemoteFileError(f"HTTP response code: {response.status} for a range of the file")
    data = response.data
    size = _total_size(response.headers.get("Content-Range", ""))
    expected = stop - start if size is None else min(stop, size) - start
    if len(data) != expected:
        raise RemoteFileError(f"short body: {len(data)} of {expected} bytes")
    return data, size


def _total_size(content_range: str) -> int | None:
    """The total of ``bytes 0-4095/88764`` (None when the server does not say)."""
    total = content_range.rpartition("/")[2]
    return int(total) if total.isdigit() else None


# --- header -----------------------------------------------------------------------------------


class _RemoteFile(io.RawIOBase):
    """The bytes of a remote file fetched so far, as a seekable file for ``tifffile``.

    Created with the first :data:`HEADER_BYTES`; a read beyond what was fetched fetches it (at
    least another :data:`HEADER_BYTES`).
    """

    def __init__(self, url: str) -> None:
        self.url = url
        first, size = fetch(url, 0, HEADER_BYTES)
        self.size = len(first) if size is None else size
        self.data = bytearray(first)
        self.pos = 0
        self.name = url

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = 0) -> int:
        self.pos = [offset, self.pos + offset, self.size + offset][whence]
        return self.pos

    def readinto(self, buffer) -> int:
        stop = min(self.pos + len(buffer), self.size)
        if self.pos - len(self.data) > HEADER_SKIP_LIMIT:
            raise NotCogError(f"a TIFF directory at byte {self.pos}, not near the start")
        if stop > len(self.data):
            more, _ = fetch(
                self.url, len(self.data), min(self.size, max(stop, len(self.data) + HEADER_BYTES))
            )
            self.data += more
        chunk = self.data[self.pos : stop]
        buffer[: len(chunk)] = chunk
        self.pos += len(chunk)
        return len(chunk)


_LAYOUTS: OrderedDict[str, CogLayout] = OrderedDict()
_LAYOUTS_LOCK = threading.Lock()


_URL_LOCKS: dict[str, threading.Lock] = {}


def cog_layout(url: str) -> CogLayout:
    """The layout of the COG at ``url``, from its header (kept per process).

    Chunk tasks that open the same COG at once wait for one of them to read the header.
    """
    with _LAYOUTS_LOCK:
        url_lock = _URL_LOCKS.setdefault(url, threading.Lock())
    with url_lock:
        with _LAYOUTS_LOCK:
            if url in _LAYOUTS:
                _LAYOUTS.move_to_end(url)
                return _LAYOUTS[url]
        layout = _parse_header(_RemoteFile(url))
        with _LAYOUTS_LOCK:
            _LAYOUTS[url] = layout
            while len(_LAYOUTS) > HEADER_CACHE:
                _URL_LOCKS.pop(_LAYOUTS.popitem(last=False)[0], None)
        return layout


def forget_layout(url: str) -> None:
    """Drop a file's cached header and tiles (before a retry: the failure may come from them)."""
    with _LAYOUTS_LOCK:
        _LAYOUTS.pop(url, None)
    _TILES.forget(url)


def _parse_header(remote: _RemoteFile) -> CogLayout:
    """Tile index, data type, nodata and grid of the full-resolution image."""
    import tifffile

    try:
        tif = tifffile.TiffFile(remote)
    except tifffile.TiffFileError as error:
        raise RemoteFileError(
            f"not recognized as a supported file format (not a TIFF): {error}"
        ) from error
    page = tif.pages.first
    if not page.is_tiled or page.samplesperpixel != 1 or page.imagedepth != 1:
        raise NotCogError("not a tiled single-band TIFF")
    return CogLayout(
        size=remote.size,
        geobox=_geobox(page),
        dtype=np.dtype(page.dtype),
        tile=(page.tilelength, page.tilewidth),
        offsets=tuple(page.dataoffsets),
        counts=tuple(page.databytecounts),
        nodata=_nodata(page),
        page=page,
    )


def _geobox(page) -> GeoBox:
    """The page's grid from its GeoTIFF tags (north-up, pixel-is-area, an EPSG code)."""
    from affine import Affine

    tags = page.geotiff_tags or {}
    scale, tiepoint = tags.get("ModelPixelScale"), tags.get("ModelTiepoint")
    epsg = tags.get("ProjectedCSTypeGeoKey") or tags.get("GeographicTypeGeoKey")
    if scale is None or tiepoint is None or epsg is None or tags.get("GTRasterTypeGeoKey") == 2:
        raise NotCogError("no north-up, pixel-is-area grid with an EPSG code in its tags")
    i, j, _, x, y, _ = tiepoint[:6]
    sx, sy = scale[:2]
    transform = Affine(sx, 0, x - i * sx, 0, -sy, y + j * sy)
    return GeoBox((page.imagelength, page.imagewidth), transform, f"EPSG:{int(epsg)}")


def _nodata(page) -> float | None:
    """GDAL's nodata tag (42113), as GDAL reads it."""
    tag = page.tags.get(42113)
    if tag is None:
        return None
    text = str(tag.value).strip("\x00 ")
    return float(text) if text else None


# --- pixels -----------------------------------------------------------------------------------


def read_window(url: str, layout: CogLayout, window: tuple[slice, slice]) -> np.ndarray:
    """Pixels of ``window`` (rows, columns of the full-resolution image) of the COG."""
    rows, cols = window
    th, tw = layout.tile
    wanted = _tiles_of(layout, window)
    blobs = _TILES.get(url, layout, wanted)
    out = np.empty((rows.stop - rows.start, cols.stop - cols.start), dtype=layout.dtype)
    for index in wanted:
        r, c = divmod(index, layout.tiles_across)
        tile = _decode(layout, index, blobs[index])
        y0, x0 = r * th, c * tw
        ys = slice(max(rows.start, y0), min(rows.stop, y0 + th))
        xs = slice(max(cols.start, x0), min(cols.stop, x0 + tw))
        out[
            ys.start - rows.start : ys.stop - rows.start,
            xs.start - cols.start : xs.stop - cols.start,
        ] = tile[ys.start - y0 : ys.stop - y0, xs.start - x0 : xs.stop - x0]
    return out


def _tiles_of(layout: CogLayout, window: tuple[slice, slice]) -> list[int]:
    """Indices of the full-resolution tiles that ``window`` touches, row by row."""
    (rows, cols), (th, tw) = window, layout.tile
    return [
        r * layout.tiles_across + c
        for r in range(rows.start // th, (rows.stop - 1) // th + 1)
        for c in range(cols.start // tw, (cols.stop - 1) // tw + 1)
    ]


class _TileCache:
    """Compressed tiles fetched in this process, least recently used dropped past a byte limit.

    A COG tile (256 to 1024 px) usually spans several cube chunks, each read by its own task:
    the first task fetches it, the others - even those asking at the same moment - wait for and
    reuse those bytes, so a tile crosses the network once (as GDAL's block cache does).
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.data: OrderedDict[tuple[str, int], bytes] = OrderedDict()
        self.size = 0
        self.pending: dict[tuple[str, int], threading.Event] = {}
        self.lock = threading.Lock()

    def get(self, url: str, layout: CogLayout, wanted: list[int]) -> dict[int, bytes]:
        """The bytes of the wanted tiles: cached, awaited from another task, or fetched."""
        found, waits, mine = self._claim(url, wanted)
        try:
            fetched = _fetch_tiles(url, layout, mine)
        finally:
            with self.lock:
                for index in mine:
                    self.pending.pop((url, index)).set()
        with self.lock:
            for index, blob in fetched.items():
                self._put((url, index), blob)
        found |= fetched
        for index, event in waits:
            event.wait()
            with self.lock:
                blob = self.data.get((url, index))
            # Gone when the other task's fetch failed (or it was evicted already): fetch it.
            found[index] = blob if blob is not None else _fetch_tiles(url, layout, [index])[index]
        return found

    def _claim(self, url: str, wanted: list[int]):
        """Split ``wanted`` into cached tiles, tiles another task is fetching, and the rest
        (now marked as being fetched by this task)."""
        found, waits, mine = {}, [], []
        with self.lock:
            for index in wanted:
                key = (url, index)
                if key in self.data:
                    self.data.move_to_end(key)
                    found[index] = self.data[key]
                elif key in self.pending:
                    waits.append((index, self.pending[key]))
                else:
                    self.pending[key] = threading.Event()
                    mine.append(index)
        return found, waits, mine

    def _put(self, key: tuple[str, int], blob: bytes) -> None:
        if key in self.data:
            return
        self.data[key] = blob
        self.size += len(blob)
        while self.size > self.limit and self.data:
            _, dropped = self.data.popitem(last=False)
            self.size -= len(dropped)

    def forget(self, url: str) -> None:
        """Drop a file's tiles (before a retry)."""
        with self.lock:
            for key in [k for k in self.data if k[0] == url]:
                self.size -= len(self.data.pop(key))


_TILES = _TileCache(TILE_CACHE_BYTES)


def _fetch_tiles(url: str, layout: CogLayout, wanted: list[int]) -> dict[int, bytes]:
    """The compressed bytes of each wanted tile: one GET per run of adjacent tiles, the runs
    fetched concurrently (a window several tile rows high is several runs)."""
    blobs: dict[int, bytes] = {i: b"" for i in wanted}  # a sparse tile has no bytes
    runs = _adjacent_runs(sorted((layout.offsets[i], layout.counts[i], i) for i in wanted))
    if len(runs) > 1:
        for part in _fetchers().map(lambda run: _fetch_run(url, layout, run), runs):
            blobs |= part
    elif runs:
        blobs |= _fetch_run(url, layout, runs[0])
    return blobs


def _fetch_run(url: str, layout: CogLayout, run: list[tuple[int, int, int]]) -> dict[int, bytes]:
    """The tiles of one run of adjacent tiles, in one GET."""
    start, stop = run[0][0], run[-1][0] + run[-1][1]
    data, size = fetch(url, start, stop)
    if size is not None and size != layout.size:  # replaced since its header was read
        raise RemoteFileError(f"the file changed size ({layout.size} -> {size} bytes)")
    return {index: data[offset - start : offset - start + count] for offset, count, index in run}


_FETCHERS = None


def _fetchers():
    """Threads that fetch the runs of one window at once (shared by the process)."""
    global _FETCHERS
    with _POOL_LOCK:
        if _FETCHERS is None:
            from concurrent.futures import ThreadPoolExecutor

            _FETCHERS = ThreadPoolExecutor(CONNECTIONS, thread_name_prefix="ndvicube-fetch")
        return _FETCHERS


def _adjacent_runs(spans: list[tuple[int, int, int]]) -> list[list[tuple[int, int, int]]]:
    """(offset, count, index) spans sorted by offset, cut where one starts more than
    :data:`MERGE_GAP` bytes after the previous one ends; empty spans are left out."""
    runs: list[list[tuple[int, int, int]]] = []
    for span in (s for s in spans if s[1]):
        if runs and span[0] - (runs[-1][-1][0] + runs[-1][-1][1]) <= MERGE_GAP:
            runs[-1].append(span)
        else:
            runs.append([span])
    return runs


def _decode(layout: CogLayout, index: int, blob: bytes) -> np.ndarray:
    """One tile's pixels; a sparse (empty) tile is nodata, as GDAL reads it."""
    if not blob:
        return np.full(layout.tile, layout.nodata or 0, dtype=layout.dtype)
    try:
        segment, _, _ = layout.page.decode(blob, index)
    except Exception as error:  # zlib, LZW... errors of a corrupt or cut tile
        raise RemoteFileError(f"corrupt tile {index}: {error}") from error
    return segment.reshape(layout.tile)


# --- odc-stac driver --------------------------------------------------------------------------


class RangeReader(RetryingRioReader):
    """odc-stac reader for HTTP COGs through :func:`read_window`; GDAL's for anything else."""

    def read(self, cfg, dst_geobox, *, dst=None, selection=None):
        url = self._src.uri

        def attempt(number: int):
            if number > 1:
                forget_layout(url)
            try:
                return _range_read(
                    url, cfg, dst_geobox, dst, getattr(self._ctx, "load_geobox", None)
                )
            except _UseGdal:
                return None

        result = with_retries(attempt, url) if selection is None else None
        if result is None:
            return super().read(cfg, dst_geobox, dst=dst, selection=selection)
        return result


class _UseGdal(Exception):
    """This read is one GDAL's reader does (overviews, an unusual TIFF)."""


def _range_read(
    url: str, cfg, dst_geobox: GeoBox, dst: np.ndarray | None, load_geobox: GeoBox | None
):
    """odc-loader's ``_do_read`` with the window read by :func:`read_window` instead of GDAL.

    With ``load_geobox`` (the whole cube's grid), the tiles the whole cube needs from this COG
    are fetched first when they total at most :data:`PREFETCH_BYTES`.
    """
    import rasterio.warp
    from odc.geo.overlap import compute_reproject_roi
    from odc.loader._rio import (
        nodata_mask,
        resampling_s2rio,
        resolve_dst_dtype,
        resolve_dst_nodata,
        resolve_src_nodata,
        roi_shape,
        same_nodata,
    )

    try:
        layout = cog_layout(url)
    except NotCogError as error:
        raise _UseGdal() from error
    ttol = 0.9 if cfg.nearest else 0.05
    rr = compute_reproject_roi(layout.geobox, dst_geobox, ttol=ttol)
    if (cfg.use_overviews and rr.read_shrink > 1) or (dst is not None and dst.ndim != 2):
        raise _UseGdal()
    if load_geobox is not None:
        _prefetch(url, layout, compute_reproject_roi(layout.geobox, load_geobox, ttol=ttol))
    roi_dst = rr.roi_dst
    if dst is not None:
        out = dst[roi_dst]
    else:
        out = np.ndarray(roi_shape(roi_dst), dtype=resolve_dst_dtype(layout.dtype.name, cfg))
    src_nodata = resolve_src_nodata(layout.nodata, cfg)
    dst_nodata = resolve_dst_nodata(out.dtype, cfg, src_nodata)
    if roi_is_empty(roi_dst):
        return roi_dst, out
    if roi_is_empty(rr.roi_src):
        if dst_nodata is not None:
            np.copyto(out, dst_nodata)
        return roi_dst, out
    if rr.paste_ok and rr.read_shrink == 1:
        out[...] = read_window(url, layout, rr.roi_src)
        if dst_nodata is not None and not same_nodata(src_nodata, dst_nodata):
            np.copyto(out, dst_nodata, where=nodata_mask(out, src_nodata))
        return roi_dst, out
    window = roi_pad(rr.roi_src, WARP_PAD, layout.geobox.shape.yx)
    rasterio.warp.reproject(
        read_window(url, layout, window),
        out,
        src_transform=layout.geobox[window].transform,
        src_crs=str(layout.geobox.crs),
        src_nodata=src_nodata,
        dst_crs=str(dst_geobox.crs),
        dst_transform=dst_geobox[roi_dst].transform,
        dst_nodata=dst_nodata,
        resampling=resampling_s2rio(cfg.resampling),
    )
    return roi_dst, out


def _prefetch(url: str, layout: CogLayout, rr) -> None:
    """Fetch (into the tile cache) every tile of the COG that the load's window needs."""
    if roi_is_empty(rr.roi_src):
        return
    tiles = _tiles_of(layout, roi_pad(rr.roi_src, WARP_PAD, layout.geobox.shape.yx))
    if sum(layout.counts[i] for i in tiles) <= PREFETCH_BYTES:
        _TILES.get(url, layout, tiles)


class RangeRioDriver(RetryingRioDriver):
    """odc-stac driver: HTTP(S) COGs through :class:`RangeReader`, the rest through GDAL.

    Its readers see the whole load's grid (``ctx.load_geobox``), so the first chunk read from
    a COG fetches every tile of it the cube needs, in one request when they are adjacent.
    """

    @contextlib.contextmanager
    def restore_env(self, env, load_state):
        with super().restore_env(env, load_state) as ctx:
            ctx.load_geobox = load_state.geobox
            yield ctx

    def open(self, src, ctx):
        if src.uri.startswith(("http://", "https://")):
            return RangeReader(src, ctx)
        return super().open(src, ctx)

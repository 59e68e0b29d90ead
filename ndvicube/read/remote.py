"""Remote COGs (``http(s)://``, ``s3://``) read by async-geotiff, pipelined.

``compute.reader: range`` (the default). `async-geotiff <https://pypi.org/project/async-geotiff/>`_
(Development Seed; Rust core ``async-tiff``) parses the TIFF header and tile index, fetches
tiles through a store - ndvicube's HTTP client (:mod:`ndvicube.read.http_store`, which obeys
a server's ``Retry-After`` and keeps credentials on their host), for ``s3://`` with URLs `obstore
<https://pypi.org/project/obstore/>`_ presigns; adjacent tiles coalesced into one request - and
decodes them in Rust threads, outside the GIL.
For each COG that makes one GET of the first :data:`HEADER_BYTES` (no HEAD) and one GET per run
of adjacent tiles the cube needs, nothing of the overviews.

What ndvicube adds:

* **One window per COG per cube.** The first read of a COG fetches the part of it the whole
  cube (``ctx.load_geobox``) needs, once; every Dask chunk that needs it slices that window
  (:class:`WindowCache`). The window is pasted or warped exactly as odc-stac's own reader does
  with what GDAL read (same nodata handling, same ``rasterio.warp.reproject``): the cube is
  byte-identical to one read through GDAL (tested).
* **Pipelining** (:mod:`ndvicube.read.pipeline`, used by the cube job): the headers of every
  COG the job reads are requested at once, up front, and the windows of the next write blocks
  are fetched while a block is masked and written, within a budget of decoded pixels.
* **One asyncio loop per process** in a background thread (:class:`_Runtime`), shared by the
  reading threads; at most :data:`IN_FLIGHT` COGs are fetched at once.

GDAL still serves (:mod:`ndvicube.read.gdal`): local files, reads from overviews (a cube coarser
than the data), multi-band, striped or pixel-is-point TIFFs, compressions async-tiff does not
decode as GDAL does (:data:`DECODED_COMPRESSIONS`), and everything with ``compute.reader:
gdal``; the header says which, so those go to GDAL without a retry. Retries: the store retries
each request (:data:`ndvicube.read.retries.OBSTORE_RETRY`; a 429/503's ``Retry-After`` holds
the host), and the whole read is retried like GDAL's (:func:`ndvicube.read.retries.with_retries`);
a 404/403, a file that is not a TIFF or one shorter than its header says is not.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import logging
import os
import re
import threading
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import numpy as np
from odc.geo.geobox import GeoBox
from odc.geo.roi import roi_is_empty, roi_pad

log = logging.getLogger(__name__)
# async-geotiff warns when it opens a striped TIFF; the reader finds those itself from the header
# (unsupported_layout) and has GDAL read them, so the warning would only be noise in the logs.
warnings.filterwarnings(
    "ignore", message="Striped GeoTIFFs are not supported", category=UserWarning
)

#: Bytes of the first request to a COG: its header and tile index. A Sentinel-2 COG's header
#: is 1-3 KB, the demo's 786 B; a larger one costs one more request (twice as long), not a
#: failure.
HEADER_BYTES = 4096
#: A header read reaching this far into the file is no COG's (its directory is not at the
#: start): GDAL reads that file instead of async-tiff fetching every byte up to the directory.
HEADER_SKIP_LIMIT = 64 * 1024
#: COGs whose header or window is being fetched at once (per process).
IN_FLIGHT = 32
#: TIFF compressions the remote reader decodes with async-tiff, each giving GDAL's pixels
#: (checked on files GDAL wrote): none, LZW, Deflate (both codes), LERC, LZMA, ZSTD. Anything
#: else is read by GDAL: PackBits and JPEG 2000 (async-tiff has no decoder), and lossy JPEG and
#: WebP, whose decoders need not round as GDAL's do (measured: JPEG pixels differ).
DECODED_COMPRESSIONS = frozenset({1, 5, 8, 0x80B2, 34887, 34925, 50000})
#: Decoded windows kept per process beyond that (least recently used dropped first).
CACHE_BYTES = 1024 * 1024 * 1024
#: Pixels read around a window: resampling kernels and GDAL's warper may look that far beyond
#: the pixels the window maps to.
WARP_PAD = 3
#: odc-loader's tolerance for a paste (no resampling) with nearest resampling, as in its reader.
NEAREST_TTOL = 0.9


class RemoteFileError(OSError):
    """A remote read that failed: an HTTP status, a dropped connection, a cut or corrupt body.

    Its text carries "HTTP response code: N" when the server answered N, which marks 404/403 as
    permanent (:func:`ndvicube.read.retries.is_permanent`).
    """


class UseGdal(Exception):
    """This COG or this read is one GDAL's reader does (an unusual TIFF, overviews)."""


# --- the background loop and the stores -------------------------------------------------------


class _Runtime:
    """An asyncio loop in a daemon thread: every remote read of the process runs on it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(
            target=self.loop.run_forever, name="ndvicube-cogs", daemon=True
        )
        self.thread.start()
        self.limit = asyncio.Semaphore(IN_FLIGHT)
        self.stores: dict[tuple, Any] = {}

    def submit(self, coroutine) -> concurrent.futures.Future:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop)

    def stop(self) -> None:
        """Stop the loop and forget every store (before the interpreter finalises)."""
        self.stores.clear()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)


_RUNTIME: _Runtime | None = None
_RUNTIME_LOCK = threading.Lock()


def runtime() -> _Runtime:
    """The process's loop, started on first use."""
    global _RUNTIME
    with _RUNTIME_LOCK:
        if _RUNTIME is None:
            _RUNTIME = _Runtime()
        return _RUNTIME


@atexit.register
def _shutdown() -> None:
    """Close the loop, stores and open files before interpreter finalisation.

    async-tiff and obstore objects still alive while Python finalises can crash it (measured:
    about 1 exit in 4 of a benchmark script that left them alive, SIGSEGV or SIGABRT after all
    work was done), so they are dropped here, while the interpreter is whole.
    """
    global _RUNTIME
    WINDOWS.clear()
    _HEADERS.clear()
    if _RUNTIME is not None:
        _RUNTIME.stop()
        _RUNTIME = None
    import gc

    gc.collect()


def _after_fork() -> None:
    """A forked child has no loop thread: start its own on first use."""
    global _RUNTIME, _RUNTIME_LOCK
    _RUNTIME, _RUNTIME_LOCK = None, threading.Lock()
    WINDOWS.__init__(CACHE_BYTES)
    _HEADERS.clear()


os.register_at_fork(after_in_child=_after_fork)


def reset() -> None:
    """Forget every store, header and window of this process: the next read makes new stores
    from the environment as it is then (S3 settings are read when a store is made)."""
    WINDOWS.clear()
    if _RUNTIME is not None:
        _RUNTIME.submit(_clear_headers()).result()
        _RUNTIME.stores.clear()


async def _clear_headers() -> None:
    _HEADERS.clear()


def store_and_path(url: str) -> tuple[Any, str]:
    """The store serving ``url`` (one per host or bucket, shared) and the path in it.

    ``http(s)://``: ndvicube's client (:class:`~ndvicube.read.http_store.HttpStore`, which
    obeys a server's ``Retry-After``); the path keeps a signed URL's query string. ``s3://``:
    the same client with URLs obstore presigns (no credential header for a redirect to carry to
    another host, :mod:`ndvicube.read.s3`), or shapes when unsigned.
    """
    parts = urlsplit(url)
    if parts.scheme == "s3":
        key: tuple = ("s3", parts.netloc)
        path = parts.path.lstrip("/")
    else:
        key = (parts.scheme, parts.netloc)
        path = parts.path.lstrip("/") + (f"?{parts.query}" if parts.query else "")
    rt = runtime()
    store = rt.stores.get(key)
    if store is None:
        store = rt.stores.setdefault(key, _make_store(url))
    return store, path


def _make_store(url: str):
    """ndvicube's HTTP client for the host or bucket of ``url``; for ``s3://``, with the URLs
    obstore presigns (or shapes, unsigned: :class:`~ndvicube.read.s3.PresignedUrls`)."""
    from ndvicube.read.http_store import HttpStore

    parts = urlsplit(url)
    if parts.scheme != "s3":
        return HttpStore(url, connections=IN_FLIGHT)
    from ndvicube.read.retries import OBSTORE_CLIENT
    from ndvicube.read.s3 import PresignedUrls, s3_options

    options = s3_options()
    client = OBSTORE_CLIENT | {"allow_http": options.get("endpoint", "").startswith("http:")}
    urls = PresignedUrls(parts.netloc, options, client)  # no credential in a header (issue 33)
    return HttpStore(urls.endpoint(), connections=IN_FLIGHT, signed_url=urls)


# --- headers ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CogLayout:
    """What the reader needs of a COG's full-resolution image, from its header."""

    geobox: GeoBox
    dtype: np.dtype
    nodata: float | None
    tif: Any
    """async-geotiff's ``GeoTIFF``, for reading windows."""


_HEADERS: dict[str, asyncio.Future] = {}


async def cog_layout(url: str) -> CogLayout:
    """The layout of the COG at ``url`` (one header request per process, however many ask;
    a retry calls :func:`forget` first)."""
    task = _HEADERS.get(url)
    if task is None or task.cancelled():  # a failed header stays failed until forget(url)
        task = _HEADERS[url] = asyncio.ensure_future(_open(url))
    return await asyncio.shield(task)


def forget(url: str) -> None:
    """Drop a COG's header and windows (before a retry: the failure may come from them)."""
    runtime().loop.call_soon_threadsafe(_HEADERS.pop, url, None)
    WINDOWS.forget(url)


async def _open(url: str) -> CogLayout:
    from async_geotiff import GeoTIFF

    store, path = store_and_path(url)
    guarded = _HeaderGuard(store)
    async with runtime().limit:
        try:
            tif = await GeoTIFF.open(path, store=guarded, prefetch=HEADER_BYTES)
        except ValueError as error:  # no GeoTIFF keys
            raise UseGdal(str(error)) from error
        except Exception as error:
            if guarded.far:
                raise UseGdal("a TIFF directory far from the start") from error
            raise remote_error(error, "header") from error
    guarded.opened = True
    return _layout(tif)


def unsupported_layout(ifd) -> str | None:
    """Why async-tiff cannot read the image of ``ifd`` (its TIFF directory), or None.

    A striped (not tiled) TIFF or a compression async-tiff has no decoder for is a property of
    the file: no retry changes it, so GDAL reads it from the start. Found in the header, not
    from a failed tile fetch (which would be retried as a corrupt tile).
    """
    if ifd.tile_width is None or ifd.strip_offsets is not None:
        return "a striped (not tiled) TIFF"
    compression = int(ifd.compression)
    if compression not in DECODED_COMPRESSIONS:
        return f"TIFF compression {_compression_name(compression)}, which async-tiff cannot decode"
    return None


#: Names of TIFF compressions GDAL writes that the remote reader leaves to GDAL.
_COMPRESSION_NAMES = {2: "CCITT RLE", 3: "CCITT Fax3", 4: "CCITT Fax4", 6: "JPEG (old)",
                      7: "JPEG", 32773: "PackBits", 34712: "JPEG 2000", 50001: "WebP",
                      50002: "JPEG XL"}  # fmt: skip


def _compression_name(code: int) -> str:
    return f"{_COMPRESSION_NAMES.get(code, 'code')} ({code})"


class _HeaderGuard:
    """The store as async-tiff sees it: refuses, while the header is read, a read reaching past
    :data:`HEADER_SKIP_LIMIT` (a directory at the end of a plain GeoTIFF)."""

    def __init__(self, store) -> None:
        self.store, self.opened, self.far = store, False, False

    async def get_range_async(self, path, *, start, end=None, length=None):
        if not self.opened and (end if end is not None else start + (length or 0)) > (
            HEADER_SKIP_LIMIT
        ):
            self.far = True
            raise OSError(f"a TIFF directory past byte {HEADER_SKIP_LIMIT}")
        return await self.store.get_range_async(path, start=start, end=end, length=length)

    async def get_ranges_async(self, path, *, starts, ends=None, lengths=None):
        return await self.store.get_ranges_async(path, starts=starts, ends=ends, lengths=lengths)


def _layout(tif) -> CogLayout:
    """The full-resolution grid of ``tif``, or :class:`UseGdal` for what GDAL reads better."""
    if tif.count != 1 or tif._gkd.raster_type == 2 or tif.dtype is None:
        raise UseGdal("not a single-band, pixel-is-area TIFF")
    unsupported = unsupported_layout(tif.ifd)
    if unsupported:
        raise UseGdal(unsupported)
    try:
        epsg = tif.crs.to_epsg()
    except Exception as error:  # no CRS this library can read
        raise UseGdal(f"no CRS: {error}") from error
    crs = f"EPSG:{epsg}" if epsg else tif.crs.to_wkt()
    transform = tif.transform
    if transform.b or transform.d:
        raise UseGdal("a rotated grid")
    return CogLayout(
        geobox=GeoBox((tif.height, tif.width), transform, crs),
        dtype=np.dtype(tif.dtype),
        nodata=tif.nodata,
        tif=tif,
    )


#: What obstore's messages repeat: the error class, "Generic HTTP error", the URL and timing.
_NOISE = re.compile(r"\w+Error: Generic \w+ error: |Error performing \w+ \S+ in \S+ - ")
#: Words of obstore's network failures (any other failure reading tiles is the decoder's).
_NETWORK = re.compile(r"HTTP error|request|connect|timed? ?out|body|closed|reset", re.IGNORECASE)
_STATUS = re.compile(r"status code: (\d{3})|(\d{3}) [A-Z][a-z]+")


#: A decoder's words for a file it cannot read at all, as opposed to a corrupt or cut-short
#: tile: GDAL reads that file, without a retry (the header check, unsupported_layout, catches
#: the known cases first; this is the net for the others).
_FORMAT = re.compile(
    r"Not a tiled TIFF|does not support the image format|Unknown compression|is unsupported|"
    r"Unsupported data type|predictor is not|unknown photometric",
    re.IGNORECASE,
)


def tile_error(error: BaseException, url: str) -> Exception:
    """``error`` of a tile fetch as :class:`UseGdal` when the decoder cannot read this file at
    all (remembered as the COG's header, so no other block asks again), else as
    :func:`remote_error` says (a network fault, a corrupt tile: worth a retry)."""
    if isinstance(error, UseGdal):
        return error
    if not _FORMAT.search(str(error)):
        return remote_error(error, "tiles")
    reason = UseGdal(f"async-tiff cannot decode it: {remote_error(error, 'tiles')}")
    settled = asyncio.get_running_loop().create_future()
    settled.set_exception(reason)
    settled.exception()  # retrieved: every later cog_layout raises it
    _HEADERS[url] = settled
    return reason


#: How a redirect loop (or more than 10 redirects, reqwest's limit as GDAL's) is said.
TOO_MANY_REDIRECTS = "too many redirects (more than 10: a redirect loop?)"


def remote_error(error: BaseException, what: str) -> RemoteFileError:
    """``error`` of async-tiff or obstore as a :class:`RemoteFileError` saying what failed.

    The libraries' text ends with a "Debug source" dump; only its first line is kept, with the
    status in the words :func:`ndvicube.read.retries.is_permanent` knows.
    """
    text = str(error).split("\n\n", 1)[0].strip().splitlines()[0] if str(error) else ""
    text = _NOISE.sub("", text)
    from ndvicube.read.http_store import SHORT_FILE

    if SHORT_FILE in text:  # a file cut short: said as it is, permanent (retries.PERMANENT)
        return RemoteFileError(text[text.index(SHORT_FILE) :])
    if "error following redirect" in text:
        return RemoteFileError(f"{TOO_MANY_REDIRECTS} for the {what}: {text}")
    found = _STATUS.search(text)
    if "not found" in text.lower() and not found:
        found_status = "404"
    else:
        found_status = next((g for g in found.groups() if g), None) if found else None
    if found_status:
        return RemoteFileError(f"HTTP response code: {found_status} for the {what}: {text}")
    if "tiff" in text.lower() and what == "header":
        return RemoteFileError(f"not recognized as a supported file format (not a TIFF): {text}")
    if what == "tiles" and not _NETWORK.search(text):
        return RemoteFileError(f"corrupt tile: {text}")  # a decoder's words
    return RemoteFileError(f"{what} read failed: {text or type(error).__name__}")


# --- windows --------------------------------------------------------------------------------


@dataclass(frozen=True)
class CogWindow:
    """Decoded pixels of the part of a COG a whole cube needs."""

    layout: CogLayout
    rows: slice
    cols: slice
    data: np.ndarray | None
    """None when the cube does not overlap the COG, or is coarser than it (GDAL reads
    overviews)."""

    @property
    def nbytes(self) -> int:
        return 0 if self.data is None else self.data.nbytes

    def pixels(self, rows: slice, cols: slice) -> np.ndarray | None:
        """The pixels of a sub-window (COG pixel coordinates), None if it is not inside."""
        if self.data is None or not (
            self.rows.start <= rows.start
            and rows.stop <= self.rows.stop
            and self.cols.start <= cols.start
            and cols.stop <= self.cols.stop
        ):
            return None
        r0, c0 = self.rows.start, self.cols.start
        return self.data[rows.start - r0 : rows.stop - r0, cols.start - c0 : cols.stop - c0]


def _grid_key(geobox: GeoBox) -> tuple:
    return (geobox.shape.yx, tuple(geobox.affine)[:6], str(geobox.crs))


def cube_window(layout: CogLayout, load_geobox: GeoBox, ttol: float) -> tuple[slice, slice] | None:
    """Rows and columns of the COG that the cube on ``load_geobox`` needs, padded by
    :data:`WARP_PAD`; None when it needs none, or reads overviews (a coarser cube)."""
    from odc.geo.overlap import compute_reproject_roi

    rr = compute_reproject_roi(layout.geobox, load_geobox, ttol=ttol)
    if roi_is_empty(rr.roi_src) or rr.read_shrink > 1:
        return None
    return roi_pad(rr.roi_src, WARP_PAD, layout.geobox.shape.yx)


async def read_cube_window(url: str, load_geobox: GeoBox, ttol: float) -> CogWindow:
    """The pixels of the COG at ``url`` that the cube on ``load_geobox`` needs (padded)."""
    layout = await cog_layout(url)
    window = cube_window(layout, load_geobox, ttol)
    if window is None:
        return CogWindow(layout, slice(0, 0), slice(0, 0), None)
    rows, cols = window
    async with runtime().limit:
        try:
            data = await _read_rows_cols(layout.tif, rows, cols)
        except Exception as error:
            raise tile_error(error, url) from error
    return CogWindow(layout, rows, cols, data)


async def _read_rows_cols(tif, rows: slice, cols: slice) -> np.ndarray:
    """Full-resolution pixels ``[rows, cols]`` of the first band of ``tif``."""
    from async_geotiff import Window

    window = Window(
        col_off=cols.start, row_off=rows.start, width=cols.stop - cols.start,
        height=rows.stop - rows.start,
    )  # fmt: skip
    return np.asarray((await tif.read(window=window)).data[0])


class WindowCache:
    """Cube windows per (COG, cube grid): fetched once, shared by every chunk task.

    Entries are futures, so tasks asking at once wait for one fetch. Past :attr:`limit` bytes
    the least recently used finished windows are dropped; the pipeline drops a block's windows
    as soon as the block is written.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.entries: OrderedDict[tuple, concurrent.futures.Future] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, url: str, load_geobox: GeoBox, ttol: float) -> concurrent.futures.Future:
        """The future window of ``url`` for the cube on ``load_geobox`` (fetch started)."""
        key = (url, _grid_key(load_geobox), ttol)
        with self.lock:
            future = self.entries.get(key)
            if future is not None and not _failed(future):
                self.entries.move_to_end(key)
                return future
            future = runtime().submit(read_cube_window(url, load_geobox, ttol))
            self.entries[key] = future
            self._evict()
            return future

    def _evict(self) -> None:
        held = sum(_nbytes(f) for f in self.entries.values())
        for key in list(self.entries):
            if held <= self.limit:
                break
            future = self.entries[key]
            if future.done():
                held -= _nbytes(future)
                del self.entries[key]

    def forget(self, url: str) -> None:
        """Drop every window of ``url``."""
        with self.lock:
            for key in [k for k in self.entries if k[0] == url]:
                del self.entries[key]

    def clear(self) -> None:
        with self.lock:
            self.entries.clear()


def _failed(future) -> bool:
    """Whether a finished fetch failed in a way worth another try (not "use GDAL")."""
    if not future.done() or future.cancelled():
        return future.cancelled()
    error = future.exception()
    return error is not None and not isinstance(error, UseGdal)


def _nbytes(future: concurrent.futures.Future) -> int:
    if not future.done() or future.cancelled() or future.exception() is not None:
        return 0
    return future.result().nbytes


WINDOWS = WindowCache(CACHE_BYTES)


def is_remote(url: str) -> bool:
    """Whether this reader reads ``url`` (GDAL reads the rest)."""
    return url.startswith(("http://", "https://", "s3://"))


# --- for tests and diagnostics: one COG at a time, synchronously -----------------------------


def layout(url: str) -> CogLayout:
    """The header of the COG at ``url`` (blocking)."""
    return runtime().submit(cog_layout(url)).result()


def read_pixels(url: str, rows: slice, cols: slice) -> np.ndarray:
    """Full-resolution pixels ``[rows, cols]`` of the COG at ``url`` (blocking)."""

    async def read() -> np.ndarray:
        return await _read_rows_cols((await cog_layout(url)).tif, rows, cols)

    return runtime().submit(read()).result()

"""Whether a COG GDAL failed to read is shorter than its own header says (issue 33).

GDAL learns a file's size when it opens it (a HEAD, or a GET for a signed URL) and never asks
past it, so a truncated COG (a cut or incomplete upload) reads as "TIFFReadEncodedTile()
failed", in the words of a block that failed to arrive, and a COG cut inside its header opens
without its GeoKeys (no CRS: odc-loader's ``AssertionError``); both were retried or raised
though no retry can mend them. After such a failure, and only then (never
on the hot path), :func:`raise_if_short` looks as the remote reader does
(:mod:`ndvicube.read.http_store`): the TIFF header (one request of
:data:`~ndvicube.read.remote.HEADER_BYTES`, through the same client and store) gives the end of
the last tile or strip of every image, and one request of that last byte says whether the file
reaches it (the server answers 416, with the file's size, when it does not). A file that is
whole, or a check that fails for any other reason, leaves the read's own error to be retried.
"""

from __future__ import annotations

import concurrent.futures

from ndvicube.read.http_store import SHORT_FILE, ShortFileError
from ndvicube.read.remote import HEADER_BYTES, is_remote, remote_error, runtime, store_and_path

#: GDAL's words for a read that could be a file cut short: a block that did not arrive, or a
#: header it could not parse (a file cut inside its header).
MAYBE_SHORT = (
    "TIFFReadEncodedTile",
    "TIFFReadEncodedStrip",
    "TIFFFillTile",
    "TIFFFillStrip",
    "IReadBlock failed",
    "not recognized as a supported file format",
)


def could_be_short(error: BaseException) -> bool:
    """Whether GDAL's ``error`` could come from a file shorter than its header says."""
    if isinstance(error, AssertionError):  # GDAL skips the GeoKey tags of a header cut short
        return True  # ("IO error during reading of GeoKeyDirectory") and odc-loader asserts a CRS
    text = f"{error} {error.__cause__ or ''}"
    return any(words in text for words in MAYBE_SHORT)


def raise_if_short(url: str, timeout_s: float | None = None) -> None:
    """An error saying so (:class:`~ndvicube.read.http_store.ShortFileError`'s words) when the
    remote COG at ``url`` ends before the last byte its TIFF header points to, or inside its
    header; else nothing. Two requests (the header, then the last byte it points to)."""
    if not is_remote(url):
        return
    future = runtime().submit(_check(url))
    try:
        future.result(timeout=timeout_s)
    except concurrent.futures.TimeoutError:
        future.cancel()
    except Exception as error:  # no answer, not a TIFF, not allowed: the read's own error stands
        if SHORT_FILE in str(error):
            raise


async def _check(url: str) -> None:
    from async_tiff import TIFF

    store, path = store_and_path(url)
    try:
        tif = await TIFF.open(path, store=store, prefetch=HEADER_BYTES)
    except Exception as error:  # a file cut inside its header: said as the remote reader says it
        raise remote_error(error, "header") from None
    start, end = last_block(tif)
    if not end:
        return
    try:
        piece = await store.get_range_async(path, start=end - 1, end=end)
    except ShortFileError as error:
        raise ShortFileError(error.size, start, end) from None
    if not piece:  # a server without Range support that sent a shorter file
        raise ShortFileError(None, start, end)


def last_block(tif) -> tuple[int, int]:
    """``(start, end)`` of the block (tile or strip) of ``tif`` that ends last in the file."""
    blocks = [(0, 0)]
    for ifd in tif.ifds:
        offsets = ifd.tile_offsets or ifd.strip_offsets or []
        counts = ifd.tile_byte_counts or ifd.strip_byte_counts or []
        blocks += [(o, o + n) for o, n in zip(offsets, counts, strict=False) if n]
    return max(blocks, key=lambda block: block[1])

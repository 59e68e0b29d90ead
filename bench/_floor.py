"""The I/O floor of the speed benchmark: the cube's windows read by async-geotiff alone.

Usage: python bench/_floor.py ITEMS_JSON
Prints one JSON line: wall seconds and how many windows were read.

For every item under the cloud limit and every band the cube reads (red, nir, scl), the window
of the box in that COG, read with async-geotiff over obstore's HTTP client, at most
:data:`IN_FLIGHT` COGs at once: headers, tiles and decoding and nothing else - no search, no
masking, no warping, no Zarr. What the cube job costs above this is ndvicube's own.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

BBOX = (82.599, 27.154, 82.617, 27.172)
BANDS = ("red", "nir", "scl")
#: COGs read at once.
IN_FLIGHT = 32


def hrefs(items_json: str) -> list[str]:
    """Asset URLs of the bands the cube reads, for the items under the cloud limit."""
    features = json.loads(Path(items_json).read_text())["features"]
    return [
        f["assets"][band]["href"]
        for f in features
        if f["properties"]["eo:cloud_cover"] < 30
        for band in BANDS
    ]


async def read_window(store, path: str, limit: asyncio.Semaphore) -> int:
    """Open one COG (a 4 KB first read, as the range reader) and read the box's window."""
    from async_geotiff import GeoTIFF, Window
    from pyproj import Transformer

    async with limit:
        tif = await GeoTIFF.open(path, store=store, prefetch=4096)
        to_cog = Transformer.from_crs("EPSG:4326", tif.crs, always_xy=True)
        xs, ys = to_cog.transform([BBOX[0], BBOX[2]], [BBOX[1], BBOX[3]])
        inverse = ~tif.transform
        cols, rows = zip(*(inverse * (x, y) for x in xs for y in ys), strict=True)
        col0, row0 = max(0, math.floor(min(cols))), max(0, math.floor(min(rows)))
        col1, row1 = min(tif.width, math.ceil(max(cols))), min(tif.height, math.ceil(max(rows)))
        if col1 <= col0 or row1 <= row0:
            return 0
        window = Window(col_off=col0, row_off=row0, width=col1 - col0, height=row1 - row0)
        await tif.read(window=window)
        return 1


async def read_all(urls: list[str]) -> int:
    from obstore.store import HTTPStore

    parts = urlsplit(urls[0])
    store = HTTPStore.from_url(
        f"{parts.scheme}://{parts.netloc}/", client_options={"allow_http": True}
    )
    limit = asyncio.Semaphore(IN_FLIGHT)
    done = await asyncio.gather(*(read_window(store, urlsplit(u).path, limit) for u in urls))
    return sum(done)


def main() -> None:
    urls = hrefs(sys.argv[1])
    # A floor of the network and the decoding: the imports are left out of the timed part.
    import async_geotiff  # noqa: F401
    import obstore  # noqa: F401
    import pyproj  # noqa: F401

    started = time.perf_counter()
    windows = asyncio.run(read_all(urls))
    print(json.dumps({"wall": time.perf_counter() - started, "windows": windows}), flush=True)
    # async-tiff 0.7 / obstore 0.12 crash the interpreter's finalisation about 1 run in 4
    # (SIGSEGV or SIGABRT "PyGILState_Release: thread state ... must be current", after all
    # work is done, measured in 8 runs): leave without finalising. A cube job on this library
    # would have to do the same, or keep its runtime from outliving the work.
    os._exit(0)


if __name__ == "__main__":
    main()

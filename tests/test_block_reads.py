"""The engine's reads per block (issue 35, item 1): what a block fetches, keeps and copies, on
real COGs served by the loopback Range server (its log counts the requests and bytes)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from odc.loader import RasterLoadParams
from rasterio.transform import from_origin

from ndvicube.cube.blocks import read_remote
from ndvicube.cube.plan import Source
from ndvicube.read import remote
from ndvicube.read.remote_window import ReadBoxes
from ndvicube.read.tiles import TILES
from ndvicube.testing.rangeserver import RangeHTTPServer

CFG = {"red": RasterLoadParams(dtype="uint16", fill_value=0, resampling="nearest")}


def write_cog(path: Path, pixels: np.ndarray, tile_px: int) -> Path:
    """A COG of ``pixels`` (uint16, nodata 0) in UTM 44N at 10 m, tiled ``tile_px``."""
    height, width = pixels.shape
    profile = dict(driver="COG", width=width, height=height, count=1, dtype="uint16", nodata=0,
                   crs="EPSG:32644", transform=from_origin(600000, 3000000, 10, 10),
                   compress="DEFLATE", blocksize=tile_px, overviews="NONE")  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(pixels, 1)
    return path


@pytest.fixture
def served(tmp_path):
    pixels = np.random.default_rng(0).integers(1, 5000, (512, 512), dtype=np.uint16)
    write_cog(tmp_path / "red.tif", pixels, 256)
    remote.reset()
    TILES.reset()
    with RangeHTTPServer(tmp_path) as server:
        yield server, f"{server.url}/red.tif", pixels
    TILES.reset()


def cached(url: str) -> set[tuple[int, int]]:
    """The tiles (x, y) of ``url`` the tile cache holds."""
    return {(x, y) for u, x, y in TILES.entries if u == url}


def test_a_tile_leaves_the_cache_once_every_block_reading_it_has(served):
    """Two blocks side by side over a COG of 2 x 2 tiles of 256 px, split at column 200: the
    left block reads the left tiles, which the right block reads too, so they stay; once the
    right block has read them, no tile of the COG is kept (issue 35: past the 256 MB cache,
    least-recently-used eviction dropped tiles a neighbour still needed, and 1024 px COGs were
    decoded 777 times for 728 tiles)."""
    _, url, pixels = served
    source = Source("item", "red", url, None, frozenset())
    grid = remote.layout(url).geobox
    rows, cols = ((0, 512),), ((0, 200), (200, 512))
    ((_, left),) = read_remote([source], grid[:, 0:200], CFG, 30.0, ReadBoxes(rows, cols, (0, 0)))
    assert (left == pixels[:, :200]).all()
    assert cached(url) == {(0, 0), (0, 1)}  # the right block reads them too
    box = grid[:, 200:512]
    ((_, right),) = read_remote([source], box, CFG, 30.0, ReadBoxes(rows, cols, (0, 200)))
    assert (right == pixels[:, 200:]).all()
    assert cached(url) == set()  # every block that reads them has
    assert TILES.counts() == {"fetched": 4, "decoded": 4}  # each tile once


def test_cog_headers_are_asked_for_before_the_store_metadata_is_written(catalog, tmp_path):
    """The build asks for every COG header as soon as it is planned, so they are in flight
    while the store's metadata and coordinates are written; asked for after, the first blocks
    waited 0.13 to 0.3 s for them (bench_tilings, 256 px COGs)."""
    import json

    from ndvicube.demo import cube_spec, rewrite_hrefs
    from ndvicube.jobs import build_cube

    doc = json.loads(catalog.items.read_text())
    doc["features"] = [
        f for f in doc["features"]
        if f["properties"]["eo:cloud_cover"] < 30 and f["properties"]["datetime"][:7] == "2023-02"
    ]  # fmt: skip
    (tmp_path / "local.json").write_text(json.dumps(doc))
    with RangeHTTPServer(catalog.root) as server:
        served = rewrite_hrefs(
            tmp_path / "local.json", tmp_path / "s.json", server.url, catalog.root
        )
        remote.reset()
        build_cube(cube_spec(), items_path=served, out=tmp_path / "c.zarr")
        headers = [r.started for r in server.requests if r.range == "bytes=0-4095"]
    metadata_written = (tmp_path / "c.zarr" / "ndvi" / ".zarray").stat().st_mtime
    # (one header is read while planning, for the COGs' tile size)
    assert len(headers) >= 6 and sum(t < metadata_written for t in headers) > len(headers) / 2


@pytest.mark.parametrize("interleave", ["pixel", "band"])
def test_tiles_are_decoded_to_the_first_band_whatever_the_interleaving(tmp_path, interleave):
    """The cache decodes tiles with async-tiff itself (no georeferenced array per tile: 44 us
    of Python each): the band in (height, width), as GDAL reads it, whether the TIFF says its
    samples are interleaved by pixel (async-tiff gives height, width, band) or stored by band
    (band, height, width)."""
    from ndvicube.read.tiles import fetch_first_band

    pixels = np.random.default_rng(1).integers(1, 5000, (1, 300, 300), dtype=np.uint16)
    profile = dict(driver="GTiff", width=300, height=300, count=1, dtype="uint16", nodata=0,
                   crs="EPSG:32644", transform=from_origin(600000, 3000000, 10, 10), tiled=True,
                   blockxsize=256, blockysize=256, compress="DEFLATE")  # fmt: skip
    profile["interleave"] = interleave
    with rasterio.open(tmp_path / "one.tif", "w", **profile) as dst:
        dst.write(pixels)
    with RangeHTTPServer(tmp_path) as server:
        tif = remote.layout(f"{server.url}/one.tif").tif
        tiles = remote.runtime().submit(fetch_first_band(tif, [(0, 0), (1, 1)])).result()
    (x0, y0, first), (x1, y1, last) = tiles
    assert (x0, y0, x1, y1) == (0, 0, 1, 1) and first.shape == last.shape == (256, 256)
    assert (first == pixels[0, :256, :256]).all() and (
        last[:44, :44] == pixels[0, 256:, 256:]
    ).all()

"""The remote reader (ndvicube.read.remote: async-geotiff over obstore) against GDAL's, on the
demo COGs over loopback: the same cube bytes, fewer requests and bytes (counted by the server's
log)."""

from __future__ import annotations

import collections
import json
import shutil
from pathlib import Path

import pytest
import rasterio

from ndvicube.compute import Compute
from ndvicube.cube.spec import Chunking, CubeSpec
from ndvicube.demo import cube_spec, rewrite_hrefs
from ndvicube.jobs import build_cube
from ndvicube.read import remote
from ndvicube.testing.cogbytes import minimum_bytes
from ndvicube.testing.rangeserver import RangeHTTPServer

BOX = cube_spec().bbox


def subset(catalog, out: Path, month: str = "2023-02") -> Path:
    """Items of one month under the cloud limit (local hrefs)."""
    doc = json.loads(catalog.items.read_text())
    doc["features"] = [
        f
        for f in doc["features"]
        if f["properties"]["eo:cloud_cover"] < 30 and f["properties"]["datetime"].startswith(month)
    ]
    out.write_text(json.dumps(doc))
    return out


def chunk_bytes(store: Path) -> dict[str, bytes]:
    """Every chunk file of every variable of a store."""
    return {
        str(p.relative_to(store)): p.read_bytes()
        for p in sorted(store.glob("*/*.*.*"))
        if p.parent.name not in ("time", "x", "y")
    }


def build_with(reader: str, server, items: Path, work: Path, spec: CubeSpec | None = None) -> list:
    """Build a cube (``spec``, else the demo's) from the served COGs with ``reader``; return
    the COG requests it made."""
    remote.reset()
    server.reset_log()
    shutil.rmtree(work / f"{reader}.zarr", ignore_errors=True)
    build_cube(
        spec or cube_spec(),
        items_path=items,
        out=work / f"{reader}.zarr",
        compute=Compute(reader=reader),
    )
    return [r for r in server.requests if r.path.endswith(".tif")]


@pytest.fixture(scope="module")
def reads(catalog, tmp_path_factory):
    """One month built with each reader from the same served COGs, NDVI and NDREI (20 m)."""
    work = tmp_path_factory.mktemp("cogs")
    with RangeHTTPServer(catalog.root) as server:
        local = subset(catalog, work / "local.json")
        served = rewrite_hrefs(local, work / "served.json", server.url, catalog.root)
        spec = cube_spec(indices=("NDVI", "NDREI"), cube=Chunking(spatial_chunk=64))
        requests = {r: build_with(r, server, served, work, spec) for r in ("gdal", "range")}
    return {"work": work, "requests": requests}


def test_range_reader_gives_the_cube_gdal_gives_byte_for_byte(reads):
    work = reads["work"]
    gdal, ranged = chunk_bytes(work / "gdal.zarr"), chunk_bytes(work / "range.zarr")
    assert {k.split("/")[0] for k in gdal} == {"ndvi", "ndrei"}  # a 10 m and a 20 m band warped
    ndvi = [k for k in gdal if k.startswith("ndvi/")]
    assert gdal == ranged and len(ndvi) >= 9 and len(gdal) == 2 * len(ndvi)


def test_range_reader_makes_two_requests_per_cog_and_no_head(reads):
    ranged = reads["requests"]["range"]
    per_cog = collections.Counter(r.path for r in ranged)
    assert {r.method for r in ranged} == {"GET"} and all(r.status == 206 for r in ranged)
    assert set(per_cog.values()) == {2}  # the header, then one run of tiles
    assert {r.range for r in ranged if r.range.startswith("bytes=0-")} == {"bytes=0-4095"}
    gdal = reads["requests"]["gdal"]
    assert {r.path for r in gdal} == set(per_cog)  # the same COGs: B04, B05, B08, SCL
    assert len(gdal) / len(per_cog) >= 2.5 and any(r.method == "HEAD" for r in gdal)


def test_range_reader_reads_within_a_tenth_of_the_minimum_bytes(reads, catalog):
    ranged, gdal = reads["requests"]["range"], reads["requests"]["gdal"]
    paths = {r.path for r in ranged}
    minimum = sum(minimum_bytes(catalog.root / p.lstrip("/"), BOX) for p in paths)
    got = sum(r.bytes_sent for r in ranged)
    assert minimum <= got <= 1.1 * minimum
    assert got < sum(r.bytes_sent for r in gdal)


def test_a_header_longer_than_the_first_read_is_fetched_on_demand(catalog, tmp_path, monkeypatch):
    monkeypatch.setattr(remote, "HEADER_BYTES", 256)  # the demo's headers are 600-800 bytes
    with RangeHTTPServer(catalog.root) as server:
        local = subset(catalog, tmp_path / "local.json")
        served = rewrite_hrefs(local, tmp_path / "served.json", server.url, catalog.root)
        ranged = build_with("range", server, served, tmp_path)
        build_with("gdal", server, served, tmp_path)
    assert chunk_bytes(tmp_path / "range.zarr") == chunk_bytes(tmp_path / "gdal.zarr")
    per_cog = collections.Counter(r.path for r in ranged)
    assert min(per_cog.values()) >= 3  # header in two or more pieces, then the tiles


def test_a_coarser_cube_reads_overviews_through_gdal(catalog, tmp_path):
    with RangeHTTPServer(catalog.root) as server:
        local = subset(catalog, tmp_path / "local.json")
        served = rewrite_hrefs(local, tmp_path / "served.json", server.url, catalog.root)
        coarse = cube_spec(resolution=20)
        ranged = build_with("range", server, served, tmp_path, coarse)
        build_with("gdal", server, served, tmp_path, coarse)
    assert chunk_bytes(tmp_path / "range.zarr") == chunk_bytes(tmp_path / "gdal.zarr")
    # 10 m bands at 20 m: GDAL's overview read (with its HEAD); SCL is 20 m: read by ranges.
    heads = {r.path.rsplit("/", 1)[1] for r in ranged if r.method == "HEAD"}
    assert heads == {"B04.tif", "B08.tif"}


def test_cog_layout_matches_what_gdal_reads(catalog):
    with RangeHTTPServer(catalog.root) as server:
        local = subset(catalog, Path(catalog.root) / "one.json")
        feature = json.loads(local.read_text())["features"][0]
        for key in ("red", "scl"):
            path = Path(feature["assets"][key]["href"])
            url = f"{server.url}/{path.relative_to(Path(catalog.root).resolve()).as_posix()}"
            remote.forget(url)
            layout = remote.layout(url)
            with rasterio.open(path) as src:
                assert layout.geobox.shape == src.shape and layout.dtype == src.dtypes[0]
                assert tuple(layout.geobox.transform)[:6] == tuple(src.transform)[:6]
                assert layout.geobox.crs.epsg == src.crs.to_epsg() and layout.nodata == src.nodata
                window = ((40, 300), (10, 90)) if key == "red" else ((20, 150), (5, 45))
                pixels = remote.read_pixels(url, *(slice(*w) for w in window))
                assert (pixels == src.read(1, window=window)).all()


def test_real_sentinel2_cogs_read_remotely_equal_gdal(shared_fixtures):
    """The team's real L2A COGs (512 px tiles, overviews, 1.2 KB headers) over HTTP."""
    scene = shared_fixtures / "real-cogs" / "S2A_29RKH_20200219_0_L2A"
    with RangeHTTPServer(scene) as server:
        for name, window in (
            ("B04.tif", ((300, 800), (450, 1000))),
            ("SCL.tif", ((0, 549), (7, 300))),
        ):
            url = f"{server.url}/{name}"
            remote.forget(url)
            server.reset_log()
            layout = remote.layout(url)
            pixels = remote.read_pixels(url, *(slice(*w) for w in window))
            log = [(r.method, r.range) for r in server.requests]
            with rasterio.open(scene / name) as src:
                assert layout.tif.tile_height == src.block_shapes[0][0]
                assert layout.nodata == src.nodata
                assert (pixels == src.read(1, window=window)).all()
            assert log[0] == ("GET", "bytes=0-4095") and all(m == "GET" for m, _ in log)
            assert len(log) <= 3  # the header, then the tiles the window touches, coalesced


def test_a_tiff_whose_directory_is_not_at_the_start_is_left_to_gdal(tmp_path):
    """A plain GeoTIFF may keep its directory at the end: async-tiff would fetch every byte up
    to it (measured: 4.7 MB for a 4.7 MB file), so the reader gives it to GDAL after 4 KB."""
    import struct

    import numpy as np
    from rasterio.transform import from_origin

    pixels = np.random.default_rng(0).integers(1, 5000, (1500, 1500), dtype=np.uint16)
    profile = dict(driver="GTiff", width=1500, height=1500, count=1, dtype="uint16", nodata=0)
    profile |= dict(crs="EPSG:32644", transform=from_origin(600000, 3000000, 10, 10), tiled=True)
    with rasterio.open(tmp_path / "start.tif", "w", **profile) as dst:
        dst.write(pixels, 1)
    data = bytearray((tmp_path / "start.tif").read_bytes())
    first = struct.unpack("<I", data[4:8])[0]  # a classic little-endian TIFF: move its IFD
    entries = struct.unpack("<H", data[first : first + 2])[0]
    directory = data[first : first + 2 + 12 * entries + 4]
    data[4:8] = struct.pack("<I", len(data))
    (tmp_path / "end.tif").write_bytes(bytes(data + directory))
    with rasterio.open(tmp_path / "end.tif") as src:
        assert (src.read(1) == pixels).all()  # still a valid GeoTIFF
    with RangeHTTPServer(tmp_path) as server:
        assert remote.layout(f"{server.url}/start.tif").geobox.shape == (1500, 1500)
        server.reset_log()
        with pytest.raises(remote.UseGdal, match="far from the start"):
            remote.layout(f"{server.url}/end.tif")
        assert [(r.range, r.bytes_sent) for r in server.requests] == [("bytes=0-4095", 4096)]


# --- the block engine: headers up front, each block's tiles in flight at once, few blocks ---


def blocked_build(catalog, tmp_path, caplog):
    """Two months in blocks of 1 solar day, COGs at 30 ms per request; for each COG request
    its start, end, the block of its item and its range, and the time each block was written."""
    import logging

    from ndvicube.cube.store import DAYS_ATTR, read_attrs

    doc = json.loads(catalog.items.read_text())
    doc["features"] = [
        f for f in doc["features"]
        if f["properties"]["eo:cloud_cover"] < 30
        and f["properties"]["datetime"][:7] in ("2023-02", "2023-03")
    ]  # fmt: skip
    (tmp_path / "local.json").write_text(json.dumps(doc))
    with RangeHTTPServer(catalog.root, latency_s=0.03) as server:
        served = rewrite_hrefs(
            tmp_path / "local.json", tmp_path / "s.json", server.url, catalog.root
        )
        remote.reset()
        server.reset_log()
        with caplog.at_level(logging.INFO, logger="ndvicube.cube.store"):
            spec = cube_spec(cube=Chunking(time_chunk=1))
            build_cube(spec, items_path=served, out=tmp_path / "c.zarr")
        requests = [r for r in server.requests if r.path.endswith(".tif")]
    days = read_attrs(tmp_path / "c.zarr")[DAYS_ATTR]
    block_of = {i: n for n, day in enumerate(sorted(days)) for i in days[day]}
    written = [r.created for r in caplog.records if "cube progress" in r.getMessage()]
    cogs = [
        (r.started, r.started + r.duration, block_of[r.path.split("/")[2]], r.range)
        for r in requests
    ]
    return cogs, written


def test_every_header_is_requested_up_front_and_a_blocks_tiles_at_once(catalog, tmp_path, caplog):
    cogs, written = blocked_build(catalog, tmp_path, caplog)
    headers = [t for t, _, _, rng in cogs if rng == "bytes=0-4095"]
    tiles = [(t, block) for t, _, block, rng in cogs if rng != "bytes=0-4095"]
    assert len(written) >= 8 and len(headers) == len(tiles) >= 40  # 2 requests per COG
    # Every header was asked for before the first block was written, within a few round trips.
    assert max(headers) < written[0] and max(headers) - min(headers) < 1.0
    # A block asks for the tiles of all its COGs at once: one after another they would start
    # a round trip (30 ms) apart, 90 ms or more for its 3 or more COGs.
    for block in {b for _, b in tiles}:
        starts = [t for t, b in tiles if b == block]
        assert len(starts) >= 3 and max(starts) - min(starts) < 0.06, block


def test_at_most_blocks_at_once_blocks_read_at_a_time(catalog, tmp_path, caplog):
    """Memory is bounded by the blocks computed at once (Compute.blocks_at_once: 2 on one
    core), not by the number of blocks: no third block's tiles are in flight meanwhile."""
    cogs, _ = blocked_build(catalog, tmp_path, caplog)
    spans: dict[int, list[float]] = {}
    for start, end, block, rng in cogs:
        if rng != "bytes=0-4095":
            span = spans.setdefault(block, [start, end])
            span[0], span[1] = min(span[0], start), max(span[1], end)
    assert len(spans) >= 8 and Compute().blocks_at_once == 2
    overlap = max(
        sum(1 for s, e in spans.values() if s <= moment < e) for moment, _ in spans.values()
    )
    assert overlap == 2


def test_write_blocks_are_at_least_1024_px_whatever_the_cog_tiles():
    """COGs tiled 256 or 512 px still get blocks of 1024 px (issue 35: 512 px blocks made the
    job 2x its floor), within the cube's size and whole chunks; 2048 px tiles, 2048."""
    from types import SimpleNamespace

    from ndvicube.cube.engine import block_size

    def plan(chunk: int, shape: tuple[int, int]) -> SimpleNamespace:
        spec = SimpleNamespace(cube=SimpleNamespace(spatial_chunk=chunk))
        return SimpleNamespace(spec=spec, shape=shape, reader="gdal", deadline_s=1.0)

    assert block_size(plan(256, (2036, 2037)), None) == 1024  # tile unknown: the chunk, 256
    assert block_size(plan(512, (2036, 2037)), None) == 1024
    assert block_size(plan(384, (2036, 2037)), None) == 1152  # whole chunks
    assert block_size(plan(256, (300, 200)), None) == 512  # the cube's own size, in chunks
    assert block_size(plan(2048, (4096, 4096)), None) == 2048

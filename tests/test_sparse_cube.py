"""A field set's sparse cube (issue 26): only the chunks its fields touch, equal to the dense cube
there, read by both readers; reruns that read only new chunks; tiles that share the chunks; a
field set across two UTM zones.

Ground truth is the dense cube of the same grid built from the same items (itself checked against
the demo catalog's truth elsewhere): a chunk of a sparse cube must hold the same float32 values,
and a chunk no field touches must be absent from the store.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections import Counter

import geopandas as gpd
import numpy as np
import pytest
import shapely

from ndvicube.compute import Compute
from ndvicube.cube.spec import Chunking, CloudMask
from ndvicube.cube.store import CHUNKS_ATTR, join_sparse_tiles, open_cube, read_attrs
from ndvicube.cube.tiles import Tile
from ndvicube.fields.chunks import split_chunks, touched_chunks
from ndvicube.jobs import build_cube
from ndvicube.testing.rangeserver import RangeHTTPServer
from tests.fault_helpers import CUBE, items_subset

CHUNK = 64
#: 64 px chunks (the demo box is 4 x 3 of them) and a 30 m SCL buffer, so a chunk's mask needs
#: its neighbours' pixels (the margin a sparse block must read).
SPEC = dataclasses.replace(
    CUBE,
    cube=Chunking(time_chunk=8, spatial_chunk=CHUNK),
    cloud_mask=CloudMask(CUBE.cloud_mask.scl_classes, buffer_m=30.0),
)


@pytest.fixture(scope="module")
def dense(catalog, tmp_path_factory):
    """The dense cube of the demo box (two months, local files through GDAL)."""
    work = tmp_path_factory.mktemp("dense")
    items = items_subset(catalog, work / "items.json")
    build_cube(SPEC, items_path=items, out=work / "ndvi.zarr", compute=Compute(reader="gdal"))
    return work / "ndvi.zarr"


def fields_file(path, dense_store, boxes: dict[str, tuple[float, float, float, float]]):
    """GeoParquet of rectangular fields, given in metres from the grid's north-west corner
    (x0, y0 east and south, x1, y1 likewise), in EPSG:4326 (the job reprojects them)."""
    cube = open_cube(dense_store)
    west, north = float(cube.x[0]) - 5, float(cube.y[0]) + 5
    geoms = [shapely.box(west + a, north - d, west + c, north - b) for a, b, c, d in boxes.values()]
    frame = gpd.GeoDataFrame({"id": list(boxes)}, geometry=geoms, crs=SPEC.crs)
    frame.to_crs("EPSG:4326").to_parquet(path)
    return path


def present(store) -> list[tuple[int, int]]:
    return [tuple(c) for c in read_attrs(store)[CHUNKS_ATTR]]


def assert_equal_where_present(sparse_store, dense_store) -> None:
    """Present chunks hold the dense cube's values; absent ones have no file and read NaN."""
    got, want = open_cube(sparse_store)["ndvi"].values, open_cube(dense_store)["ndvi"].values
    assert got.shape == want.shape
    chunks = present(sparse_store)
    for r, c in chunks:
        window = (slice(None), slice(r * CHUNK, (r + 1) * CHUNK), slice(c * CHUNK, (c + 1) * CHUNK))
        np.testing.assert_array_equal(got[window], want[window])
        got[window] = np.nan
    assert np.isnan(got).all()
    files = {tuple(map(int, p.name.split(".")[1:])) for p in (sparse_store / "ndvi").glob("*.*.*")}
    assert files == set(chunks)


#: Field A: 80 m x 100 m inside chunk (0, 0), 20 m from its east edge (the buffer reaches over).
#: Field B: astride chunks (2, 1) and (2, 2). Field C: a 4 m x 4 m sliver in chunk (3, 0).
FIELDS = {
    "A": (450, 100, 530, 200),
    "B": (1230, 1400, 1330, 1500),
    "C": (100, 2000, 104, 2004),
}


def test_touched_chunks_are_those_the_fields_meet(dense, tmp_path):
    path = fields_file(tmp_path / "f.parquet", dense, FIELDS)
    from ndvicube.cube.load import area_geobox

    geobox = area_geobox(SPEC)
    geoms = gpd.read_parquet(path).to_crs(SPEC.crs).geometry
    assert touched_chunks(geoms, [], geobox, CHUNK) == [(0, 0), (2, 1), (2, 2), (3, 0)]
    # A point joins the chunk of its pixel; a point off the grid adds nothing.
    x, y = geobox.affine * (150.5, 10.5)  # pixel (row 10, column 150): chunk (0, 2)
    assert touched_chunks([], [(x, y), (x + 1e5, y)], geobox, CHUNK) == [(0, 2)]


@pytest.mark.parametrize("reader", ["range", "gdal"])
def test_sparse_cube_holds_the_dense_values_of_the_touched_chunks_only(
    catalog, dense, tmp_path, reader
):
    fields = fields_file(tmp_path / "f.parquet", dense, FIELDS)
    with RangeHTTPServer(catalog.root) as server:
        items = items_subset(catalog, tmp_path / "items.json", base_url=server.url)
        build_cube(
            SPEC,
            items_path=items,
            out=tmp_path / "ndvi.zarr",
            fields=fields,
            field_points=[],
            compute=Compute(reader=reader),
        )
    assert present(tmp_path / "ndvi.zarr") == [(0, 0), (2, 1), (2, 2), (3, 0)]
    assert_equal_where_present(tmp_path / "ndvi.zarr", dense)


def test_rerun_after_adding_fields_reads_only_the_new_chunks(catalog, dense, tmp_path):
    first = fields_file(tmp_path / "first.parquet", dense, {"A": FIELDS["A"]})
    both = fields_file(tmp_path / "both.parquet", dense, {k: FIELDS[k] for k in "AB"})
    only_new = fields_file(tmp_path / "new.parquet", dense, {"B": FIELDS["B"]})
    with RangeHTTPServer(catalog.root) as server:
        items = items_subset(catalog, tmp_path / "items.json", base_url=server.url)

        def build(fields, out):
            server.reset_log()
            build_cube(SPEC, items_path=items, out=out, fields=fields, field_points=[])
            return Counter((r.path, r.range) for r in server.requests)

        build(first, tmp_path / "ndvi.zarr")
        rerun = build(both, tmp_path / "ndvi.zarr")
        fresh = build(only_new, tmp_path / "new.zarr")
        unchanged = build(both, tmp_path / "ndvi.zarr")
    # Exactly the requests a cube of the new field alone makes: none for chunk (0, 0).
    assert rerun and rerun == fresh
    assert not unchanged
    assert present(tmp_path / "ndvi.zarr") == [(0, 0), (2, 1), (2, 2)]
    assert_equal_where_present(tmp_path / "ndvi.zarr", dense)


def test_split_chunks_shares_them_evenly_in_order():
    chunks = [(0, 0), (0, 5), (3, 1), (3, 2), (7, 7)]
    assert split_chunks(chunks, 2) == [[(0, 0), (0, 5), (3, 1)], [(3, 2), (7, 7)]]
    assert split_chunks(chunks, 4) == [[(0, 0), (0, 5)], [(3, 1)], [(3, 2)], [(7, 7)]]
    assert split_chunks(chunks[:1], 2) == [[(0, 0)], []]


def test_tiles_of_a_field_set_split_its_chunks_and_join_by_links(catalog, dense, tmp_path):
    fields = fields_file(tmp_path / "f.parquet", dense, FIELDS)
    items = items_subset(catalog, tmp_path / "items.json")
    tiles = {}
    for tile in (Tile(0, 0, 1, 2), Tile(0, 1, 1, 2)):
        out = tmp_path / f"{tile.name}.zarr"
        spec = dataclasses.replace(SPEC, tile=tile)
        build_cube(spec, items_path=items, out=out, fields=fields, field_points=[])
        tiles[tile] = out
    # Two chunks each, on the whole grid: the tiles cost the same whatever the fields' layout.
    assert [present(p) for p in tiles.values()] == [[(0, 0), (2, 1)], [(2, 2), (3, 0)]]
    joined = join_sparse_tiles(tiles, tmp_path / "joined.zarr", crs=SPEC.crs)
    assert present(joined) == [(0, 0), (2, 1), (2, 2), (3, 0)]
    assert_equal_where_present(joined, dense)
    linked = [p for p in (joined / "ndvi").glob("*.*.*")]
    assert linked and all(os.stat(p).st_nlink == 2 for p in linked)


def test_a_field_set_across_two_utm_zones_is_one_sparse_grid(tmp_path):
    """Fields on both sides of 84 E: one grid in the zone of the box's centre (the choice
    docs/fields.md measures), the other zone's scenes warped onto it, values equal the dense
    cube's."""
    from pyproj import Transformer

    from tests.test_faults import STRADDLE, _zone_item

    items = [_zone_item(tmp_path, 32644, "2023-03-02"), _zone_item(tmp_path, 32645, "2023-03-07")]
    (tmp_path / "items.json").write_text(
        json.dumps({"type": "FeatureCollection", "features": items})
    )
    west = shapely.box(83.9905, 27.1555, 83.9925, 27.1575)  # zone 44
    east = shapely.box(84.0075, 27.1695, 84.0095, 27.1715)  # zone 45
    frame = gpd.GeoDataFrame({"id": ["w", "e"]}, geometry=[west, east], crs="EPSG:4326")
    frame.to_parquet(tmp_path / "f.parquet")
    spec = dataclasses.replace(SPEC, bbox=STRADDLE, crs="EPSG:32645")
    build_cube(spec, items_path=tmp_path / "items.json", out=tmp_path / "dense.zarr")
    build_cube(
        spec,
        items_path=tmp_path / "items.json",
        out=tmp_path / "ndvi.zarr",
        fields=tmp_path / "f.parquet",
        field_points=[],
    )
    chunks = present(tmp_path / "ndvi.zarr")
    rows, cols = open_cube(tmp_path / "dense.zarr")["ndvi"].data.numblocks[1:]
    assert 2 <= len(chunks) < rows * cols
    assert_equal_where_present(tmp_path / "ndvi.zarr", tmp_path / "dense.zarr")
    # Both fields' pixels hold values on both days (each day from one zone's scene).
    cube = open_cube(tmp_path / "ndvi.zarr")["ndvi"]
    to_grid = Transformer.from_crs("EPSG:4326", "EPSG:32645", always_xy=True)
    for geom in (west, east):
        x, y = to_grid.transform(*geom.centroid.coords[0])
        assert np.isfinite(cube.sel(x=x, y=y, method="nearest").values).all()

"""A tiled field set run by Snakemake over loopback servers (issue 26): the jobs it plans, its
sparse cube against the dense cube of its box, and a rerun after adding a field that reads only
the new field's chunks, whichever tile they fall to."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from ndvicube.compute import Compute
from ndvicube.cube.spec import Chunking, CubeSpec
from ndvicube.cube.store import CHUNKS_ATTR, open_cube, read_attrs
from ndvicube.jobs import build_cube
from ndvicube.testing.rangeserver import RangeHTTPServer
from tests.workflow_helpers import (
    demo_config,
    edit_config,
    planned_jobs,
    served_workdir,
    snakemake,
)

CHUNK = 64
#: Fields in lon/lat inside the demo box (two corners and its middle), a bowtie the fields job
#: repairs, and one east of every tile, rejected.
FIELDS = {
    "nw": shapely.box(82.6000, 27.1710, 82.6006, 27.1715),
    "se": shapely.box(82.6160, 27.1545, 82.6166, 27.1550),
    "mid": shapely.box(82.6080, 27.1630, 82.6086, 27.1635),
    "bowtie": shapely.Polygon(
        [(82.6090, 27.1630), (82.6096, 27.1636), (82.6096, 27.1630), (82.6090, 27.1636)]
    ),
    "away": shapely.box(82.6400, 27.1630, 82.6406, 27.1635),
}
#: Added by the rerun: two fields in chunks of the first chunk row that no earlier field
#: touches. They sort before the others, so the even shares move a chunk from tile 0-0 to 0-1:
#: that tile copies it from the area's cube, it does not read it again.
ADDED = {
    "n1": shapely.box(82.6080, 27.1705, 82.6086, 27.1710),
    "n2": shapely.box(82.6150, 27.1705, 82.6156, 27.1710),
}


def write_fields(path, fields) -> None:
    frame = gpd.GeoDataFrame({"id": list(fields)}, geometry=list(fields.values()), crs=4326)
    frame.to_file(path, driver="GeoJSON")


@pytest.fixture(scope="module")
def served(catalog):
    with RangeHTTPServer(catalog.root) as cogs:
        yield cogs


@pytest.fixture(scope="module")
def first_run(catalog, served, tmp_path_factory):
    work = tmp_path_factory.mktemp("fieldset")
    write_fields(work / "fields.geojson", FIELDS)
    config = demo_config("catalog.json", [])
    config["areas"] = {"parcels": {"polygons": "fields.geojson", "tiles": [1, 2]}}
    config["cube"] = {"spatial_chunk": CHUNK}
    served_workdir(catalog, served, work, config)
    dry = snakemake(work, work / "config.yaml", "--dry-run")
    assert dry.returncode == 0, dry.stderr[-3000:]
    done = snakemake(work, work / "config.yaml", "--cores", "2")
    assert done.returncode == 0, done.stderr[-3000:]
    return work, planned_jobs(dry)


def test_a_tiled_field_set_plans_exactly_these_jobs(first_run):
    _, jobs = first_run
    assert jobs == {
        "all": 1,
        "search": 1,
        "fields": 1,
        "cube_tile": 2,
        "join_tiles": 1,
        "polygon_tables": 1,
        "quicklook": 1,
    }


def test_its_cube_is_the_dense_cube_of_its_box_where_fields_are(first_run, catalog, tmp_path):
    work, _ = first_run
    store = work / "results/parcels/ndvi.zarr"
    attrs = read_attrs(store)
    present = [tuple(c) for c in attrs[CHUNKS_ATTR]]
    rejected = pd.read_csv(work / "results/parcels/fields_rejected.csv")
    assert rejected.values.tolist() == [["away", 5, "outside every scene"]]
    # The dense cube of the same grid: the box of the accepted fields (issue 33: "away",
    # rejected after the search, no longer widens it), local files, GDAL.
    kept = gpd.read_parquet(work / "results/parcels/fields.parquet").to_crs(4326)
    area = attrs["ndvicube:config"]["area"]
    assert area["bbox"][2] > 82.64 > kept.total_bounds[2]  # the config's box still counts it
    spec = CubeSpec(bbox=tuple(kept.total_bounds), crs=area["crs"], cube=Chunking(8, CHUNK))
    local = json.loads((work / "results/parcels/items.json").read_text())
    for feature in local["features"]:
        for asset in feature["assets"].values():
            asset["href"] = str(catalog.root) + "/" + asset["href"].split("/", 3)[3]
    (tmp_path / "items.json").write_text(json.dumps(local))
    build_cube(spec, items_path=tmp_path / "items.json", out=tmp_path / "dense.zarr",
               compute=Compute(reader="gdal"))  # fmt: skip
    got, want = open_cube(store)["ndvi"].values, open_cube(tmp_path / "dense.zarr")["ndvi"].values
    assert got.shape == want.shape and 3 <= len(present) < got[0].size / CHUNK**2
    for r, c in present:
        window = (slice(None), slice(r * CHUNK, (r + 1) * CHUNK), slice(c * CHUNK, (c + 1) * CHUNK))
        np.testing.assert_array_equal(got[window], want[window])
        got[window] = np.nan
    assert np.isnan(got).all()
    # Both tiles hold a share, and the polygon tables cover the four kept fields.
    shares = [read_attrs(work / f"results/parcels/tiles/0-{c}.zarr")[CHUNKS_ATTR] for c in (0, 1)]
    assert sorted(map(tuple, shares[0] + shares[1])) == present
    assert abs(len(shares[0]) - len(shares[1])) <= 1
    raw = pd.read_csv(work / "results/parcels/polygons_raw.csv")
    assert sorted(raw["polygon"].unique()) == ["bowtie", "mid", "nw", "se"]
    assert (work / "results/parcels/fields_overview.png").stat().st_size > 10_000


def test_adding_a_field_reads_only_its_chunks(first_run, served, catalog, tmp_path):
    import shutil

    work = tmp_path / "work"
    shutil.copytree(first_run[0], work, symlinks=True)
    before = {tuple(c) for c in read_attrs(work / "results/parcels/ndvi.zarr")[CHUNKS_ATTR]}
    write_fields(work / "fields.geojson", FIELDS | ADDED)
    edit_config(work)  # unchanged config: the fields file alone changed
    dry = snakemake(work, work / "config.yaml", "--dry-run")
    assert planned_jobs(dry) == {
        "all": 1,
        "fields": 1,
        "cube_tile": 2,
        "join_tiles": 1,
        "polygon_tables": 1,
        "quicklook": 1,
    }
    served.reset_log()
    done = snakemake(work, work / "config.yaml", "--cores", "2")
    assert done.returncode == 0, done.stderr[-3000:]
    rerun = Counter((r.path, r.range) for r in served.requests if r.path.endswith(".tif"))
    after = {tuple(c) for c in read_attrs(work / "results/parcels/ndvi.zarr")[CHUNKS_ATTR]}
    new = after - before
    assert new == {(0, 1), (0, 2)} and before < after
    shares = [read_attrs(work / f"results/parcels/tiles/0-{c}.zarr")[CHUNKS_ATTR] for c in (0, 1)]
    assert [1, 1] in before_shares(first_run[0])[0] and [1, 1] in shares[1]  # it moved
    # What the cube of the new chunks alone reads, in one process: the same requests.
    attrs = read_attrs(work / "results/parcels/ndvi.zarr")
    area = attrs["ndvicube:config"]["area"]
    spec = CubeSpec(bbox=tuple(area["bbox"]), crs=area["crs"], cube=Chunking(8, CHUNK))
    served.reset_log()
    build_cube(
        dataclasses.replace(spec, chunks=tuple(sorted(new))),
        items_path=work / "results/parcels/items.json",
        out=tmp_path / "new.zarr",
    )
    alone = Counter((r.path, r.range) for r in served.requests if r.path.endswith(".tif"))
    assert rerun and rerun == alone
    raw = pd.read_csv(work / "results/parcels/polygons_raw.csv")
    assert {"n1", "n2"} <= set(raw["polygon"])


def before_shares(work) -> list[list]:
    """The tiles' chunk shares of the first run."""
    return [read_attrs(work / f"results/parcels/tiles/0-{c}.zarr")[CHUNKS_ATTR] for c in (0, 1)]

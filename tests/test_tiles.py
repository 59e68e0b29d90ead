"""One area's cube split into tile jobs and joined into one store by hard links (issue 5).

The workflow runs two areas over the same box and chunking: ``tiled`` split 2 x 2, ``whole`` in
one job. The joined store must equal the whole build byte for byte (every chunk file, every
coordinate), hold the ground truth, and share its chunk files' disk blocks with the tiles.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from ndvicube.config import validate_config
from ndvicube.cube.tiles import Tile, chunk_ranges, tile_window
from ndvicube.errors import ConfigError
from tests.workflow_helpers import (
    POINTS,
    demo_config,
    planned_jobs,
    snakemake,
    truth_on_cube_days,
    write_config,
)

BBOX = [82.599, 27.154, 82.617, 27.172]  # 202 x 182 pixels: 4 x 3 chunks of 64


def test_chunk_ranges_partition_the_axis_on_chunk_edges():
    ranges = chunk_ranges(202, 64, 2)  # 4 chunks: 2 + 2
    assert ranges == [range(0, 128), range(128, 202)]
    ranges = chunk_ranges(182, 64, 2)  # 3 chunks: 2 + 1
    assert ranges == [range(0, 128), range(128, 182)]
    five = chunk_ranges(1000, 64, 5)  # 16 chunks: 4 + 3 + 3 + 3 + 3
    assert [len(r) for r in five] == [256, 192, 192, 192, 168]
    assert [i for r in five for i in r] == list(range(1000))
    assert all(r.start % 64 == 0 for r in five)
    with pytest.raises(ValueError, match="cannot split 3 chunk"):
        chunk_ranges(182, 64, 4)


def test_tile_window_of_the_south_east_tile():
    assert tile_window(Tile(1, 1, 2, 2), (202, 182), 64) == (slice(128, 202), slice(128, 182))


def test_more_tiles_than_chunks_is_refused_naming_the_value():
    config = demo_config("items.json", [{"id": "p", "lon": 82.608, "lat": 27.163}])
    config["areas"]["seed"]["tiles"] = [2, 4]
    config["cube"] = {"spatial_chunk": 64}
    with pytest.raises(ConfigError, match=r"areas.seed.tiles is \[2, 4\].* 4 x 3 chunks of 64"):
        validate_config(config)


@pytest.fixture(scope="module")
def tiled_run(catalog, tmp_path_factory):
    """One run building the box as 2 x 2 tiles (area `tiled`) and whole (area `whole`)."""
    work = tmp_path_factory.mktemp("work-tiles")
    (work / "pts.csv").write_text(catalog.points.read_text())
    config = demo_config(str(catalog.items), "pts.csv")
    config["cube"] = {"spatial_chunk": 64}
    config["areas"] = {
        "tiled": {"bbox": BBOX, "points": "pts.csv", "tiles": [2, 2]},
        "whole": {"bbox": BBOX, "points": "pts.csv"},
    }
    cfg = write_config(work / "config.yaml", config)
    # The whole area's cube target is the rule's output: ndvi.zarr is the link to its newest
    # version, which no rule declares (Snakemake would delete it while the cube job runs).
    dry = snakemake(
        work, cfg, "--dry-run", "results/tiled/series_raw.csv", "results/whole/cube/workflow.zarr"
    )
    real = snakemake(work, cfg, "--cores", "2")
    assert real.returncode == 0, real.stderr[-3000:]
    again = snakemake(work, cfg, "--dry-run")
    return {"work": work, "dry": dry, "again": again}


def test_tiles_are_separate_jobs_joined_once(tiled_run):
    assert planned_jobs(tiled_run["dry"]) == {
        "search": 2,  # one per area, whatever the months
        "cube": 1,  # the whole area
        "cube_tile": 4,  # the tiled area, 2 x 2
        "join_tiles": 1,
        "tables": 1,
    }
    assert "Nothing to be done" in tiled_run["again"].stdout + tiled_run["again"].stderr


def test_joined_cube_is_byte_identical_to_the_whole_build(tiled_run):
    tiled = tiled_run["work"] / "results/tiled/ndvi.zarr"
    whole = tiled_run["work"] / "results/whole/ndvi.zarr"
    for variable in ("ndvi", "time", "scenes", "x", "y", "spatial_ref"):
        names = sorted(p.name for p in (whole / variable).iterdir())
        assert sorted(p.name for p in (tiled / variable).iterdir()) == names
        for name in names:
            assert (tiled / variable / name).read_bytes() == (whole / variable / name).read_bytes()
    assert len(list((whole / "ndvi").glob("*.*.*"))) > 4 * 3  # several time blocks of 4 x 3


def test_joined_chunks_are_hard_links_to_the_tiles(tiled_run):
    results = tiled_run["work"] / "results/tiled"
    tile_chunks = {os.stat(p).st_ino for p in (results / "tiles").glob("*.zarr/ndvi/*.*.*")}
    joined = list((results / "ndvi.zarr/ndvi").glob("*.*.*"))
    assert joined and {os.stat(p).st_ino for p in joined} == tile_chunks
    # The south-east tile's chunk 0.0.0 is the area's chunk 0.2.2 (row offset 2, column 2).
    assert os.path.samefile(results / "tiles/1-1.zarr/ndvi/0.0.0", results / "ndvi.zarr/ndvi/0.2.2")


def test_tiled_series_equal_ground_truth(tiled_run, catalog):
    raw = pd.read_csv(tiled_run["work"] / "results/tiled/series_raw.csv", parse_dates=["time"])
    want = truth_on_cube_days(catalog, sorted(raw["time"].unique()))
    merged = raw.merge(want, on=["point", "time"], suffixes=("", "_truth"), validate="1:1")
    assert len(merged) == len(raw) == len(POINTS) * raw["time"].nunique()
    np.testing.assert_allclose(merged["ndvi"], merged["ndvi_truth"], atol=1e-5, equal_nan=True)
    assert merged["ndvi"].notna().sum() > 100


def test_tiles_with_a_cloud_buffer_equal_the_whole_build(catalog, tmp_path):
    """A tile reads a margin of the buffer's width, so clouds across its border still count."""
    import json

    from ndvicube.cube.spec import Chunking, CloudMask
    from ndvicube.cube.store import join_tiles, open_cube
    from ndvicube.cube.tiles import all_tiles
    from ndvicube.demo import cube_spec
    from ndvicube.jobs import build_cube

    doc = json.loads(catalog.items.read_text())
    doc["features"] = [f for f in doc["features"] if f["properties"]["eo:cloud_cover"] < 30]
    (tmp_path / "items.json").write_text(json.dumps(doc))
    items = tmp_path / "items.json"
    chunking, buffer = Chunking(spatial_chunk=64), CloudMask(buffer_m=30)
    build_cube(cube_spec(cube=chunking), items_path=items, out=tmp_path / "plain.zarr")
    whole = cube_spec(cloud_mask=buffer, cube=chunking)
    build_cube(whole, items_path=items, out=tmp_path / "whole.zarr")
    tiles = {t: tmp_path / f"{t.name}.zarr" for t in all_tiles(2, 2)}
    for tile, path in tiles.items():
        build_cube(
            cube_spec(cloud_mask=buffer, cube=chunking, tile=tile), items_path=items, out=path
        )
    join_tiles(tiles, tmp_path / "joined.zarr", crs="EPSG:32644")
    chunks = sorted(p.name for p in (tmp_path / "whole.zarr/ndvi").glob("*.*.*"))
    for name in chunks:
        a = (tmp_path / "joined.zarr/ndvi" / name).read_bytes()
        assert a == (tmp_path / "whole.zarr/ndvi" / name).read_bytes(), name
    plain = np.isnan(open_cube(tmp_path / "plain.zarr")["ndvi"].values)
    buffered = np.isnan(open_cube(tmp_path / "whole.zarr")["ndvi"].values)
    assert (buffered >= plain).all() and buffered.sum() > plain.sum()  # grows, never shrinks

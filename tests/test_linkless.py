"""Filesystems without links (vfat, exFAT, some SMB and network mounts): every output is made by
copies instead, said once in the job's log with what they cost.

The filesystem is real: exFAT on a loop device, mounted through FUSE (``linkless_dir`` in
conftest.py), where ``link()`` fails with EPERM and ``symlink()`` with ENOSYS, for this process
and any other. A mount that refuses only symbolic links (some SMB servers) has no such
stand-in here, so that case replaces ``os.symlink`` in-process by one that fails with EPERM.
"""

from __future__ import annotations

import errno
import logging
import os

import pytest

from ndvicube.cube.store import open_cube
from ndvicube.cube.versions import pinned, release
from tests.fault_helpers import CUBE, items_subset

MARKER_NAME = ".ndvicube-version"  # ndvicube.cube.versions.MARKER


def cube_values(store) -> bytes:
    """Time axis and every pixel of a cube store."""
    cube = open_cube(store)
    return cube["time"].values.tobytes() + cube["ndvi"].values.tobytes()


def refusals(caplog) -> list[str]:
    """The job's warnings about links refused."""
    return [r.getMessage() for r in caplog.records if "refuses links" in r.getMessage()]


def test_a_cube_is_built_published_and_rebuilt_where_links_are_refused(
    catalog, clean, linkless_dir, tmp_path, caplog
):
    from ndvicube.cube.versions import MARKER
    from ndvicube.jobs import build_cube

    (linkless_dir / "probe").write_text("a file")
    with pytest.raises(PermissionError):  # the filesystem is one without links
        os.link(linkless_dir / "probe", linkless_dir / "probe-link")
    items = items_subset(catalog, tmp_path / "items.json")
    area = linkless_dir / "results/seed"
    link = area / "ndvi.zarr"
    paths = dict(out=area / "cube/workflow.zarr", work=area / ".work/ndvi.zarr", published=link)
    caplog.set_level(logging.INFO)
    build_cube(CUBE, items_path=items, **paths)
    expected = cube_values(clean)
    assert cube_values(area / "cube/workflow.zarr") == expected
    # ndvi.zarr: a copy of the version (no symbolic link), naming it; open_cube reads that.
    assert not link.is_symlink() and (link / MARKER).read_text() == "cube/v1.zarr\n"
    assert pinned(link) == area / "cube/v1.zarr" and cube_values(link) == expected
    said = refusals(caplog)
    assert len(said) == 1 and " MB in " in said[0]
    assert "link(): Operation not permitted; symlink(): Function not implemented" in said[0]
    held = open_cube(link)["ndvi"]
    caplog.clear()
    build_cube(CUBE, items_path=items, **paths)  # a rerun: the cube job again, same items
    assert len(refusals(caplog)) == 1
    assert cube_values(link) == expected and pinned(link).parent == area / "cube"
    assert held.values.tobytes() == open_cube(clean)["ndvi"].values.tobytes()
    leftovers = [p.name for p in area.rglob("*") if p.suffix in (".partial", ".linking", ".next")]
    assert leftovers == []


def test_tiles_are_built_and_joined_where_links_are_refused(catalog, linkless_dir, tmp_path):
    import json

    from ndvicube.cube.spec import Chunking
    from ndvicube.cube.tiles import all_tiles
    from ndvicube.demo import cube_spec
    from ndvicube.jobs import build_cube, join_tiles

    doc = json.loads(catalog.items.read_text())
    doc["features"] = [f for f in doc["features"] if f["properties"]["datetime"] < "2023-03"]
    items = tmp_path / "items.json"
    items.write_text(json.dumps(doc))
    chunking = Chunking(spatial_chunk=64)
    build_cube(cube_spec(cube=chunking), items_path=items, out=tmp_path / "whole.zarr")
    area = linkless_dir / "results/seed"
    tiles = [area / f"tiles/{t.name}.zarr" for t in all_tiles(2, 2)]
    for tile, path in zip(all_tiles(2, 2), tiles, strict=True):
        build_cube(cube_spec(cube=chunking, tile=tile), items_path=items, out=path)
    out, link = area / "cube/workflow.zarr", area / "ndvi.zarr"
    join_tiles(tile_paths=tiles, split=[2, 2], out=out, crs="EPSG:32644", published=link)
    assert cube_values(link) == cube_values(tmp_path / "whole.zarr")
    chunk = next(p for p in (out / "ndvi").iterdir() if not p.name.startswith("."))
    assert os.stat(chunk).st_nlink == 1  # a copy: exFAT has no links


def test_zarr_makes_a_group_where_links_are_refused(linkless_dir):
    """Zarr's local store makes a group's metadata by link() when it creates an array below
    the group (exclusive create): refused on exFAT, done by ndvicube's store without it."""
    import xarray as xr

    from ndvicube.cube.store import local_store

    data = xr.Dataset({"ndvi": ("x", [0.5, 0.25])})
    with pytest.raises(PermissionError):
        data.to_zarr(linkless_dir / "plain.zarr", group="area", zarr_format=2)
    data.to_zarr(local_store(linkless_dir / "ours.zarr"), group="area", zarr_format=2)
    assert xr.open_zarr(linkless_dir / "ours.zarr", group="area")["ndvi"].values.tolist() == [
        0.5,
        0.25,
    ]


@pytest.fixture
def no_symlinks(monkeypatch):
    """A mount that makes hard links but refuses symbolic ones (EPERM), in this process."""

    def refused(*args, **kwargs):
        raise PermissionError(errno.EPERM, "Operation not permitted", str(args[-1]))

    monkeypatch.setattr(os, "symlink", refused)


def fake_store(path, tag: str):
    """A finished store as publishing sees it: consolidated metadata and a chunk file."""
    (path / "ndvi").mkdir(parents=True)
    (path / ".zmetadata").write_text(tag)
    (path / "ndvi/0.0.0").write_text(tag)
    return path


def test_without_symbolic_links_the_published_path_is_a_copy_naming_its_version(
    tmp_path, no_symlinks, caplog
):
    from ndvicube.cube.links import copies_reported

    link = tmp_path / "results/seed/ndvi.zarr"
    with copies_reported(link.parent):
        release(fake_store(tmp_path / "a.zarr", "a"), link, keep=2)
        held = pinned(link)
        release(fake_store(tmp_path / "b.zarr", "b"), link, keep=2)
    assert held == link.parent / "cube/v1.zarr" and (held / "ndvi/0.0.0").read_text() == "a"
    assert (link / "ndvi/0.0.0").read_text() == "b" and pinned(link).name == "v2.zarr"
    # Hard links still work there: the published copy takes no space.
    assert os.path.samefile(link / "ndvi/0.0.0", link.parent / "cube/v2.zarr/ndvi/0.0.0")
    assert sorted(p.name for p in link.parent.iterdir()) == ["cube", "ndvi.zarr"]
    said = refusals(caplog)
    assert len(said) == 1 and "symlink()" in said[0]


def test_the_workflow_runs_and_reruns_on_a_filesystem_without_links(catalog, cogs, linkless_dir):
    """Every output of a run with composites, then of a rerun (`end` later), in a working
    directory on exFAT: each job that publishes says once what the copies cost."""
    from tests.workflow_helpers import demo_config, edit_config, served_workdir, snakemake

    monthly = {"period": "1MS", "statistic": "median", "indices": ["NDVI"]}
    config = demo_config("catalog.json", str(catalog.points)) | {
        "start": "2023-02-01",
        "end": "2023-02-28",
        "composites": monthly,
    }
    work = served_workdir(catalog, cogs, linkless_dir, config)
    results = work / "results/seed"
    for end, version in (("2023-02-28", "v1.zarr"), ("2023-03-31", "v2.zarr")):
        edit_config(work, end=end)
        cogs.reset_log()
        result = snakemake(work, work / "config.yaml", "--cores", "2")
        assert result.returncode == 0, result.stderr[-3000:]
        assert any(r.path.endswith(".tif") for r in cogs.requests)  # the new month read
        for path, folder in (("ndvi.zarr", "cube"), ("composites.zarr", "composites.versions")):
            assert (results / path / MARKER_NAME).read_text() == f"{folder}/{version}\n"
        assert str(open_cube(results / "ndvi.zarr")["time"].values[-1])[:7] == end[:7]
        for job in ("cube", "composites"):
            said = (results / f"logs/{job}.log").read_text().count("refuses links")
            assert said == 1, job
    assert sorted(p.name for p in (results / "composites").glob("*.tif"))[-1] == (
        "NDVI_2023-03-01.tif"
    )
    assert (results / "series_smoothed.csv").is_file() and (results / "quicklook.png").is_file()

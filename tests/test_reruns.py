"""Reruns do the least work that gives the right answer: exact job lists and HTTP read logs.

The workflow reads the demo catalog from a local ItemCollection whose asset hrefs point at a
loopback Range server, so every COG read shows up in the server's log. A first run covers
February to May; each test copies that finished working directory, changes one thing and
checks what Snakemake plans, what it reads and what it leaves untouched.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from ndvicube.cube.store import open_cube, read_attrs
from ndvicube.demo import rewrite_hrefs
from ndvicube.testing.rangeserver import RangeHTTPServer
from tests.workflow_helpers import (
    ONE_AREA_JOBS,
    SNAKEFILE,
    copy_of,
    demo_config,
    edit_config,
    item_of,
    run,
    served_workdir,
    snakemake,
)

pytestmark = pytest.mark.workflow

FIRST = {"start": "2023-02-01", "end": "2023-05-31"}


@pytest.fixture(scope="module")
def built(catalog, cogs, tmp_path_factory):
    """A working directory after a complete first run (February to May)."""
    config = demo_config("catalog.json", str(catalog.points)) | FIRST
    work = served_workdir(catalog, cogs, tmp_path_factory.mktemp("built"), config)
    result = snakemake(work, work / "config.yaml", "--cores", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    return work


def fingerprint(store: Path) -> dict[str, tuple[float, str]]:
    """mtime and sha256 of every file of a store."""
    return {
        str(p.relative_to(store)): (p.stat().st_mtime, hashlib.sha256(p.read_bytes()).hexdigest())
        for p in sorted(store.rglob("*"))
        if p.is_file()
    }


def stored_items(work: Path) -> dict[str, dict]:
    """Items of ``results/seed/items.json`` by id."""
    features = json.loads((work / "results/seed/items.json").read_text())["features"]
    return {f["id"]: f for f in features}


def test_nothing_changed_plans_nothing_and_returns_fast(built, cogs, tmp_path):
    work = copy_of(built, tmp_path)
    edit_config(work, cube_versions_kept=5)  # how many versions stay changes no value
    planned, read = run(work, cogs)
    assert planned == {} and read == set()
    started = time.monotonic()
    result = snakemake(work, work / "config.yaml", "--cores", "2")
    elapsed = time.monotonic() - started
    assert result.returncode == 0
    assert "Nothing to be done" in result.stdout + result.stderr
    assert elapsed < 3.0, f"a no-op run took {elapsed:.1f} s"


def test_only_smoothing_changed(built, cogs, tmp_path):
    work = copy_of(built, tmp_path)
    before = fingerprint(work / "results/seed/ndvi.zarr")
    edit_config(work, smoothing__window=5)
    planned, read = run(work, cogs)
    # the quick-look job's viewer charts the smoothed series (its tiles are reused, not redrawn)
    assert planned == {"tables": 1, "figures": 1, "quicklook": 1, "all": 1}
    assert read == set()
    assert fingerprint(work / "results/seed/ndvi.zarr") == before


def test_only_figures_changed_redraws_the_figures_only(built, cogs, tmp_path):
    work = copy_of(built, tmp_path)
    tables = {n: (work / f"results/seed/{n}").stat().st_mtime for n in ("series_raw.csv",)}
    edit_config(work, figures={"max_points": 2})
    planned, read = run(work, cogs)
    assert planned == {"figures": 1, "all": 1} and read == set()
    plots = sorted(p.name for p in (work / "results/seed/plots").glob("*.png"))
    assert plots == ["field1.png", "west_field.png"]  # the first two of points.csv
    assert {n: (work / f"results/seed/{n}").stat().st_mtime for n in tables} == tables


def test_point_added(built, cogs, tmp_path):
    work = copy_of(built, tmp_path)
    config = yaml.safe_load((work / "config.yaml").read_text())
    csv = Path(config["areas"]["seed"]["points"]).read_text()
    (work / "pts.csv").write_text(csv + "new_point,82.605,27.160\n")
    edit_config(work, areas__seed__points="pts.csv")
    planned, read = run(work, cogs)
    assert planned == {"tables": 1, "figures": 1, "quicklook": 1, "all": 1}  # points on maps
    assert read == set()  # no STAC search job ran, no COG was read
    raw = (work / "results/seed/series_raw.csv").read_text()
    assert "new_point," in raw


def test_end_extended_reads_only_the_new_month(built, cogs, tmp_path):
    work = copy_of(built, tmp_path)
    old = open_cube(work / "results/seed/ndvi.zarr")["ndvi"].load()
    edit_config(work, end="2023-06-30")
    planned, read = run(work, cogs)
    assert planned == ONE_AREA_JOBS  # the whole period searched again, in one job
    items = stored_items(work)
    assert read and all(items[i]["properties"]["datetime"].startswith("2023-06") for i in read)
    june = {i for i, f in items.items() if f["properties"]["datetime"].startswith("2023-06")}
    assert read == june
    new = open_cube(work / "results/seed/ndvi.zarr")["ndvi"]
    assert str(new["time"].values[-1])[:7] == "2023-06"
    kept = new.sel(time=old["time"]).values
    assert kept.tobytes() == old.values.tobytes()  # old dates byte-identical


def test_start_moved_earlier_reads_only_the_new_month(built, cogs, tmp_path):
    work = copy_of(built, tmp_path)
    old = open_cube(work / "results/seed/ndvi.zarr")["ndvi"].load()
    edit_config(work, start="2023-01-01")
    planned, read = run(work, cogs)
    assert planned["search"] == 1 and planned["cube"] == 1
    items = stored_items(work)
    january = {i for i, f in items.items() if f["properties"]["datetime"].startswith("2023-01")}
    assert read == january
    new = open_cube(work / "results/seed/ndvi.zarr")["ndvi"]
    assert new.sel(time=old["time"]).values.tobytes() == old.values.tobytes()


def test_cloud_limit_changed_reads_only_affected_days(built, cogs, tmp_path):
    work = copy_of(built, tmp_path)
    before = stored_items(work)
    edit_config(work, stac__max_cloud_cover=15, cube_versions_kept=1)
    planned, read = run(work, cogs)
    assert planned["search"] == 1 and planned["cube"] == 1  # one search for February to May
    after = stored_items(work)
    assert set(after) < set(before)

    def days(items):
        out: dict[str, set[str]] = {}
        for item_id, f in items.items():
            out.setdefault(f["properties"]["datetime"][:10], set()).add(item_id)
        return out

    changed = {d for d, ids in days(after).items() if days(before).get(d) != ids}
    assert read == {i for d in changed for i in days(after)[d]}
    gone = set(days(before)) - set(days(after))
    cube_days = {str(t)[:10] for t in open_cube(work / "results/seed/ndvi.zarr")["time"].values}
    assert cube_days == set(days(after)) and not gone & cube_days
    # cube_versions_kept: 1 - the first version went when the second was published.
    assert sorted(p.name for p in (work / "results/seed/cube").iterdir()) == [
        "v2.zarr", "workflow.zarr"
    ]  # fmt: skip


def test_cloud_mask_changed_rebuilds_every_day(built, cogs, tmp_path):
    work = copy_of(built, tmp_path)
    edit_config(work, cloud_mask__scl_classes=[8, 9, 10])
    planned, read = run(work, cogs)
    assert "search" not in planned and planned["cube"] == 1
    assert read == set(stored_items(work))


def test_second_area_leaves_the_first_untouched(built, cogs, tmp_path):
    work = copy_of(built, tmp_path)
    before = {p: p.stat().st_mtime for p in (work / "results/seed").rglob("*") if p.is_file()}
    config = yaml.safe_load((work / "config.yaml").read_text())
    config["areas"]["east"] = {
        "bbox": [82.611, 27.156, 82.617, 27.170],
        "points": [{"id": "e1", "lon": 82.614, "lat": 27.165}],
    }
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    planned, _ = run(work, cogs)
    assert planned == ONE_AREA_JOBS
    after = {p: p.stat().st_mtime for p in (work / "results/seed").rglob("*") if p.is_file()}
    assert after == before


def test_refresh_of_a_live_catalog_reads_only_new_scenes(built, cogs, tmp_path):
    work = copy_of(built, tmp_path)
    catalog = json.loads((work / "catalog.json").read_text())
    may = [f for f in catalog["features"] if f["properties"]["datetime"].startswith("2023-05")]
    template = next(f for f in may if f["properties"]["eo:cloud_cover"] < 30)
    late = json.loads(json.dumps(template))
    late["id"] = template["id"].replace("_L2A", "_LATE_L2A")
    late["properties"]["datetime"] = "2023-05-29T05:11:00.000000Z"  # not a regular pass day
    catalog["features"].append(late)  # a scene the archive published after the first run
    (work / "catalog.json").write_text(json.dumps(catalog))
    planned, read = run(work, cogs)
    assert planned == {}  # nothing changed as far as Snakemake knows: refresh is explicit
    planned, read = run(work, cogs, "--forcerun", "results/seed/items.json")
    assert planned == ONE_AREA_JOBS
    assert read == {template["id"]}  # the new scene's COGs (shared with its template) only
    assert late["id"] in stored_items(work)
    assert "2023-05-29" in {
        str(t)[:10] for t in open_cube(work / "results/seed/ndvi.zarr")["time"].values
    }


def test_killed_while_writing_the_cube_then_rerun(built, catalog, tmp_path):
    work = tmp_path / "killed"
    work.mkdir()
    # A slow object store, so the cube job is surely killed in the middle of writing.
    with RangeHTTPServer(catalog.root, latency_s=0.05) as slow:
        rewrite_hrefs(catalog.items, work / "catalog.json", slow.url, catalog.root)
        shutil.copy(built / "config.yaml", work / "config.yaml")
        run_killed(work, env={}, when_log_says="cube progress")
        assert "cube progress" in (work / "results/seed/logs/cube.log").read_text()
        store = work / "results/seed/ndvi.zarr"
        assert not (store / ".zmetadata").exists()  # nothing looks complete
        # Snakemake's lock survives a SIGKILL of Snakemake itself: --unlock, as it says, then rerun.
        assert snakemake(work, work / "config.yaml", "--unlock").returncode == 0
        result = snakemake(work, work / "config.yaml", "--cores", "2")
        assert result.returncode == 0, result.stderr[-3000:]
    rerun = open_cube(store)["ndvi"]
    reference = open_cube(built / "results/seed/ndvi.zarr")["ndvi"]
    assert rerun.values.tobytes() == reference.values.tobytes()
    assert not store.with_name("ndvi.zarr.partial").exists()
    attrs = read_attrs(store)
    assert attrs["ndvicube:days"] == read_attrs(built / "results/seed/ndvi.zarr")["ndvicube:days"]


def test_same_search_results_give_identical_chunk_bytes(built, cogs, tmp_path):
    from ndvicube.cube.spec import CloudMask, CubeSpec
    from ndvicube.jobs import build_cube

    spec = CubeSpec(
        bbox=(82.599, 27.154, 82.617, 27.172),
        crs="EPSG:32644",
        resolution=10,
        cloud_mask=CloudMask(scl_classes=(3, 8, 9, 10)),
    )
    outputs = []
    for n in range(2):
        outputs.append(
            build_cube(
                spec, items_path=built / "results/seed/items.json", out=tmp_path / f"cube{n}.zarr"
            )
        )
    first, second = (
        {k: v[1] for k, v in fingerprint(o).items() if not k.startswith((".z", "zarr"))}
        for o in outputs
    )
    chunks = {k: v for k, v in first.items() if k.startswith("ndvi/")}
    assert len(chunks) >= 3 and first == second
    np.testing.assert_array_equal(
        open_cube(outputs[0])["ndvi"].values, open_cube(outputs[1])["ndvi"].values
    )


def test_output_cache_lets_a_second_working_directory_reuse_the_cube(built, cogs, tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    env = {"SNAKEMAKE_OUTPUT_CACHE": str(cache)}
    first, second = tmp_path / "first", tmp_path / "second"
    for work in (first, second):
        work.mkdir()
        shutil.copy(built / "catalog.json", work / "catalog.json")
        shutil.copy(built / "config.yaml", work / "config.yaml")
    result = snakemake(first, first / "config.yaml", "--cores", "2", "--cache", env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert any(p.suffix == ".zarr" for p in cache.iterdir())
    cogs.reset_log()
    result = snakemake(second, second / "config.yaml", "--cores", "2", "--cache", env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    text = result.stdout + result.stderr
    assert "Symlinking output file results/seed/cube/workflow.zarr" in text
    assert [r for r in cogs.requests if r.path.endswith(".tif")] == []  # nothing read again
    reused = open_cube(second / "results/seed/cube/workflow.zarr")["ndvi"].values
    assert reused.tobytes() == open_cube(built / "results/seed/ndvi.zarr")["ndvi"].values.tobytes()
    # No cube job ran in the second directory, yet its ndvi.zarr is there: a read-only copy.
    link = second / "results/seed/ndvi.zarr"
    assert os.readlink(link) == "cube/v1.zarr"
    assert open_cube(link)["ndvi"].values.tobytes() == reused.tobytes()
    # The cache entry (Snakemake makes its files writable by all) shares no file with either
    # directory's store or versions, and the versions stay read-only.
    cached = inodes_of(cache)
    assert cached and all(mode & 0o222 for mode in cached.values())
    for work in (first, second):
        ours = inodes_of(work / "results/seed/cube", work / "results/seed/.work")
        assert ours and not set(ours) & set(cached)
        versions = inodes_of(work / "results/seed/cube/v1.zarr")
        assert versions and all(mode & 0o222 == 0 for mode in versions.values())


def inodes_of(*folders: Path) -> dict[tuple[int, int], int]:
    """(device, inode) -> mode of every file under ``folders`` (symbolic links not followed)."""
    return {
        (p.lstat().st_dev, p.lstat().st_ino): p.lstat().st_mode
        for folder in folders
        for p in folder.rglob("*")
        if p.is_file() and not p.is_symlink()
    }


def test_no_signed_url_token_reaches_provenance_or_logs(built, cogs, tmp_path):
    work = tmp_path / "signed"
    work.mkdir()
    catalog = json.loads((built / "catalog.json").read_text())
    for feature in catalog["features"]:
        for asset in feature["assets"].values():
            asset["href"] += "?X-Amz-Signature=FAKETOKEN123&X-Amz-Credential=AKIAFAKE"
    (work / "catalog.json").write_text(json.dumps(catalog))
    shutil.copy(built / "config.yaml", work / "config.yaml")
    result = snakemake(work, work / "config.yaml", "--cores", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    store = work / "results/seed/ndvi.zarr"
    assert open_cube(store)["ndvi"].values.tobytes() == (
        open_cube(built / "results/seed/ndvi.zarr")["ndvi"].values.tobytes()
    )
    for path in [*store.rglob(".z*"), *(work / "results/seed/logs").iterdir()]:
        text = path.read_text()
        assert "FAKETOKEN123" not in text and "AKIAFAKE" not in text, path
    hrefs = read_attrs(store)["ndvicube:items"][0]["hrefs"]
    assert all("?" not in h for h in hrefs.values())


@pytest.fixture(scope="module")
def updated(built, cogs, tmp_path_factory):
    """The first run's working directory, updated to stac.max_cloud_cover 40 uninterrupted."""
    work = copy_of(built, tmp_path_factory.mktemp("updated"))
    edit_config(work, stac__max_cloud_cover=40)
    result = snakemake(work, work / "config.yaml", "--cores", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    return work


def run_killed(work: Path, *, env: dict[str, str], when_log_says: str | None = None) -> None:
    """Run the workflow in its own process group and SIGKILL the whole group: when the cube
    log shows ``when_log_says``, or when the job kills it itself (``NDVICUBE_CRASH_AT``)."""
    cmd = [sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE), "--directory", str(work),
           "--configfile", str(work / "config.yaml"), "--cores", "2"]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd="/", start_new_session=True, env=os.environ | env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    log = work / "results/seed/logs/cube.log"
    deadline = time.monotonic() + 300
    while when_log_says and time.monotonic() < deadline and proc.poll() is None:
        if log.exists() and when_log_says in log.read_text():
            os.killpg(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.02)
    assert proc.wait(timeout=300) == -signal.SIGKILL


@pytest.mark.parametrize(
    "moment, env, when_log_says",
    [
        ("reading and writing", {}, "cube progress: 1/"),  # the first block written
        ("swapping the stores", {"NDVICUBE_CRASH_AT": "swap"}, None),
        ("publishing the output", {"NDVICUBE_CRASH_AT": "publish"}, None),
        ("releasing the version", {"NDVICUBE_CRASH_AT": "release"}, None),
    ],
)
def test_killed_during_an_update_then_a_plain_run_recovers(
    built, updated, catalog, tmp_path, moment, env, when_log_says
):
    work = copy_of(built, tmp_path)
    edit_config(work, stac__max_cloud_cover=40)
    link, output = work / "results/seed/ndvi.zarr", work / "results/seed/cube/workflow.zarr"
    with RangeHTTPServer(catalog.root, latency_s=0.05) as slow:  # so the kill lands mid-read
        rewrite_hrefs(catalog.items, work / "catalog.json", slow.url, catalog.root)
        run_killed(work, env=env, when_log_says=when_log_says)
        kept = work / "results/seed/.work/ndvi.zarr"
        days = read_attrs(built / "results/seed/ndvi.zarr")["ndvicube:days"]
        if moment == "swapping the stores":  # the old store is renamed aside, the new not yet in
            assert not kept.exists()
            assert read_attrs(kept.with_name("ndvi.zarr.old"))["ndvicube:days"] == days
        elif moment == "publishing the output":  # the store is updated, its links not in place
            assert read_attrs(kept)["ndvicube:days"] != days
            assert not output.exists()
        elif moment == "releasing the version":  # the new version is made, the link not moved
            assert read_attrs(kept)["ndvicube:days"] != days
            assert read_attrs(link.parent / "cube/v2.zarr")["ndvicube:days"] != days
        else:  # the previous complete store is intact
            assert read_attrs(kept)["ndvicube:days"] == days
        # Whatever the moment, readers still find the previous cube, whole.
        assert os.readlink(link) == "cube/v1.zarr"
        assert read_attrs(link)["ndvicube:days"] == days
        assert snakemake(work, work / "config.yaml", "--unlock").returncode == 0
        result = snakemake(work, work / "config.yaml", "--cores", "2")
        assert result.returncode == 0, result.stderr[-3000:]
    reference = updated / "results/seed/ndvi.zarr"
    for store in (link, output):
        assert open_cube(store)["ndvi"].values.tobytes() == (
            open_cube(reference)["ndvi"].values.tobytes()
        )
        assert read_attrs(store)["ndvicube:days"] == read_attrs(reference)["ndvicube:days"]
    leftovers = [p.name for p in (work / "results/seed/.work").iterdir()]
    assert leftovers == ["ndvi.zarr"]  # no .partial, no .old
    # One new version (a version made before the kill is the one the link names now), no
    # half-linked one, no link left beside ndvi.zarr.
    assert sorted(p.name for p in link.parent.glob("cube/*")) == [
        "v1.zarr", "v2.zarr", "workflow.zarr"
    ]  # fmt: skip
    assert os.readlink(link) == "cube/v2.zarr"
    assert sorted(p.name for p in link.parent.glob("ndvi.zarr*")) == ["ndvi.zarr"]
    assert not (work / ".snakemake/backups").exists()  # nothing for Snakemake to restore


def disk_usage(path: Path) -> int:
    """Bytes the files under ``path`` take (st_blocks, each hard-linked file once)."""
    stats = {(s.st_dev, s.st_ino): s for s in (p.lstat() for p in path.rglob("*"))}
    return sum(s.st_blocks * 512 for s in stats.values())


def test_a_full_disk_during_an_update_loses_nothing_and_a_plain_run_recovers(
    built, updated, cogs, tmp_path
):
    mount = tmp_path / "disk"
    mount.mkdir()
    cube = disk_usage(built / "results/seed/.work/ndvi.zarr")
    # Room for the working directory and half a cube more: the update's new store cannot fit.
    size_kb = (disk_usage(built) + cube // 2) // 1024 + 256
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs",
                              str(mount)], capture_output=True)  # fmt: skip
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {mounted.stderr.decode()}")
    try:
        work = mount / "work"
        subprocess.run(["cp", "-a", str(built), str(work)], check=True)  # hard links kept
        edit_config(work, stac__max_cloud_cover=40)
        full = snakemake(work, work / "config.yaml", "--cores", "2")
        assert full.returncode != 0
        assert "Error in rule cube" in full.stderr
        log = (work / "results/seed/logs/cube.log").read_text()
        assert "No space left on the device" in log and "previous cube, if any, is unchanged" in log
        kept = work / "results/seed/.work/ndvi.zarr"
        assert (
            read_attrs(kept)["ndvicube:days"]
            == read_attrs(built / "results/seed/ndvi.zarr")["ndvicube:days"]
        )  # the previous store, complete
        assert read_attrs(work / "results/seed/ndvi.zarr") == read_attrs(kept)  # still read
        assert not kept.with_name("ndvi.zarr.partial").exists()  # its space given back
        # Space is freed (here: the disk grows); a plain run completes, reading only new days.
        subprocess.run(["mount", "-o", f"remount,size={4 * size_kb}k", str(mount)], check=True)
        cogs.reset_log()
        result = snakemake(work, work / "config.yaml", "--cores", "2")
        assert result.returncode == 0, result.stderr[-3000:]
        read_again = {item_of(r.path) for r in cogs.requests if r.path.endswith(".tif")}
        now = stored_items(work)
        days = {now[i]["properties"]["datetime"][:10] for i in set(now) - set(stored_items(built))}
        assert read_again == {i for i, f in now.items() if f["properties"]["datetime"][:10] in days}
        store, reference = work / "results/seed/ndvi.zarr", updated / "results/seed/ndvi.zarr"
        assert open_cube(store)["ndvi"].values.tobytes() == (
            open_cube(reference)["ndvi"].values.tobytes()
        )
        assert (work / "results/seed/skipped.csv").is_file()
    finally:
        subprocess.run(["umount", str(mount)], check=False)


#: A reader in its own process, as a notebook or a dashboard polling the cube would be: it
#: opens the version ``ndvi.zarr`` names (as the README says) and reads it all, in a loop, each
#: read logged with its time span and a digest of the time axis and the pixels (or the error),
#: and whether the rule's output existed as it started (Snakemake deletes it for the cube job).
READER = """
import hashlib, json, os, sys, time
import xarray as xr

link, output, out, stop = sys.argv[1:]
with open(out, "w") as log:
    while not os.path.exists(stop):
        started, output_there = time.time(), os.path.exists(output)
        try:
            cube = xr.open_zarr(os.path.realpath(link), consolidated=True)
            data = cube["time"].values.tobytes() + cube["ndvi"].values.tobytes()
            row = {"digest": hashlib.sha256(data).hexdigest()}
        except Exception as error:
            row = {"error": repr(error)}
        row |= {"started": started, "ended": time.time(), "output": output_there}
        log.write(json.dumps(row) + "\\n")
        log.flush()
"""


def cube_digest(store: Path) -> str:
    """The reader's digest of a cube store: its time axis and every pixel."""
    cube = open_cube(store)
    return hashlib.sha256(cube["time"].values.tobytes() + cube["ndvi"].values.tobytes()).hexdigest()


def logged_span(log: Path) -> tuple[float, float]:
    """Epoch seconds of the first and last record of a job log (local time, as logged)."""
    import datetime as dt

    stamps = [
        dt.datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()
        for line in log.read_text().splitlines()
        if line[:4].isdigit()
    ]
    return stamps[0], stamps[-1]


def read_rows(path: Path) -> list[dict]:
    """The reader's log so far."""
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def wait_until(condition, timeout: float = 60) -> None:
    """Poll ``condition()`` every 50 ms until true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_reader_sees_the_old_or_the_new_cube_whole_during_a_rerun(
    built, updated, catalog, tmp_path
):
    work = copy_of(built, tmp_path)
    link = work / "results/seed/ndvi.zarr"
    old, new = (
        cube_digest(built / "results/seed/ndvi.zarr"),
        cube_digest(updated / "results/seed/ndvi.zarr"),
    )
    assert old != new
    held = open_cube(link)["ndvi"]  # a notebook's handle, opened before the rerun, read after
    edit_config(work, stac__max_cloud_cover=40)
    reads, stop = tmp_path / "reads.jsonl", tmp_path / "stop"
    output = link.parent / "cube/workflow.zarr"
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(link), str(output), str(reads), str(stop)]
    )
    try:
        wait_until(lambda: len(read_rows(reads)) >= 2)
        # A slow object store, so the cube job (its output deleted meanwhile) lasts seconds.
        with RangeHTTPServer(catalog.root, latency_s=0.05) as slow:
            rewrite_hrefs(catalog.items, work / "catalog.json", slow.url, catalog.root)
            result = snakemake(work, work / "config.yaml", "--cores", "2")
        assert result.returncode == 0, result.stderr[-3000:]
        finished = time.time()
        wait_until(lambda: sum(r["started"] > finished for r in read_rows(reads)) >= 2)
    finally:
        stop.touch()
        reader.wait(timeout=60)
    rows = read_rows(reads)
    assert [r for r in rows if "error" in r] == []  # every open succeeded
    digests = [r["digest"] for r in rows]
    assert set(digests) == {old, new}  # every read was one cube or the other, whole
    assert digests == sorted(digests, key=[old, new].index)  # old, then new for good
    # Reads went on while the cube job ran (its output deleted, its store being rewritten),
    # and saw the old cube.
    job_started, job_logged_last = logged_span(work / "results/seed/logs/cube.log")
    during = [r for r in rows if job_started < r["started"] and r["ended"] < job_logged_last]
    assert during and {r["digest"] for r in during} == {old}
    no_output = [r for r in rows if not r["output"]]
    assert len(no_output) >= len(during) and {r["digest"] for r in no_output} == {old}
    # The handle opened before the rerun pinned its version: the same values after it.
    reference = open_cube(built / "results/seed/ndvi.zarr")["ndvi"]
    assert held.values.tobytes() == reference.values.tobytes()
    assert str(held["time"].values[-1]) == str(reference["time"].values[-1])
    # That version is kept (cube_versions_kept: 2), read-only; the link names the new one.
    versions = link.parent / "cube"
    assert sorted(p.name for p in versions.iterdir()) == ["v1.zarr", "v2.zarr", "workflow.zarr"]
    assert os.readlink(link) == "cube/v2.zarr"
    files = [p for p in (versions / "v1.zarr").rglob("*") if p.is_file()]
    assert files and all(p.stat().st_mode & 0o222 == 0 for p in files)


def fake_store(path: Path, tag: str) -> Path:
    """A finished store as publishing sees it: consolidated metadata and a chunk file."""
    (path / "ndvi").mkdir(parents=True)
    (path / ".zmetadata").write_text(tag)
    (path / "ndvi/0.0.0").write_text(tag)
    return path


def test_versions_beyond_the_kept_count_are_removed(tmp_path):
    from ndvicube.cube.versions import pinned, release

    link = tmp_path / "results/seed/ndvi.zarr"
    folder = link.parent / "cube"
    first = fake_store(tmp_path / "a.zarr", "a")
    assert release(first, link, keep=2) == folder / "v1.zarr"
    assert release(first, link, keep=2) == folder / "v1.zarr"  # the same store: no duplicate
    assert os.path.samefile(first / "ndvi/0.0.0", link / "ndvi/0.0.0")  # links: no space taken
    (folder / "v7.zarr.linking").mkdir()  # left by a job killed while linking
    release(fake_store(tmp_path / "b.zarr", "b"), link, keep=2)
    held = pinned(link)  # a reader pins v2 here
    release(fake_store(tmp_path / "c.zarr", "c"), link, keep=2)
    assert sorted(p.name for p in folder.iterdir()) == ["v2.zarr", "v3.zarr"]  # v1: 2 newer
    assert (held / "ndvi/0.0.0").read_text() == "b" and (link / "ndvi/0.0.0").read_text() == "c"
    release(fake_store(tmp_path / "d.zarr", "d"), link, keep=1)
    assert sorted(p.name for p in folder.iterdir()) == ["v4.zarr"]
    assert os.readlink(link) == "cube/v4.zarr" and (link / ".zmetadata").read_text() == "d"
    assert sorted(p.name for p in link.parent.iterdir()) == ["cube", "ndvi.zarr"]


def test_a_cube_published_before_versions_is_replaced_by_the_link(tmp_path):
    """The layout before versions: ndvi.zarr was the rule's output, a real directory."""
    from ndvicube.cube.versions import release

    link = fake_store(tmp_path / "results/seed/ndvi.zarr", "old layout")
    release(fake_store(tmp_path / "new.zarr", "new"), link, keep=2)
    assert link.is_symlink() and (link / ".zmetadata").read_text() == "new"
    assert sorted(p.name for p in link.parent.iterdir()) == ["cube", "ndvi.zarr"]


def test_a_working_directory_from_before_versions_is_published_without_reading(
    built, cogs, tmp_path
):
    """Before versions, ndvi.zarr was the cube rule's output: a directory of hard links."""
    work = copy_of(built, tmp_path)
    link = work / "results/seed/ndvi.zarr"
    link.unlink()
    shutil.copytree(work / "results/seed/cube/v1.zarr", link, copy_function=os.link)
    shutil.rmtree(work / "results/seed/cube")
    planned, read = run(work, cogs)
    assert planned == {"cube": 1, "tables": 1, "figures": 1, "quicklook": 1, "all": 1}
    assert read == set()  # the kept store is current: published again, nothing read
    assert os.readlink(link) == "cube/v1.zarr"
    assert cube_digest(link) == cube_digest(built / "results/seed/ndvi.zarr")


def test_the_series_jobs_read_one_version_when_the_link_moves_mid_job(
    built, catalog, tmp_path, monkeypatch
):
    """The point series job opens the cube, then reads its chunks: both from one version, even
    when a rerun moves the link in between (here: at once after the open)."""
    import pandas as pd
    import zarr

    import ndvicube.cube.store
    from ndvicube.cube.versions import point
    from ndvicube.timeseries.points import Point
    from ndvicube.timeseries.steps import extract_series

    folder = tmp_path / "results/seed/cube"
    first, second = folder / "v1.zarr", folder / "v2.zarr"
    cube = built / "results/seed/ndvi.zarr"
    shutil.copytree(cube, first)
    shutil.copytree(cube, second)
    for path in (first, second):
        os.chmod(path / "ndvi", 0o755)  # a version's files are read-only; these two are ours
        for chunk in (path / "ndvi").iterdir():
            os.chmod(chunk, 0o644)
    zarr.open_group(str(second), mode="r+")["ndvi"][:] = 0.5  # the rerun's cube: other values
    link = tmp_path / "results/seed/ndvi.zarr"
    point(link, first)
    opened = ndvicube.cube.store.open_cube

    def open_then_rerun(path, **kwargs):
        cube = opened(path, **kwargs)
        point(link, second)
        return cube

    monkeypatch.setattr(ndvicube.cube.store, "open_cube", open_then_rerun)
    points = [Point(r.id, r.lon, r.lat) for r in pd.read_csv(catalog.points).itertuples()]
    extract_series(cube_path=link, points=points, out=tmp_path / "series.csv")
    assert os.readlink(link) == "cube/v2.zarr"  # the link moved during the job
    values = pd.read_csv(tmp_path / "series.csv")["ndvi"].dropna()
    assert len(values) > 10 and (values != 0.5).all()  # every value from v1, the one opened

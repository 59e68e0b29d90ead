"""Shared fixtures: paths to the team's real fixtures (../shared/fixtures)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from ndvicube.demo import DemoCatalogSpec, generate_demo_catalog
from tests.workflow_helpers import END, START, planned_jobs, ran_jobs, snakemake, write_config

ROOT = Path(__file__).resolve().parent.parent
SHARED_FIXTURES = Path(os.environ.get("NDVICUBE_SHARED", ROOT.parent / "shared")) / "fixtures"


@pytest.fixture(scope="module")
def cogs(catalog):
    """The catalog's COGs on a loopback Range server, for one test module (its log shows
    every COG a run reads)."""
    from ndvicube.testing.rangeserver import RangeHTTPServer

    with RangeHTTPServer(catalog.root) as server:
        yield server


@pytest.fixture(scope="session")
def shared_fixtures() -> Path:
    """The real Earth Search items and the real L2A scene (required: CI has ../shared)."""
    assert SHARED_FIXTURES.is_dir(), f"real fixtures not found at {SHARED_FIXTURES}"
    return SHARED_FIXTURES


@pytest.fixture(scope="session")
def catalog(tmp_path_factory):
    """Half a year of the demo catalog (37 passes, two tiles)."""
    root = tmp_path_factory.mktemp("catalog")
    return generate_demo_catalog(root, DemoCatalogSpec(start=START, end=END))


@pytest.fixture(scope="module")
def clean(catalog, tmp_path_factory):
    """The cube of two months (tests.fault_helpers.MONTHS) from local files, no fault anywhere."""
    from ndvicube.jobs import build_cube
    from tests.fault_helpers import CUBE, items_subset

    work = tmp_path_factory.mktemp("clean")
    items = items_subset(catalog, work / "items.json")
    build_cube(CUBE, items_path=items, out=work / "ndvi.zarr")
    return work / "ndvi.zarr"


@pytest.fixture
def tiny_disk(tmp_path):
    """A 1 MB tmpfs (needs root, as on CI; skipped where mounting is not allowed)."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {done.stderr.decode()}")
    yield mount
    subprocess.run(["umount", str(mount)], check=False)


@pytest.fixture
def linkless_dir(tmp_path):
    """A real filesystem without hard or symbolic links: 256 MB of exFAT (Debian's exfatprogs
    and exfat-fuse, which .ci/run installs) on a loop device, mounted through FUSE; link()
    fails there with EPERM and symlink() with ENOSYS. The kernel here has no vfat driver, so
    exFAT stands for vfat, exFAT and the SMB mounts without links. Needs root, as on CI."""
    tools = ["mkfs.exfat", "mount.exfat-fuse", "losetup"]
    if missing := [t for t in tools if shutil.which(t) is None]:
        pytest.skip(f"no {', '.join(missing)} here (apt-get install exfatprogs exfat-fuse)")
    image, mount = tmp_path / "exfat.img", tmp_path / "exfat"
    mount.mkdir()
    with image.open("wb") as f:
        f.truncate(256 * 2**20)
    subprocess.run(["mkfs.exfat", str(image)], check=True, capture_output=True)
    loop = subprocess.run(["losetup", "-f", "--show", str(image)], capture_output=True, text=True)
    if loop.returncode != 0:
        pytest.skip(f"cannot attach a loop device here (needs root): {loop.stderr}")
    device = loop.stdout.strip()
    done = subprocess.run(["mount.exfat-fuse", device, str(mount)], capture_output=True)
    if done.returncode != 0:
        subprocess.run(["losetup", "-d", device], check=False)
        pytest.skip(f"cannot mount exFAT through FUSE here: {done.stderr.decode()}")
    yield mount
    subprocess.run(["umount", str(mount)], check=False)
    subprocess.run(["losetup", "-d", device], check=False)


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory):
    """config/demo.yaml with its field set alone, run in a working directory of its own (the
    polygons file copied there, as the repository holds it): its work folder, the jobs its dry
    run planned and the jobs it ran. One run for tests/test_demo_fields.py and
    tests/test_viewer.py (which only read it, and rerun it as a no-op)."""
    import yaml

    work = tmp_path_factory.mktemp("demo_fields")
    config = yaml.safe_load((ROOT / "config/demo.yaml").read_text())
    config["areas"] = {"fields": config["areas"]["fields"]}
    (work / "config").mkdir()
    shutil.copy(ROOT / "config/demo_fields.geojson", work / "config")
    cfg = write_config(work / "config.yaml", config)
    dry = snakemake(work, cfg, "--dry-run")
    assert dry.returncode == 0, dry.stderr[-3000:]
    done = snakemake(work, cfg, "--cores", "2", timeout=1200)
    assert done.returncode == 0, done.stderr[-3000:]
    return work, planned_jobs(dry), ran_jobs(done)

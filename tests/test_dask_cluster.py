"""Cube builds on Dask distributed: a real `dask scheduler` + two `dask worker` processes on
127.0.0.1, and a LocalCluster; each must equal the threaded build exactly."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sysconfig
import time
from pathlib import Path

import numpy as np
import pystac
import pytest

from ndvicube.compute import Compute
from ndvicube.cube.spec import CloudMask, CubeSpec
from ndvicube.cube.store import open_cube
from ndvicube.jobs import build_cube
from ndvicube.search.stac import write_items
from ndvicube.testing._service import free_port

BBOX = (82.599, 27.154, 82.617, 27.172)
SPEC = CubeSpec(BBOX, "EPSG:32644", resolution=10, cloud_mask=CloudMask(scl_classes=(3, 8, 9, 10)))


@pytest.fixture(scope="module")
def items_json(catalog, tmp_path_factory):
    path = tmp_path_factory.mktemp("dask") / "items.json"
    items = [
        i
        for i in pystac.ItemCollection.from_file(str(catalog.items))
        if i.properties["eo:cloud_cover"] < 30 and i.datetime.month <= 2
    ]
    write_items(items, path)
    return path


@pytest.fixture(scope="module")
def threaded(items_json, tmp_path_factory):
    out = build_cube(SPEC, items_path=items_json, out=tmp_path_factory.mktemp("t") / "ndvi.zarr")
    return open_cube(out)["ndvi"].values


@pytest.fixture
def dask_cluster():
    """`dask scheduler` and two `dask worker` processes on loopback."""
    # The `dask` command of the environment running the tests (a virtualenv need not be on PATH).
    beside = Path(sysconfig.get_path("scripts")) / "dask"
    dask_cli = str(beside) if beside.exists() else shutil.which("dask")
    dask_cli or pytest.fail("the `dask` command is not installed")
    port = free_port("127.0.0.1")
    address = f"tcp://127.0.0.1:{port}"
    procs = [
        subprocess.Popen(
            [dask_cli, "scheduler", "--host", "127.0.0.1", "--port", str(port),
             "--dashboard-address", "127.0.0.1:0"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
    ]  # fmt: skip
    for _ in range(2):
        procs.append(
            subprocess.Popen(
                [dask_cli, "worker", address, "--nthreads", "4", "--no-dashboard"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
        )  # fmt: skip
    from distributed import Client

    deadline = time.monotonic() + 60
    while True:
        try:
            with Client(address, timeout=5) as client:
                client.wait_for_workers(2, timeout=30)
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    yield address
    for proc in procs:
        proc.terminate()
    for proc in procs:
        proc.wait(timeout=30)


def test_existing_scheduler_with_two_workers_equals_threaded(
    items_json, threaded, dask_cluster, tmp_path, caplog
):
    with caplog.at_level(logging.INFO, logger="ndvicube.compute"):
        out = build_cube(
            SPEC,
            items_path=items_json,
            out=tmp_path / "ndvi.zarr",
            compute=Compute(scheduler=dask_cluster),
        )
    np.testing.assert_array_equal(open_cube(out)["ndvi"].values, threaded)
    message = next(r.getMessage() for r in caplog.records if "Dask distributed" in r.getMessage())
    assert dask_cluster in message and "2 worker(s)" in message and "dashboard http://" in message


def test_local_cluster_equals_threaded(items_json, threaded, tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="ndvicube.compute"):
        out = build_cube(
            SPEC,
            items_path=items_json,
            out=tmp_path / "ndvi.zarr",
            compute=Compute(scheduler="local", threads=2),
        )
    np.testing.assert_array_equal(open_cube(out)["ndvi"].values, threaded)
    assert any("dashboard http://127.0.0.1:" in r.getMessage() for r in caplog.records)


def test_bad_scheduler_is_a_config_error():
    from ndvicube.config import validate_config
    from ndvicube.errors import ConfigError
    from tests.workflow_helpers import ROOT

    cfg = {
        "start": "2023-01-01",
        "end": "2023-02-01",
        "areas": {"a": {"bbox": list(BBOX), "points": [{"id": "p", "lon": 82.608, "lat": 27.163}]}},
        "compute": {"scheduler": "10.0.0.5:8786"},
    }
    with pytest.raises(ConfigError, match=r"compute\.scheduler.*10\.0\.0\.5:8786"):
        validate_config(cfg, base_dir=ROOT)


def test_workflow_with_a_local_cluster(catalog, tmp_path):
    # Through Snakemake: the cube job's script starts a LocalCluster whose worker processes
    # re-import the script (hence its __main__ guard); the series equal the threaded ones.
    from tests.workflow_helpers import demo_config, snakemake, write_config

    outputs = {}
    for scheduler in ("threads", "local"):
        work = tmp_path / scheduler
        work.mkdir()
        config = demo_config(str(catalog.items), str(catalog.points))
        config |= {"end": "2023-02-28", "compute": {"scheduler": scheduler}}
        result = snakemake(work, write_config(work / "config.yaml", config), "--cores", "2")
        assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
        outputs[scheduler] = (work / "results/seed/series_raw.csv").read_bytes()
        log = (work / "results/seed/logs/cube.log").read_text()
        assert ("Dask distributed" in log) == (scheduler == "local")
    assert outputs["local"] == outputs["threads"]


@pytest.mark.parametrize("where", ["local", "tcp"])
def test_skip_builds_once_on_every_scheduler(where, catalog, tmp_path, caplog, request):
    """Each block task returns the scenes it could not read, wherever it ran: one pass over
    every scene, one more over the days of the skipped ones, as under threads; the cube is the
    one built without them."""
    from ndvicube.read.missing import read_skipped
    from ndvicube.testing.faults import Faults
    from ndvicube.testing.rangeserver import RangeHTTPServer
    from tests.fault_helpers import CUBE, cog_path, items_subset, ndvi_chunks, served_features

    scheduler = request.getfixturevalue("dask_cluster") if where == "tcp" else "local"
    with RangeHTTPServer(catalog.root) as probe:
        features = served_features(catalog, tmp_path, probe.url)
    victims = {features[1]["id"]: "red", features[6]["id"]: "scl"}
    paths = [cog_path(f, victims[f["id"]]) for f in features if f["id"] in victims]
    with RangeHTTPServer(catalog.root, faults=Faults(missing=paths)) as server:
        items = items_subset(catalog, tmp_path / "items.json", base_url=server.url)
        with caplog.at_level(logging.INFO):
            build_cube(
                CUBE,
                items_path=items,
                out=tmp_path / "ndvi.zarr",
                compute=Compute(scheduler=scheduler, threads=2),
                on_missing_asset="skip",
                skipped_out=tmp_path / "skipped.csv",
            )
    skipped = {(r.item_id, r.asset) for r in read_skipped(tmp_path / "skipped.csv")}
    assert skipped == set(victims.items())
    passes = [r.getMessage() for r in caplog.records if r.getMessage().startswith("cube: ")]
    assert (
        len(passes) == 2 and "0 day(s) copied" in passes[0] and "0 day(s) copied" not in passes[1]
    )
    doc = json.loads(items_subset(catalog, tmp_path / "without.json").read_text())
    doc["features"] = [f for f in doc["features"] if f["id"] not in victims]
    (tmp_path / "without.json").write_text(json.dumps(doc))
    build_cube(CUBE, items_path=tmp_path / "without.json", out=tmp_path / "expected.zarr")
    assert ndvi_chunks(tmp_path / "ndvi.zarr") == ndvi_chunks(tmp_path / "expected.zarr")

"""The cube job in a thread of Snakemake's process (issue 35, item 2): its log gets the records
of its worker threads as they come, two cube jobs at once each build their own cube, a failing
one fails alone, and no Dask setting or read deadline of the process is left behind."""

from __future__ import annotations

import logging
import re
import time

import dask
import pytest
from dask.callbacks import Callback

from ndvicube.cube.spec import Chunking
from ndvicube.demo import cube_spec
from ndvicube.errors import NdviCubeError
from ndvicube.jobs import build_cube
from ndvicube.logs import job_logging
from ndvicube.read import remote, retries
from ndvicube.testing.faults import Faults
from ndvicube.testing.rangeserver import RangeHTTPServer
from tests.fault_helpers import CUBE, cog_path, items_subset, ndvi_chunks, served_features
from tests.test_light_jobs import in_threads
from tests.workflow_helpers import records

PROGRESS = re.compile(r"cube progress: (\d+)/(\d+) blocks")


def cube_job(log, **build):
    """The cube rule's `run:` block: its logging, then the build."""

    def job():
        with job_logging(log, job=log.stem):
            build_cube(**build)

    return job


def logged_at(line: str) -> float:
    stamp = time.strptime(line[:19], "%Y-%m-%d %H:%M:%S")
    return time.mktime(stamp) + int(line[20:23]) / 1e3


def test_a_cube_job_in_a_thread_logs_its_workers_records_and_progress_as_blocks_finish(
    catalog, tmp_path, monkeypatch
):
    """Whole-read retries are logged in the job's read threads and on the reader's event loop,
    not in the job's thread: their warnings reach its log (and only its), and its progress lines
    are spread over the build, beside another job logging in its own thread."""
    monkeypatch.setitem(retries.OBSTORE_RETRY, "max_retries", 0)  # every fault reaches ndvicube
    monkeypatch.setattr(retries, "READ_ATTEMPTS", 10)  # (as tests/test_faults.py does)
    faults = Faults(error_rate=0.03, error_statuses=(503,), only=(".tif",), seed=2)
    cube, other = tmp_path / "cube.log", tmp_path / "tables.log"

    def tables_job():
        with job_logging(other, job="tables"):
            for n in range(3):
                logging.getLogger("ndvicube.jobs.tables").info("row %d", n)
                time.sleep(0.2)

    with RangeHTTPServer(catalog.root, latency_s=0.05, faults=faults) as server:
        items = items_subset(catalog, tmp_path / "items.json", base_url=server.url)
        remote.reset()
        spec = cube_spec(cube=Chunking(time_chunk=1))
        in_threads(cube_job(cube, spec=spec, items_path=items, out=tmp_path / "c.zarr"), tables_job)
    lines = cube.read_text().splitlines()
    retried = [line for line in lines if "failed (" in line and "; retry 1/" in line]
    assert retried, lines  # logged in the read threads, not the job's
    progress = [line for line in lines if PROGRESS.search(line)]
    done = [int(PROGRESS.search(line)[1]) for line in progress]
    assert (
        len(progress) >= 8
        and done == sorted(done)
        and done[-1] == int(PROGRESS.search(progress[-1])[2])
    )
    assert logged_at(progress[-1]) - logged_at(progress[0]) >= 0.15  # as blocks finish
    assert records(other) == [f"INFO ndvicube.jobs.tables row {n}" for n in range(3)]


def test_two_cube_jobs_at_once_build_their_own_and_a_failing_one_fails_alone(
    catalog, clean, tmp_path
):
    """Two areas' cube jobs in two threads of one process: one reads a COG that is gone and
    fails with its message, in its log only; the other's cube is the one built alone. No Dask
    pool, scheduler or callback, nor read deadline, is left set in the process."""
    with RangeHTTPServer(catalog.root, latency_s=0.02) as probe:
        gone = cog_path(served_features(catalog, tmp_path, probe.url)[3], "nir")
    logs = {name: tmp_path / f"{name}.log" for name in ("good", "bad")}
    with (
        RangeHTTPServer(catalog.root, latency_s=0.02, faults=Faults(missing=[gone])) as faulty,
        RangeHTTPServer(catalog.root, latency_s=0.02) as server,
    ):
        bad = items_subset(catalog, tmp_path / "bad.json", base_url=faulty.url)
        good = items_subset(catalog, tmp_path / "good.json", base_url=server.url)
        remote.reset()
        with pytest.raises(NdviCubeError, match="Cannot read asset 'nir'"):
            in_threads(
                cube_job(logs["bad"], spec=CUBE, items_path=bad, out=tmp_path / "bad.zarr"),
                cube_job(logs["good"], spec=CUBE, items_path=good, out=tmp_path / "good.zarr"),
            )
    assert ndvi_chunks(tmp_path / "good.zarr") == ndvi_chunks(clean)
    assert not (tmp_path / "bad.zarr").exists()
    assert not any("ERROR" in line for line in records(logs["good"]))
    assert records(logs["bad"])[-1].startswith("ERROR ndvicube.bad Cannot read asset 'nir' of")
    assert dask.config.get("pool", None) is None and dask.config.get("scheduler", None) is None
    assert Callback.active == set()
    assert retries.current_deadlines() == retries.Deadlines()


def test_ctrl_c_stops_a_cube_job_running_in_a_thread(catalog, tmp_path):
    """SIGINT reaches only the main thread: the handler the workflow's onstart installs stops
    the build in the job's thread too (which ran to its end before), then raises
    KeyboardInterrupt there as Python's own handler does, for Snakemake."""
    import os
    import signal
    import threading

    from ndvicube.errors import BuildInterrupted
    from ndvicube.jobs.interrupt import stop_cube_jobs_on_interrupt

    log, failed = tmp_path / "cube.log", []

    def job():
        try:
            cube_job(log, spec=spec, items_path=items, out=tmp_path / "c.zarr")()
        except BuildInterrupted as error:
            failed.append(error)

    before = signal.getsignal(signal.SIGINT)
    with RangeHTTPServer(catalog.root, latency_s=0.05) as server:
        items = items_subset(catalog, tmp_path / "items.json", base_url=server.url)
        remote.reset()
        spec = cube_spec(cube=Chunking(time_chunk=1))
        thread = threading.Thread(target=job)
        try:
            stop_cube_jobs_on_interrupt()
            thread.start()
            while thread.is_alive() and not (log.exists() and "progress: 1/" in log.read_text()):
                time.sleep(0.01)
            with pytest.raises(KeyboardInterrupt):
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(5)  # the handler raises here, in the main thread
            thread.join(timeout=5)
        finally:
            signal.signal(signal.SIGINT, before)
    assert not thread.is_alive() and failed
    assert not any("(100%)" in line for line in records(log))
    assert records(log)[-1].startswith("ERROR ndvicube.cube The cube build was stopped by")
    assert not (tmp_path / "c.zarr").exists() and not list(tmp_path.glob("*partial*"))

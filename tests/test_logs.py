"""Job logs: each record written once, whatever the job's stderr is (issue 12, point 5)."""

from __future__ import annotations

import subprocess
import sys

from ndvicube.logs import job_logging
from tests.workflow_helpers import records, repeated

#: A job as a workflow script runs it: a few records of each level through ndvicube's loggers.
JOB = """
import logging, sys
from ndvicube.logs import job_logging
with job_logging(sys.argv[1], job="demo"):
    logging.getLogger("ndvicube.search.stac").info("STAC API returned 12 item(s)")
    logging.getLogger("ndvicube.read.retries").warning("reading B04.tif failed; retry 1/4")
    logging.getLogger("ndvicube.jobs").info("phenology: 18 season(s) at 9 point(s)")
"""


def test_each_record_is_written_once_and_warnings_reach_the_terminal(tmp_path):
    log = tmp_path / "job.log"
    done = subprocess.run(
        [sys.executable, "-c", JOB, str(log)], capture_output=True, text=True, check=True
    )
    assert records(log) == [
        "INFO ndvicube.search.stac STAC API returned 12 item(s)",
        "WARNING ndvicube.read.retries reading B04.tif failed; retry 1/4",
        "INFO ndvicube.jobs phenology: 18 season(s) at 9 point(s)",
    ]
    assert done.stderr.splitlines() == ["[demo] WARNING: reading B04.tif failed; retry 1/4"]


def test_a_job_whose_stderr_is_its_log_writes_each_record_once(tmp_path):
    """A wrapper that points the job's stderr at its log file (`2>> job.log`): the log holds
    the three records and nothing else."""
    log = tmp_path / "job.log"
    with open(log, "a") as stderr:
        subprocess.run([sys.executable, "-c", JOB, str(log)], stderr=stderr, check=True)
    assert len(records(log)) == 3 == len(log.read_text().splitlines())
    assert repeated(log) == []


def test_two_jobs_in_one_process_keep_to_their_own_logs(tmp_path):
    import logging

    first, second = tmp_path / "first.log", tmp_path / "second.log"
    for path in (first, second):
        with job_logging(path, job=path.stem):
            logging.getLogger("ndvicube.jobs").info("written by %s", path.stem)
    assert records(first) == ["INFO ndvicube.jobs written by first"]
    assert records(second) == ["INFO ndvicube.jobs written by second"]
    assert logging.getLogger().handlers == []


def test_progress_lines_reach_the_terminal_too(tmp_path):
    """A long job says how far it is in Snakemake's output: records marked ``progress`` (the
    cube's lines) go to the terminal as well as the log; other INFO records only to the log."""
    log = tmp_path / "job.log"
    line = "cube progress: 1/4 blocks (25%), 8/31 solar days (12/50 scenes) written in 2.0 s"
    record = f"logging.getLogger('ndvicube.cube.store').info({line!r}, extra={{'progress': 1}})"
    job = JOB + f"    {record}\n"
    done = subprocess.run(
        [sys.executable, "-c", job, str(log)], capture_output=True, text=True, check=True
    )
    assert records(log)[-1] == f"INFO ndvicube.cube.store {line}"
    assert done.stderr.splitlines() == [
        "[demo] WARNING: reading B04.tif failed; retry 1/4",
        f"[demo] INFO: {line}",
    ]

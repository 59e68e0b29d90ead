"""A heavy job's process ends as soon as its work is done (ndvicube/jobs/job_exit.py): its
log complete, Python's finalisation skipped (issue 35: 1.2 to 2.1 s for a cube job)."""

from __future__ import annotations

import subprocess
import sys
import time

#: A job that logs to a file, leaves something that would hold a normal exit for 5 s (a
#: non-daemon thread, as Snakemake's timers or a pool's idle workers are), then calls leave().
JOB = """
import logging, sys, threading, time
logging.basicConfig(filename=sys.argv[1], level=logging.INFO)
logging.getLogger("ndvicube.cube").info("cube progress: 16/16 blocks (100%%)")
threading.Thread(target=time.sleep, args=(5,)).start()
print("written", end="")
from ndvicube.jobs.job_exit import leave
leave(%d)
raise SystemExit("leave() returned")
"""


def test_a_job_leaves_at_once_with_its_log_and_output_complete(tmp_path):
    log = tmp_path / "cube.log"
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", JOB % 0, str(log)], capture_output=True, text=True, timeout=30
    )
    took = time.perf_counter() - started
    assert done.returncode == 0, done.stderr
    assert done.stdout == "written"  # flushed, though it ended with no newline
    assert log.read_text().strip() == "INFO:ndvicube.cube:cube progress: 16/16 blocks (100%)"
    assert took < 4.0  # not the 5 s the thread would hold a normal exit


def test_leave_returns_where_skipping_the_exit_could_lose_work(tmp_path):
    """Outside the main thread (a job inside Snakemake's process) it returns."""
    import threading

    from ndvicube.jobs.job_exit import leave

    returned = []
    worker = threading.Thread(target=lambda: returned.append(leave()))
    worker.start()
    worker.join(timeout=10)
    assert returned == [None]

"""The light jobs in processes forked from a fork server (ndvicube/jobs/forked.py, issue 35 item
2): a job runs in a child that has the server's imports, its error comes back as it was raised,
and a child that dies fails its job with its exit code."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def report(path: str) -> None:
    """A job: where it ran, and whether the server's import was there before it."""
    loaded = "ndvicube.timeseries.smoothing" in sys.modules
    Path(path).write_text(json.dumps({"pid": os.getpid(), "preloaded": loaded}))


def fail_with_config_error() -> None:
    """A job whose input is wrong: the library's error, with its message."""
    from ndvicube.errors import ConfigError

    raise ConfigError("points: 'lat' 95.0 is not a latitude; use degrees in [-90, 90]")


def fail_with_a_bug() -> None:
    """A job with a bug: its traceback must reach the user."""
    {}["missing"]


def die() -> None:
    """A job killed from outside (as the system's out-of-memory killer does)."""
    os.kill(os.getpid(), signal.SIGKILL)


def start_a_process(path: str) -> None:
    """A job that starts a process of its own (the figures job's drawing processes)."""
    child = multiprocessing.get_context("fork").Process(target=report, args=(path,))
    child.start()
    child.join()


SCRIPT = """
import json, os, sys
from ndvicube.jobs import forked
from tests import test_forked as jobs
forked.start_server(["ndvicube.timeseries.smoothing"])
out = {"parent": os.getpid()}
forked.run_forked(jobs.report, sys.argv[1] + "/report.json")
for name in ("fail_with_config_error", "fail_with_a_bug", "die"):
    try:
        forked.run_forked(getattr(jobs, name))
    except BaseException as exc:
        out[name] = [type(exc).__name__, str(exc), "".join(getattr(exc, "__notes__", []))]
forked.run_forked(jobs.start_a_process, sys.argv[1] + "/grandchild.json")
print(json.dumps(out))
"""


def test_a_forked_job_has_the_servers_imports_and_its_errors_come_back(tmp_path):
    """One fresh process (the fork server is one per process): a job in a child of the server
    finds the module the server imported; a ConfigError comes back as a ConfigError with its
    message, a bug with its traceback, a killed child as its exit code; a job may start a
    process of its own (not a daemon, which may not)."""
    run = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], cwd=ROOT, text=True,
                         capture_output=True, timeout=120)  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    job = json.loads((tmp_path / "report.json").read_text())
    assert job["preloaded"] is True and job["pid"] != out["parent"]
    assert out["fail_with_config_error"][:2] == [
        "ConfigError", "points: 'lat' 95.0 is not a latitude; use degrees in [-90, 90]"
    ]  # fmt: skip
    kind, message, notes = out["fail_with_a_bug"]
    assert (kind, message) == ("KeyError", "'missing'")
    assert 'in fail_with_a_bug\n    {}["missing"]' in notes
    assert out["die"][0] == "ChildProcessError" and "exit code -9" in out["die"][1]
    grandchild = json.loads((tmp_path / "grandchild.json").read_text())
    assert grandchild["pid"] not in (job["pid"], out["parent"])

"""Snakemake's own process around the jobs that run in it (issue 35, item 2): one import at a
time, none that waits when the module is there, and the objects the jobs leave are not
collected at the exit."""

from __future__ import annotations

import subprocess
import sys
import time

from tests.workflow_helpers import demo_config, snakemake, write_config

#: Real Earth Search items of tile 13TDE, April 2024 (../shared/fixtures), and a box in it.
REAL_ITEMS = "earth-search-v1/sentinel-2-c1-l2a_13TDE_2024-04.json"
BOX = [-105.2, 39.8, -105.0, 40.0]


#: Holds a million objects in reference cycles, as a long run's libraries and jobs leave them
#: behind, optionally leaves them to the exit, and prints when it is done.
EXITING = """
import gc, sys, time
from ndvicube.jobs.snakemake_exit import leave_objects_to_exit
held = []
for _ in range(1_000_000):
    cycle = []
    cycle.append(cycle)
    held.append(cycle)
if sys.argv[1] == "left":
    leave_objects_to_exit()
    print(gc.get_freeze_count(), file=sys.stderr)
print(time.time(), flush=True)
"""


def test_objects_left_to_the_exit_end_the_process_sooner():
    """Python's exit collects every object in a cycle (0.4-0.5 s for these, 0.8-1.9 s for
    Snakemake's process after the demo's light jobs); frozen, they are left to the OS."""

    def exit_seconds(mode: str) -> tuple[float, str]:
        run = subprocess.run([sys.executable, "-c", EXITING, mode], capture_output=True,
                             text=True, check=True)  # fmt: skip
        return time.time() - float(run.stdout), run.stderr

    collected, _ = exit_seconds("collected")
    left, frozen = exit_seconds("left")
    assert int(frozen) > 1_000_000
    assert left < collected / 3, f"exit in {left:.2f} s when left, {collected:.2f} s collected"


def test_snakemakes_hooks_leave_its_objects_to_the_exit(tmp_path, shared_fixtures):
    """The workflow's hooks freeze what Snakemake's process holds, after the last job
    (ndvicube/jobs/snakemake_exit.py)."""
    point = {"id": "p", "lon": -105.1, "lat": 39.9}
    config = demo_config(str(shared_fixtures / REAL_ITEMS), [point])
    config |= {"start": "2024-03-31", "end": "2024-04-22",
               "areas": {"t13": {"bbox": BOX, "points": [point]}}}  # fmt: skip
    run = snakemake(tmp_path, write_config(tmp_path / "config.yaml", config), "--cores", "1",
                    "--verbose", "results/t13/items.json")  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    assert "ndvicube: the jobs' objects are left to the exit" in run.stdout + run.stderr


#: The preload's imports, then what every light job's Dask computation does; prints the
#: packages that computation still had to import.
COMPUTING = """
import importlib, sys
from ndvicube.jobs.preload import LIGHT_JOB_MODULES
for name in LIGHT_JOB_MODULES:
    importlib.import_module(name)
before = set(sys.modules)
import dask.array
dask.array.ones(4, chunks=2).sum().compute()
print(sorted({name.split(".")[0] for name in set(sys.modules) - before}))
"""


def test_a_dask_computation_after_the_preload_imports_nothing():
    """Dask's compute() imports `distributed` to look for a client (0.2-0.3 s): the preload
    imports it, or the quick-look job pays it on the run's tail."""
    run = subprocess.run([sys.executable, "-c", COMPUTING], capture_output=True, text=True,
                         check=True)  # fmt: skip
    assert run.stdout.strip() == "[]"


RACING_IMPORTS = """
import importlib, sys, threading
from ndvicube.jobs.import_lock import serialise_imports
serialise_imports()
errors = []
def preload():
    try:
        importlib.import_module("zarr")
    except BaseException as exc:
        errors.append(repr(exc))
def job():
    try:
        from ndvicube.cube.zarrstore import local_store  # noqa: F401
    except BaseException as exc:
        errors.append(repr(exc))
threads = [threading.Thread(target=preload), threading.Thread(target=job)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(errors, "zarr.storage" in sys.modules)
"""


def test_two_job_threads_importing_zarr_at_once_both_get_it():
    """zarr's modules import each other in a circle: two threads importing it at once failed
    (_DeadlockError in one, 'partially initialized module' in the other: 5 runs of 5 without
    the lock), as the cube job did beside the preload thread. One import at a time in
    Snakemake's process (ndvicube/jobs/import_lock.py, from the workflow's onstart)."""
    for _ in range(3):
        run = subprocess.run([sys.executable, "-c", RACING_IMPORTS], capture_output=True,
                             text=True, check=True)  # fmt: skip
        assert run.stdout.strip() == "[] True", run.stdout + run.stderr


LOADED_WHILE_LOCKED = """
import builtins, threading, urllib3.response
from ndvicube.jobs.import_lock import IMPORT_LOCK, serialise_imports
serialise_imports()
held, release = threading.Event(), threading.Event()
def long_import():  # as the preload thread's pandas: the lock held for its whole import
    with IMPORT_LOCK:
        held.set()
        release.wait(30)
holder = threading.Thread(target=long_import)
holder.start()
held.wait()
done = []
def job(name, package, level):  # urllib3's `from .response import HTTPResponse` in a response
    builtins.__import__(name, {"__package__": package}, None, ("HTTPResponse",), level)
    done.append(name or ".")
for args in (("response", "urllib3", 1), ("urllib3.response", None, 0)):
    thread = threading.Thread(target=job, args=args)
    thread.start()
    thread.join(5)
new = threading.Thread(target=job, args=("http.cookiejar", None, 0))
new.start()
new.join(0.5)
print(done, new.is_alive())
release.set()
"""


def test_a_job_importing_a_loaded_module_does_not_wait_for_the_preloads_import():
    """While another thread holds the import lock (the preload's pandas), an import of a module
    that is already there, relative or not, returns at once; an import of a new module waits."""
    run = subprocess.run([sys.executable, "-c", LOADED_WHILE_LOCKED], capture_output=True,
                         text=True, check=True)  # fmt: skip
    assert run.stdout.strip() == "['response', 'urllib3.response'] True", run.stderr

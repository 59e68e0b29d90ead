"""End a heavy job's process as soon as its outputs are written, without finalising Python.

A cube job's process holds about 1 GB (decoded tiles, read windows) and the modules of odc-stac,
xarray, Dask, zarr, async-tiff and obstore. Once its store is published, Python's exit still
runs the atexit handlers, collects that heap and tears the modules down one by one: measured
1.2 to 2.1 s on this 2-core machine (a 20 km cube, the machine loaded) - time Snakemake waits
before it sees the job done (issue 35). The benchmark floors already leave by ``os._exit``
(``bench/_engine_trial.py``; async-tiff and obstore objects alive during finalisation may also
crash it, ``ndvicube.read.remote._shutdown``).

:func:`leave` flushes what must reach the files (the log handlers, stdout, stderr) and ends
the process at once. It does nothing but return where skipping the exit could lose something:
outside the main thread (a job run inside Snakemake's own process) or while child processes
(a local Dask cluster's workers) are alive.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import sys
import threading


def leave(code: int = 0) -> None:
    """Flush the logs and standard streams, then end the process with ``code`` at once; return
    instead when this is not a job's own process or it has children (module docstring)."""
    if threading.current_thread() is not threading.main_thread():
        return
    if multiprocessing.active_children():
        return
    logging.shutdown()  # flushes and closes every handler: the job's log file is complete
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # closed or gone: nothing to lose
            stream.flush()
    os._exit(code)

"""Let ``snakemake`` exit as soon as its last job is done.

Snakemake 9's scheduler throttles job starts (``--max-jobs-per-timespan``, default ``100/1s``):
after every scheduling pass it starts a ``threading.Timer`` of one timespan that wakes the
scheduler again. The timer thread is not a daemon, so once the last job has finished the
interpreter still waits for the last timer before it exits: one idle second added to every run
that executed a job (measured: 1.55 s from "unlocking" to the exit of ``snakemake --cores 2`` on
the demo; docs/performance.md). The timespan cannot be set below one second from the command
line (``100ms`` parses as 100 minutes), and ``0s`` turns the timer into a busy loop.

The workflow's ``onsuccess``/``onerror`` hooks run after the scheduler has returned, when no job
is left to start, so cancelling the timers there changes nothing but the exit time.

The interpreter's own exit is the other delay: after a run whose jobs ran in Snakemake's
process, the garbage collector tracks hundreds of thousands of objects (about 250,000 on the
demo when the light jobs' pandas, xarray, Dask and matplotlib were imported there too, before
they were forked; the cube's libraries and Snakemake's DAG still are), and Python's
finalization walks them in several full collections before the process ends: 0.8 to 1.9 s
after the last hook on the demo then (docs/performance.md). The hooks
freeze them instead (:func:`leave_objects_to_exit`), so the process ends in about 0.1 s.
"""

from __future__ import annotations

import gc
import threading

#: The scheduler method whose timers are cancelled (its callback is a lambda defined in it).
RESCHEDULING = "JobScheduler._schedule_reevalutation"


def cancel_rescheduling_timers() -> int:
    """Cancel the scheduler's pending re-scheduling timers; returns how many were pending.

    Only timers whose callback Snakemake's scheduler created are touched: a timer started by
    anything else (a user's hook, a plugin) runs as it would.
    """
    cancelled = 0
    for thread in threading.enumerate():
        function = getattr(thread, "function", None)
        if isinstance(thread, threading.Timer) and RESCHEDULING in _qualname(function):
            thread.cancel()
            cancelled += 1
    return cancelled


def _qualname(function: object) -> str:
    return getattr(function, "__qualname__", "")


def leave_objects_to_exit() -> None:
    """Move every object the garbage collector tracks out of its reach (``gc.freeze``, which
    takes no time: counting them would take 70 ms), so the interpreter's exit does not walk
    them.

    Only for a process that is about to end: frozen objects in reference cycles are never
    freed. Objects freed by their reference count still are (files closed, buffers flushed),
    and ``atexit`` handlers still run (``logging.shutdown`` flushes Snakemake's log). What is
    lost is the finalizers of cyclic garbage at exit, which Python does not promise to run.
    """
    gc.freeze()

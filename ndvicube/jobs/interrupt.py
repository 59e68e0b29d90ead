"""Ctrl-C stops a cube job that runs in a thread of Snakemake's process.

A job in its own process gets the terminal's SIGINT itself and ends. A ``run:`` job in a
thread of Snakemake's process (``profiles/default``) gets nothing: Python delivers signals to
the main thread, where Snakemake then waits for its job threads to end - for a cube job, its
whole build (measured: 14 s after Ctrl-C on the 20 km benchmark, where the job process ended
in 2.8 s; an hour on a large area). Installed from the workflow's ``onstart`` (the main
thread), :func:`stop_cube_jobs_on_interrupt` cancels the builds' thread pools first
(:func:`ndvicube.compute.cancel_job_pools`: each build then fails at once in its thread and
removes its half-written store), then does what the handler before it did - Python's
``KeyboardInterrupt``, which Snakemake handles as before.
"""

from __future__ import annotations

import signal
from types import FrameType


def stop_cube_jobs_on_interrupt() -> None:
    """Chain the cube builds' cancellation before this process's SIGINT handler (idempotent;
    from the main thread only, as Python requires)."""
    previous = signal.getsignal(signal.SIGINT)
    if getattr(previous, "stops_cube_jobs", False):
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        from ndvicube.compute import cancel_job_pools

        cancel_job_pools()
        if callable(previous):
            previous(signum, frame)
        elif previous == signal.SIG_DFL:
            raise KeyboardInterrupt

    handler.stops_cube_jobs = True  # type: ignore[attr-defined]
    signal.signal(signal.SIGINT, handler)

"""The light jobs in processes forked from a server that has imported their libraries.

Snakemake runs the ``run:`` jobs in threads of its own process (``force-use-threads``), so no
job pays an interpreter or imports of its own. But one process has one interpreter lock: the
light jobs' imports (xarray, dask.array, matplotlib: 3.4 s of Python here) shared it with the
cube job running beside them, which took 3.0-3.7 s instead of 1.9 s, and the figures and the
quick-look, which run at once, drew one at a time. A fork server (``multiprocessing``'s
``forkserver``) started when the workflow starts imports those libraries in a process of its
own, on another core; each light job then runs in a child forked from it, which costs
milliseconds and has them all: no import, no lock shared with the cube or with the other light
jobs, and the memory a job used is given back when its process ends.

A job's error comes back to Snakemake as the exception the job raised (its message already in
the job's log, as in a process of its own); a child that dies without one (killed, out of
memory) fails its job with its exit code.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import traceback
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from typing import Any

#: The rules whose jobs run in forked processes once :func:`start_server` has run.
FORKED_RULES = frozenset({"tables", "polygon_tables", "figures", "quicklook"})

_context: Any = None


def start_server(modules: Sequence[str]) -> None:
    """Start the fork server now, importing ``modules`` in its own process, and send the
    :data:`FORKED_RULES` jobs of this process to it from now on. Where the system has no fork
    server (Windows), the jobs stay in threads of this process."""
    global _context
    try:
        context = multiprocessing.get_context("forkserver")
    except ValueError:
        return
    context.set_forkserver_preload(list(modules))
    from multiprocessing import forkserver

    forkserver.ensure_running()
    _context = context


def started() -> bool:
    """Whether the light jobs of this process run in forked processes."""
    return _context is not None


def run_forked(job: Callable[..., None], *args: Any) -> None:
    """Run ``job(*args)`` in a child of the fork server and wait for it; raise what it raised."""
    receiving, sending = _context.Pipe(duplex=False)
    # Not a daemon: a daemon may start no process, and the figures job starts drawing ones.
    child = _context.Process(target=_child, args=(sending, os.getpid(), job, args))
    child.start()
    sending.close()
    try:
        outcome = receiving.recv()
    except EOFError:
        outcome = None
    child.join()
    if outcome is not None:
        raise pickle.loads(outcome)
    if child.exitcode != 0:
        raise ChildProcessError(
            f"the job's process ended with exit code {child.exitcode} before it finished "
            "(a negative code is the signal that killed it: -9 is often the system out of memory)"
        )


def _child(sending: Connection, parent: int, job: Callable[..., None], args: tuple) -> None:
    """In the child: run the job; send None, or the exception it raised."""
    from ndvicube.logs import FORKED_VARIABLE

    os.environ[FORKED_VARIABLE] = str(parent)  # said by the job's first line (NDVICUBE_TIMING)
    try:
        job(*args)
    except SystemExit as stop:  # the job's logging ended an NdviCubeError so (ndvicube.logs)
        sending.send(_pickled(stop.__context__ or stop))
    except BaseException as exc:  # any error goes back to the job in Snakemake, and a bug's
        exc.add_note("".join(traceback.format_exc()))  # traceback with it
        sending.send(_pickled(exc))
    else:
        sending.send(None)
    finally:
        sending.close()


def _pickled(exc: BaseException) -> bytes:
    """``exc`` pickled, or a RuntimeError with its type and message if it does not pickle."""
    try:
        data = pickle.dumps(exc)
        pickle.loads(data)
        return data
    except Exception:  # what the parent needs is the message
        return pickle.dumps(RuntimeError(f"{type(exc).__name__}: {exc}"))


def plain(values: Any) -> Any:
    """Snakemake's named lists as plain ones of strings (not its file objects, which carry the
    rule and its workflow), so that they travel to the child. A list with unnamed entries
    (none of the light rules has one) goes as it is."""
    from snakemake.iocontainers import Namedlist

    if isinstance(values, Namedlist):
        named = dict(values.items())
        if sum(len(v) if isinstance(v, list) else 1 for v in named.values()) != len(values):
            return values
        return Namedlist(fromdict={name: plain(value) for name, value in named.items()})
    if isinstance(values, str):
        return str(values)
    if isinstance(values, list):
        return [plain(v) for v in values]
    return values

"""Where a cube job's Dask graph runs: threads in the job, a local cluster, or a remote one.

The choice changes how fast a cube is built, never its values, so it is read from the config's
``compute`` section at run time rather than passed as a rule parameter (a parameter change would
rerun the cube and everything after it).

* ``threads`` (default): Dask's threaded scheduler in the job process, with a pool of
  ``io_threads`` threads (reads are network-bound, so more threads than cores) that the job
  owns, so a failure can wait for the tasks still running (:func:`drain_running_tasks`);
* ``local``: a distributed ``LocalCluster`` of the job's cores (one worker process per core);
* an address such as ``tcp://10.0.0.5:8786``: an existing scheduler (dask-jobqueue,
  Kubernetes, ``dask scheduler`` anywhere). Its workers must see the cube's folder (a shared
  file system), since they write the Zarr chunks.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import weakref
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from ndvicube.errors import BuildInterrupted

log = logging.getLogger(__name__)

#: Concurrent COG reads of a cube job: reads wait on the network, so more than its cores. The
#: cube rules declare it as their ``io_threads`` resource (override it with ``set-resources``).
IO_THREADS = 16
#: Write blocks of the cube engine computed at once per job core (at least 2 in all: one block's
#: reads wait on the network while another is decoded and masked). 1 per core was as fast as 2
#: on the 20 km benchmark and peaks 0.4 GB lower (docs/performance.md, "The cube engine").
BLOCKS_PER_CORE = 1


@dataclass(frozen=True)
class Compute:
    """How a cube job computes and reads: the ``compute`` section (field by field like its YAML
    keys) and the job's ``threads`` and ``io_threads``. None of it changes a value of the cube."""

    scheduler: str = "threads"
    """``threads``, ``local`` or a ``tcp://`` address (see above)."""
    reader: str = "range"
    """How COGs are read: ``range`` (:mod:`ndvicube.read.remote`) or ``gdal``."""
    read_deadline_s: float | None = None
    """Bound on each COG's read, retries included (None: ``read.retries.COG_DEADLINE_S``)."""
    threads: int = 1
    """The job's cores (Snakemake's ``threads``)."""
    io_threads: int = IO_THREADS
    """Concurrent reads (the rule's ``io_threads`` resource): bounds the write blocks computed
    at once (:attr:`blocks_at_once`), each of which has all its requests in flight."""

    @property
    def blocks_at_once(self) -> int:
        """Write blocks computed at once in this job (or per local cluster worker): enough
        to read one while another is decoded and masked, few enough that memory is bounded by
        the block size, not by ``io_threads`` (:data:`BLOCKS_PER_CORE`)."""
        return max(1, min(self.io_threads, max(2, BLOCKS_PER_CORE * max(1, self.threads))))


class JobPool(ThreadPoolExecutor):
    """The job's threads: each task runs in the context of the code that submitted it, so what
    it logs is its job's (:data:`ndvicube.logs.JOB`: a cube job in a thread of Snakemake's
    process, beside other jobs) and it reads with its job's deadlines."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.interrupted = False
        """Set by :func:`cancel_job_pools`: the build's failure is :class:`BuildInterrupted`."""
        _POOLS.add(self)

    def submit(self, fn, /, *args, **kwargs):
        return super().submit(contextvars.copy_context().run, fn, *args, **kwargs)


#: The pools of the builds running in this process (:func:`cancel_job_pools`).
_POOLS: weakref.WeakSet[JobPool] = weakref.WeakSet()


def cancel_job_pools() -> int:
    """Stop every build of this process on the threaded scheduler; returns how many.

    Their pools take no new task and drop the queued ones, so each build fails in its own
    thread at once, after the tasks already running (a block each), and removes its
    half-written store. For Ctrl-C in Snakemake's process, where a cube job is a thread that
    no signal reaches (:mod:`ndvicube.jobs.interrupt`).
    """
    pools = list(_POOLS)
    for pool in pools:
        pool.interrupted = True
        pool.shutdown(wait=False, cancel_futures=True)
    return len(pools)


def interrupted(pool: Any) -> BuildInterrupted | None:
    """What a build on ``pool`` that just failed reports, when :func:`cancel_job_pools` stopped
    it (None otherwise: its own error stands)."""
    if not getattr(pool, "interrupted", False):
        return None
    return BuildInterrupted(
        "The cube build was stopped by an interrupt (Ctrl-C) before it finished: its "
        "half-written store was removed and the cube before it, if any, is unchanged. Run "
        "again to build it (days already in the kept store are copied, not read)."
    )


#: The scheduler of the build running in this context (:func:`dask_scheduler`): Dask's own
#: setting (``dask.config``) is process-wide, and two cube jobs in one Snakemake process would
#: each replace the other's pool there (and restore a shut-down one when they end).
SCHEDULER: contextvars.ContextVar[Any] = contextvars.ContextVar("ndvicube_scheduler", default=None)


def current_scheduler() -> Any:
    """The job's :class:`JobPool`, or its ``distributed`` client; None outside a build."""
    return SCHEDULER.get()


@contextlib.contextmanager
def dask_scheduler(scheduler: str, *, threads: int, io_threads: int) -> Iterator[None]:
    """Run the block's Dask computations on the chosen scheduler (:func:`current_scheduler`)."""
    if scheduler == "threads":
        pool = JobPool(io_threads, thread_name_prefix="ndvicube-read")
        token = SCHEDULER.set(pool)
        try:
            yield
        finally:
            SCHEDULER.reset(token)
            pool.shutdown(wait=True, cancel_futures=True)
        return
    from distributed import Client, LocalCluster

    cluster = None
    if scheduler == "local":
        workers = max(1, threads)
        cluster = LocalCluster(
            n_workers=workers,
            threads_per_worker=max(1, io_threads // workers),
            dashboard_address="127.0.0.1:0",
        )
        client = Client(cluster, set_as_default=False)
    else:
        client = Client(scheduler, timeout=30, set_as_default=False)
    log.info(
        "Dask distributed: scheduler %s, %d worker(s), dashboard %s",
        client.scheduler.address,
        len(client.scheduler_info()["workers"]),
        client.dashboard_link,
    )
    token = SCHEDULER.set(client)
    try:
        yield
    finally:
        SCHEDULER.reset(token)
        client.close()
        if cluster is not None:
            cluster.close()


def drain_running_tasks() -> None:
    """Wait for the tasks still running in this job's thread pool, and cancel queued ones.

    Dask's threaded scheduler raises a task's error at once, while the other tasks it started
    run on - and may write a chunk into a store being deleted because of that error. Called
    before a half-written store is removed, so nothing recreates it afterwards.
    """
    pool = current_scheduler()
    if isinstance(pool, ThreadPoolExecutor):
        pool.shutdown(wait=True, cancel_futures=True)

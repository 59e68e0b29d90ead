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
import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

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


@contextlib.contextmanager
def dask_scheduler(scheduler: str, *, threads: int, io_threads: int) -> Iterator[None]:
    """Run the Dask computations inside the block on the chosen scheduler."""
    import dask
    import dask.threaded

    if scheduler == "threads":
        pool = ThreadPoolExecutor(io_threads, thread_name_prefix="ndvicube-read")
        try:
            # The function, not the name "threads": with a name Dask imports distributed on
            # every compute to look for a client (0.4 s, measured).
            with dask.config.set(scheduler=dask.threaded.get, pool=pool):
                yield
        finally:
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
        client = Client(cluster)
    else:
        client = Client(scheduler, timeout=30)
    log.info(
        "Dask distributed: scheduler %s, %d worker(s), dashboard %s",
        client.scheduler.address,
        len(client.scheduler_info()["workers"]),
        client.dashboard_link,
    )
    try:
        with dask.config.set(scheduler=client):
            yield
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def drain_running_tasks() -> None:
    """Wait for the tasks still running in this job's thread pool, and cancel queued ones.

    Dask's threaded scheduler raises a task's error at once, while the other tasks it started
    run on - and may write a chunk into a store being deleted because of that error. Called
    before a half-written store is removed, so nothing recreates it afterwards.
    """
    import dask

    pool = dask.config.get("pool", None)
    if isinstance(pool, ThreadPoolExecutor):
        pool.shutdown(wait=True, cancel_futures=True)

"""Import the light jobs' libraries in Snakemake's process while the first jobs run.

The light jobs (``run:`` rules) run in threads of Snakemake's process, so each library is
imported once per workflow run, by the first job that needs it: pandas, xarray, Dask, Zarr and
matplotlib together take seconds on a slow machine, and the tables job, the first after the
cube, would pay them on the critical path. Started from the workflow's ``onstart`` hook, a
background thread imports them while the cube job works in its own process (or on a cluster
node), when Snakemake's process is idle; a job that needs a module still being imported waits
for it, never imports it twice: imports of new modules take one lock in this process
(:mod:`ndvicube.jobs.import_lock`), since two threads importing zarr at once fail.

Not during the search: the search job also runs in Snakemake's process, and parsing its items
is Python work that would share the interpreter with the imports, on the critical path (the
demo's search took 0.6 to 1.2 s beside them, 0.4 s alone). When the run has a search job, the
imports wait until a search job has ended (:func:`search_ended`, called by the job).
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Sequence

log = logging.getLogger(__name__)

#: What the tables, figures and quick-look jobs import (their functions import lazily, so
#: Snakemake's start-up does not pay for them).
LIGHT_JOB_MODULES = (
    "pandas",
    "xarray",
    "dask.array",
    "zarr",
    "ndvicube.cube.store",
    "ndvicube.cube.versions",
    "ndvicube.timeseries.points",
    "ndvicube.timeseries.tables",
    "ndvicube.timeseries.smoothing",
    "ndvicube.timeseries.phenology",
    "ndvicube.figures.series",
    "ndvicube.figures.maps",
    "ndvicube.viewer.page",
    # Dask's compute() imports it to look for a client (0.2-0.3 s), in the tables or the
    # quick-look job otherwise.
    "distributed",
)

#: Set once a search job of this run has ended (:func:`search_ended`): the imports start then.
SEARCH_ENDED = threading.Event()

#: What the cube job imports (``cube``, ``cube_tile``): run in a thread of Snakemake's process
#: when the jobs run there, imported first, since the cube is the job after the search.
#: Not odc-stac, xarray or pandas: the engine's path plans and writes without them
#: (docs/performance.md, "The cube job's imports"), and importing them here would take the
#: interpreter from the cube job for about a second.
CUBE_JOB_MODULES = (
    "zarr",
    "async_geotiff",
    "ndvicube.cube.sources",
    "ndvicube.cube.metadata",
    "ndvicube.cube.build",
    "ndvicube.cube.engine",
    "ndvicube.cube.blocks",
    "ndvicube.cube.store",
    "ndvicube.cube.update",
    "ndvicube.cube.objecttiles",
    "ndvicube.cube.progress",
    "ndvicube.cube.versions",
    "ndvicube.read.remote",
    "ndvicube.read.gdal",
    "ndvicube.read.missing",
    "ndvicube.search.profiles",
    "ndvicube.search.stac",
)


def import_in_background(
    modules: Sequence[str] = LIGHT_JOB_MODULES, *, after_search: bool = False
) -> threading.Thread:
    """Start a daemon thread importing ``modules``; return it. A daemon, so Snakemake exits
    when its last job ends even if a short run never needed them. With ``after_search`` (the
    run has a search job), the imports start once a search job has ended."""
    thread = threading.Thread(
        target=_import_all,
        args=(tuple(modules), SEARCH_ENDED if after_search else None),
        name="ndvicube-preload",
        daemon=True,
    )
    thread.start()
    return thread


def search_ended() -> None:
    """Say that a search job has ended (successful or not): the imports may start."""
    SEARCH_ENDED.set()


def _import_all(modules: tuple[str, ...], after: threading.Event | None) -> None:
    if after is not None:
        after.wait()
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError as exc:  # the job that needs it reports it, with its own message
            log.debug("preloading %s failed: %s", name, exc)

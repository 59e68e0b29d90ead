"""What the jobs that run in Snakemake's process import, imported before they start.

Under ``profiles/default`` the jobs are ``run:`` blocks that Snakemake runs in threads of its
own process (the light ones in children of a fork server: :mod:`ndvicube.jobs.forked`), so no
job pays an interpreter of its own. Their libraries are imported ahead of them, off the
critical path:

* the light jobs' (:data:`LIGHT_JOB_MODULES`: pandas, xarray, Dask, matplotlib - seconds on a
  slow machine) by the fork server, in its own process, from the workflow's ``onstart``;
* the search's and the cube job's (:data:`SEARCH_JOB_MODULES`, :data:`CUBE_JOB_MODULES`) by a
  thread of Snakemake's process, started from the same hook (:func:`prepare_cube_jobs`), since
  those jobs run in its threads. A job that needs a module still being imported waits for it:
  imports of new modules take one lock in this process (:mod:`ndvicube.jobs.import_lock`),
  since two threads importing zarr at once fail. So the lists must be whole (a module a job
  imports later waits for the whole import in progress), and the search's come first.
"""

from __future__ import annotations

import importlib
import logging
import threading

log = logging.getLogger(__name__)

#: What the tables, figures and quick-look jobs import (their functions import lazily, so
#: Snakemake's start-up does not pay for them): the fork server's imports.
LIGHT_JOB_MODULES = (
    "pandas",
    "xarray",
    "dask.array",
    "zarr",
    "ndvicube.jobs.rules",
    "ndvicube.jobs.forked",
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

#: What the cube job imports (``cube``, ``cube_tile``), all of it: a module the job imported
#: after it started waited for the whole import in progress in the process (one at a time,
#: :mod:`ndvicube.jobs.import_lock`); tests/test_imports.py checks that the job imports nothing
#: after :func:`prepare_cube_jobs`. Not odc-stac, xarray or pandas: the engine's path plans and
#: writes without them (docs/performance.md, "The cube job's imports").
CUBE_JOB_MODULES = (
    "zarr",
    "async_geotiff",
    "requests",
    "pystac",
    "pystac.extensions.ext",
    "pystac.extensions.label",
    "dateutil.parser",
    "dateutil.relativedelta",
    "spyndex",
    "odc.geo.overlap",
    "multiprocessing.synchronize",
    "ndvicube.jobs.rules",
    "ndvicube.cube.sources",
    "ndvicube.cube.metadata",
    "ndvicube.cube.build",
    "ndvicube.cube.engine",
    "ndvicube.cube.blocks",
    "ndvicube.cube.load",
    "ndvicube.cube.mask",
    "ndvicube.cube.radiometry",
    "ndvicube.cube.objectstore",
    "ndvicube.cube.store",
    "ndvicube.cube.update",
    "ndvicube.cube.objecttiles",
    "ndvicube.cube.progress",
    "ndvicube.cube.versions",
    "ndvicube.read.remote",
    "ndvicube.read.remote_window",
    "ndvicube.read.http_store",
    "ndvicube.read.nodata",
    "ndvicube.read.tiles",
    "ndvicube.read.gdal",
    "ndvicube.read.missing",
    "ndvicube.redirects",
    "ndvicube.search.profiles",
    "ndvicube.search.stac",
)


#: What the search job imports, which starts as the preload does: imported first, so that the
#: search waits for them alone (tens of milliseconds), not behind zarr's or pystac's imports
#: (the search took 0.7-0.9 s so, against 0.35-0.45 s).
SEARCH_JOB_MODULES = (
    "ndvicube.jobs.rules",
    "ndvicube.jobs.search",
    "ndvicube.search.stac",
    "ndvicube.search.http",
    "ndvicube.redirects",
    "pystac_client",
    "pystac.extensions.raster",
    "pystac.extensions.classification",
    "netrc",  # requests reads ~/.netrc with it, imported at the first request
)


def prepare_cube_jobs() -> None:
    """Import what the search and the cube jobs import (:data:`SEARCH_JOB_MODULES`, then
    :data:`CUBE_JOB_MODULES`) and read the package versions a cube's provenance records
    (:func:`ndvicube.cube.build.key_package_versions`, which imports the ``email`` package):
    the cube job then imports nothing new (it waited 0.9-1.1 s for the email package behind
    pandas' import when the light jobs' imports were done in this process)."""
    _import_all(SEARCH_JOB_MODULES + CUBE_JOB_MODULES)
    from ndvicube.cube.build import key_package_versions

    key_package_versions()


def prepare_cube_jobs_in_background() -> threading.Thread:
    """Start a daemon thread running :func:`prepare_cube_jobs`; return it."""
    thread = threading.Thread(target=prepare_cube_jobs, name="ndvicube-preload-cube", daemon=True)
    thread.start()
    return thread


def _import_all(modules: tuple[str, ...]) -> None:
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError as exc:  # the job that needs it reports it, with its own message
            log.debug("preloading %s failed: %s", name, exc)

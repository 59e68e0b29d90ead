"""One module per workflow rule: what its job reads, which stage function it calls, what it
writes. The rules' ``run:`` blocks (:mod:`ndvicube.jobs.rules`: the search and the cube in
threads of Snakemake's process, the tables, figures and quick-look in processes forked for it)
and ``scripts/*.py`` (the composites, in a process of its own) call these with the job's
values, so tests and benchmarks run exactly what the rules run, in one process.

* :mod:`~ndvicube.jobs.search` - rule ``search``: the area's items (``items.json``).
* :mod:`~ndvicube.jobs.fields` - rule ``fields``: the area's polygons screened
  (``fields.parquet``, ``fields_rejected.csv``).
* :mod:`~ndvicube.jobs.cube` - rules ``cube`` and ``cube_tile``: the index cube (Zarr).
* :mod:`~ndvicube.jobs.join_tiles` - rule ``join_tiles``: an area's cube from its tiles.
* :mod:`~ndvicube.jobs.tables` - rule ``tables``: point series, smoothed, seasons.
* :mod:`~ndvicube.jobs.polygon_tables` - rule ``polygon_tables``: the same per polygon.
* :mod:`~ndvicube.jobs.figures` - rule ``figures``: point figures and the overview.
* :mod:`~ndvicube.jobs.quicklook` - rule ``quicklook``: the area's maps.
* :mod:`~ndvicube.jobs.composites` - rule ``composites``: composites store and COGs.
* :mod:`~ndvicube.jobs.rules` - the rules' ``run:`` blocks: each rule's job function called
  with its job's values, in the job's logging.
* :mod:`~ndvicube.jobs.forked` - the tables, figures and quick-look jobs run in children of a
  fork server that imported their libraries (started from the workflow's ``onstart`` hook).
* :mod:`~ndvicube.jobs.preload` - the same hook: what the search and the cube jobs import,
  imported in Snakemake's process before they need it.
* :mod:`~ndvicube.jobs.snakemake_exit` - the workflow's ``onsuccess``/``onerror`` hooks: the
  ``snakemake`` process exits when its last job ends, not a second later, its objects left
  to the exit.

The job modules import their stage's code inside each function, so importing this package
costs a few milliseconds and a job pays only for its own imports. A job function has the name
of its rule where it can (``figures``, ``quicklook``...), so it is bound here after its module:
``ndvicube.jobs.figures`` is the function, ``ndvicube/jobs/figures.py`` its module.
"""

from ndvicube.jobs.composites import build_composites
from ndvicube.jobs.cube import build_cube
from ndvicube.jobs.fields import fields
from ndvicube.jobs.figures import figures
from ndvicube.jobs.join_tiles import join_tiles
from ndvicube.jobs.polygon_tables import polygon_tables
from ndvicube.jobs.quicklook import quicklook
from ndvicube.jobs.search import search_area
from ndvicube.jobs.tables import point_tables
from ndvicube.timeseries.steps import extract_polygon_series, extract_series, season_metrics, smooth

__all__ = [
    "build_composites",
    "build_cube",
    "extract_polygon_series",
    "extract_series",
    "fields",
    "figures",
    "join_tiles",
    "point_tables",
    "polygon_tables",
    "quicklook",
    "search_area",
    "season_metrics",
    "smooth",
]

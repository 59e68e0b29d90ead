"""Stage 5, composites: one map per period (a month, 16 days...) and index, and its COG.

* :mod:`ndvicube.composites.periods` - the period grid, each period's statistic (median, mean,
  max) and clear count, computed one Dask task per period and chunk; unchanged periods copied.
* :mod:`ndvicube.composites.cog` - Cloud-Optimized GeoTIFF exports, one per period and index.
* :mod:`ndvicube.composites.build` - the composites job's work: store and COGs kept in
  ``.work/`` between runs, published by hard links, a COG rewritten only when its sources
  changed.
"""

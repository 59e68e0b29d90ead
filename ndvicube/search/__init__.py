"""Stage 1, search: find an area's scenes in a STAC archive and keep them as ``items.json``.

* :mod:`ndvicube.search.stac` - the search itself: a STAC API (paged, filtered by the server)
  or a static ItemCollection/catalog JSON filtered here; reprocessed duplicates dropped; the
  items stored sorted.
* :mod:`ndvicube.search.items` - what is read from an item: acquisition time and solar day,
  projection, each band's scale, offset and nodata, the processing baseline.
* :mod:`ndvicube.search.profiles` - ``stac.profile``: an archive's item conventions (Earth
  Search, Planetary Computer) mapped to what the cube reads, and hrefs signed in memory.
* :mod:`ndvicube.search.http` - HTTP for STAC requests: timeouts, retries with backoff, HTML
  answers refused.
"""

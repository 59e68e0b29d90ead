"""Every way a COG is read, retried or skipped - the one place to look for the cube's reads.

* :mod:`ndvicube.read.remote` - ``http(s)://`` and ``s3://`` COGs (``compute.reader: range``,
  the default) through async-geotiff over ndvicube's HTTP client: one request for the header,
  one per run of adjacent tiles, decoded in Rust threads; pasted or warped as odc-stac does
  with GDAL's pixels (the same cube bytes).
* :mod:`ndvicube.read.http_store` - the remote reader's HTTP(S) client: byte ranges coalesced
  as obstore does, retried, and waiting as a 429/503's ``Retry-After`` asks (obstore's client
  never shows it), SAS tokens renewed before they expire, redirects followed without carrying
  a credential to another host (:mod:`ndvicube.redirects`), a file shorter than its header
  named as such; ``s3://`` by URLs obstore presigns.
* :mod:`ndvicube.read.tiles` - decoded COG tiles, fetched and decoded once per process and
  shared by neighbouring write blocks (a cache bounded in bytes); the counts of tiles fetched.
* :mod:`ndvicube.read.remote_window` - how one remote COG lands on a write block's grid:
  pasted, or nearest-neighbour in numpy, exactly as odc-stac's reader does with GDAL's pixels;
  GDAL for anything else.
* :mod:`ndvicube.read.remote_driver` - an odc-stac driver reading through the remote reader:
  what :func:`ndvicube.cube.load.load_cube` (odc-stac's ``load``, lazily) uses.
* :mod:`ndvicube.read.s3` - how ``s3://`` is reached: the environment GDAL reads (GDAL's and
  AWS's names), the standard credential files, unsigned when there are no credentials,
  requester-pays; obstore presigns each object's URL.
* :mod:`ndvicube.read.gdal` - where GDAL still serves: local files, reads from overviews (a
  cube coarser than the data), TIFFs the remote reader does not handle (multi-band, striped,
  pixel-is-point, a directory far from the start), and everything with
  ``compute.reader: gdal``; its settings (no directory listing, header in the first request,
  merged ranges, retries).
* :mod:`ndvicube.read.gdal_reader` - the GDAL reader itself: odc-loader's rasterio reader and
  driver with each read retried, GDAL's limits for the time left, redirects and short files.
* :mod:`ndvicube.read.short_file` - after GDAL fails to read a COG in words a cut file could
  cause, whether it is shorter than its TIFF header says (its header and last byte asked for):
  then the remote reader's message, not retried.
* :mod:`ndvicube.read.credentials` - a redirect followed by ndvicube before GDAL reads, when
  GDAL would carry a credential (``GDAL_HTTP_HEADERS``, ``GDAL_HTTP_COOKIE``, a signed href)
  to another host.
* :mod:`ndvicube.read.retries` - which failures are retried (network and server errors) and
  which are not (404, not a TIFF, a missing module, a bug), for both readers; obstore's
  per-request retry settings.
* :mod:`ndvicube.read.nodata` - which pixels are nodata and what an empty block starts from,
  as odc-loader decides it (its lines owned here: they are private there), for both readers.
* :mod:`ndvicube.read.vsi` - the GDAL path rasterio opens for a URI (``/vsicurl/...``), which
  names GDAL's cache entry a retry bypasses.
* :mod:`ndvicube.read.missing` - ``on_missing_asset``: a scene whose assets are gone or
  unreadable fails the job naming it, or is left out and listed in ``skipped.csv``.
"""

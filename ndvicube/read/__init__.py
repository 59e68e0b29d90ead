"""Every way a COG is read, retried or skipped - the one place to look for the cube's reads.

* :mod:`ndvicube.read.ranges` - HTTP(S) COGs by range requests (``compute.reader: range``, the
  default): one request for the header, one per run of adjacent tiles, decoded by tifffile and
  pasted or warped as odc-stac does with GDAL's pixels.
* :mod:`ndvicube.read.gdal` - where GDAL still serves: local files, ``s3://`` hrefs, reads from
  overviews (a cube coarser than the data), TIFFs the range reader does not handle (multi-band,
  pixel-is-point, a directory far from the start), and everything with ``compute.reader: gdal``;
  its settings (no directory listing, header in the first request, merged ranges, retries).
* :mod:`ndvicube.read.retries` - which failures are retried (network and server errors) and
  which are not (404, not a TIFF, a missing module, a bug), for both readers.
* :mod:`ndvicube.read.missing` - ``on_missing_asset``: a scene whose assets are gone or
  unreadable fails the job naming it, or is left out and listed in ``skipped.csv``.
"""

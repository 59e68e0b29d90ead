"""Stage 3, cube: the stored scenes turned into the masked index cube, one step per solar day.

* :mod:`ndvicube.cube.spec` - :class:`~ndvicube.cube.spec.CubeSpec`: grid, mask, indices,
  chunks and tile, the one value a cube job receives (the ``cloud_mask`` and ``cube`` sections).
* :mod:`ndvicube.cube.build` - the cube job's passes: days to copy or read, unreadable scenes
  read around, provenance.
* :mod:`ndvicube.cube.engine` - the cube job's engine: the build planned, one Dask task per
  write block (``time_chunk`` days x a square of chunks sized from the COG tiles), run on the
  configured scheduler; the store's template.
* :mod:`ndvicube.cube.progress` - the cube job's progress lines as its blocks finish (blocks,
  days, scenes, elapsed, time left), at least every 5% of the blocks or 30 s.
* :mod:`ndvicube.cube.plan` - the engine's plan: per day the groups and sources to read, the
  grids, the block size, the store.
* :mod:`ndvicube.cube.sources` - what the engine reads of each item (hrefs, grids, footprints,
  load configs) planned from the items' JSON, as odc-stac plans them, without importing it.
* :mod:`ndvicube.cube.metadata` - the engine's store metadata and coordinates written with
  zarr alone, xarray's and rioxarray's bytes.
* :mod:`ndvicube.cube.blocks` - one write block: its sources read at once, fused, masked,
  indices in numpy, its chunks written.
* :mod:`ndvicube.cube.load` - the lazy cube through odc-stac: scenes grouped by solar day and
  scaling, masked, indices computed.
* :mod:`ndvicube.cube.mask` - the cloud mask: SCL classes, their buffer, cloud probability,
  nodata.
* :mod:`ndvicube.cube.radiometry` - digital numbers to reflectance (scale and offset).
* :mod:`ndvicube.cube.indices` - spectral indices by name (``spyndex``) and the bands they need.
* :mod:`ndvicube.cube.store` - the Zarr store: written block by block, published by hard
  links, opened with its CRS; the attributes that record its days and grid.
* :mod:`ndvicube.cube.versions` - the published versions readers open: read-only hard links,
  the ``ndvi.zarr`` link moved to the newest in one rename, the oldest deleted.
* :mod:`ndvicube.cube.zarrstore` - which Zarr store a location is: local (no links needed) or
  an S3 prefix.
* :mod:`ndvicube.cube.objectstore` - the cube in S3 (``cube_store``): versions written by the
  tasks themselves, the pointer written last, the manifest Snakemake sees, server-side copies.
* :mod:`ndvicube.cube.update` - which days of an existing store can be copied, not read.
* :mod:`ndvicube.cube.tiles` - an area split into tile jobs, and joined without a copy.
* :mod:`ndvicube.cube.objecttiles` - tile jobs writing their chunks in place in one pending
  version in S3, which every tile job names alike; joined without a chunk read or copied.
"""

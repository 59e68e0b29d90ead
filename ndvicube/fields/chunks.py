"""Which chunks of a cube's grid a field set needs, and how its tile jobs share them.

A field set's cube is sparse: only the chunks some field touches are read and stored
(:attr:`ndvicube.cube.spec.CubeSpec.chunks`), so its cost follows the fields, not their box.
A polygon needs every chunk its area meets (exact statistics weigh every pixel it covers, even a
sliver); a point the chunk of the pixel it falls in. The cube engine adds the SCL buffer's
margin around each chunk when it reads (:meth:`ndvicube.cube.plan.EnginePlan.read_chunks`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from odc.geo.geobox import GeoBox

    from ndvicube.cube.spec import CubeSpec

Chunk = tuple[int, int]


def touched_chunks(
    geometries: Iterable,
    points_xy: Sequence[tuple[float, float]],
    geobox: GeoBox,
    chunk: int,
) -> list[Chunk]:
    """The sorted (row, column) chunks of ``geobox`` that the polygons ``geometries`` and the
    points ``points_xy`` touch (both in the grid's CRS; points off the grid are ignored)."""
    import shapely

    height, width = geobox.shape.yx
    rows, cols = math.ceil(height / chunk), math.ceil(width / chunk)
    t = geobox.affine
    r, c = np.divmod(np.arange(rows * cols), cols)
    x0, x1 = t.c + t.a * c * chunk, t.c + t.a * np.minimum((c + 1) * chunk, width)
    y0, y1 = t.f + t.e * r * chunk, t.f + t.e * np.minimum((r + 1) * chunk, height)
    boxes = shapely.box(np.minimum(x0, x1), np.minimum(y0, y1), np.maximum(x0, x1),
                        np.maximum(y0, y1))  # fmt: skip
    polygons = np.asarray(list(geometries), dtype=object)
    found: set[Chunk] = set()
    if len(polygons):
        _, hits = shapely.STRtree(boxes).query(polygons, predicate="intersects")
        found |= {(int(r[h]), int(c[h])) for h in np.unique(hits)}
    found |= set(_point_chunks(points_xy, geobox, chunk))
    return sorted(found)


def _point_chunks(points_xy: Sequence[tuple[float, float]], geobox: GeoBox, chunk: int):
    """The chunk of the pixel each point falls in (the nearest pixel the series samples)."""
    height, width = geobox.shape.yx
    inverse = ~geobox.affine
    for x, y in points_xy:
        col, row = (math.floor(v) for v in inverse * (x, y))
        if 0 <= row < height and 0 <= col < width:
            yield row // chunk, col // chunk


def split_chunks(chunks: Sequence[Chunk], parts: int) -> list[list[Chunk]]:
    """``chunks`` (sorted row by row) cut into ``parts`` runs as even as possible: a field set's
    tile jobs each build one run, so each reads about the same, wherever the fields lie (the
    first runs get one more chunk when they do not divide; a run may be empty)."""
    ordered = sorted(chunks)
    base, extra = divmod(len(ordered), parts)
    runs, first = [], 0
    for part in range(parts):
        count = base + (1 if part < extra else 0)
        runs.append(ordered[first : first + count])
        first += count
    return runs


def sparse_spec(
    spec: CubeSpec,
    fields_path: str | Path | None,
    points_lonlat: Sequence[tuple[float, float]],
) -> CubeSpec:
    """The spec of a field set's cube: ``spec`` holding only the chunks its accepted fields (the
    ``fields`` job's GeoParquet) and points touch; for a tile job, the tile's share of them on
    the whole grid (:func:`split_chunks`), so the join links every chunk where it lies."""
    import dataclasses

    from pyproj import Transformer

    from ndvicube.cube.load import area_geobox

    geobox = area_geobox(spec)
    polygons = _field_geometries(fields_path, spec.crs)
    to_grid = Transformer.from_crs("EPSG:4326", spec.crs, always_xy=True)
    points_xy = [to_grid.transform(lon, lat) for lon, lat in points_lonlat]
    chunks = touched_chunks(polygons, points_xy, geobox, spec.cube.spatial_chunk)
    if spec.tile is not None:
        tile = spec.tile
        chunks = split_chunks(chunks, tile.rows * tile.cols)[tile.row * tile.cols + tile.col]
    return dataclasses.replace(spec, tile=None, chunks=tuple(chunks))


def _field_geometries(path: str | Path | None, crs: str) -> list:
    """The accepted fields' geometries in the cube's CRS (none without a polygons file)."""
    if path is None:
        return []
    import geopandas as gpd

    return list(gpd.read_parquet(path).to_crs(crs).geometry)

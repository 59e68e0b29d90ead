"""Which chunks of a cube's grid a field set needs, and how its tile jobs share them.

A field set's cube is sparse: only the chunks some field touches are read and stored
(:attr:`ndvicube.cube.spec.CubeSpec.chunks`), so its cost follows the fields, not their box.
A polygon needs every chunk its area meets (exact statistics weigh every pixel it covers, even a
sliver); a point the chunk of the pixel it falls in. The cube engine adds the SCL buffer's
margin around each chunk when it reads (:meth:`ndvicube.cube.plan.EnginePlan.read_chunks`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from odc.geo.geobox import GeoBox

    from ndvicube.cube.spec import CubeSpec
    from ndvicube.geo import BBox

Chunk = tuple[int, int]


def touched_chunks(
    geometries: Iterable,
    points_xy: Sequence[tuple[float, float]],
    geobox: GeoBox,
    chunk: int,
) -> list[Chunk]:
    """The sorted (row, column) chunks of ``geobox`` that the polygons ``geometries`` and the
    points ``points_xy`` touch (both in the grid's CRS; points off the grid are ignored).

    Only the chunks within each polygon's bounds are tested, so the cost follows the fields,
    not the grid (a grid of millions of chunks made millions of boxes before).
    """
    import shapely

    polygons = np.asarray(list(geometries), dtype=object)
    found: set[Chunk] = set()
    if len(polygons):
        rows, cols, boxes = _candidate_chunks(polygons, geobox, chunk)
        owner = np.repeat(np.arange(len(polygons)), [len(r) for r in rows])
        rows, cols = np.concatenate(rows), np.concatenate(cols)
        hits = shapely.intersects(polygons[owner], np.concatenate(boxes))
        found |= {(int(r), int(c)) for r, c in zip(rows[hits], cols[hits], strict=True)}
    found |= set(_point_chunks(points_xy, geobox, chunk))
    return sorted(found)


def _candidate_chunks(polygons: np.ndarray, geobox: GeoBox, chunk: int):
    """Per polygon, the rows, columns and boxes (grid CRS) of the chunks its bounds meet."""
    import shapely

    height, width = geobox.shape.yx
    n_rows, n_cols = math.ceil(height / chunk), math.ceil(width / chunk)
    t = geobox.affine
    inverse = ~t
    out_rows, out_cols, out_boxes = [], [], []
    for x0, y0, x1, y1 in shapely.bounds(polygons):
        c0, r0 = inverse * (x0, y1)
        c1, r1 = inverse * (x1, y0)
        rs, cs = _span(r0, r1, chunk, n_rows), _span(c0, c1, chunk, n_cols)
        r, c = (a.ravel() for a in np.meshgrid(rs, cs, indexing="ij"))
        bx0, bx1 = t.c + t.a * c * chunk, t.c + t.a * np.minimum((c + 1) * chunk, width)
        by0, by1 = t.f + t.e * r * chunk, t.f + t.e * np.minimum((r + 1) * chunk, height)
        out_rows.append(r)
        out_cols.append(c)
        out_boxes.append(shapely.box(np.minimum(bx0, bx1), np.minimum(by0, by1),
                                     np.maximum(bx0, bx1), np.maximum(by0, by1)))  # fmt: skip
    return out_rows, out_cols, out_boxes


def _span(a: float, b: float, chunk: int, count: int) -> np.ndarray:
    """The chunk indices (0 .. count - 1) that pixel positions ``a`` .. ``b`` fall in."""
    low, high = sorted((a, b))
    return np.arange(max(0, math.floor(low / chunk)), min(count, math.floor(high / chunk) + 1))


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
    *,
    fit_grid: bool = False,
) -> CubeSpec:
    """The spec of a field set's cube: ``spec`` holding only the chunks its accepted fields (the
    ``fields`` job's GeoParquet) and points touch; for a tile job, the tile's share of them on
    the whole grid (:func:`split_chunks`), so the join links every chunk where it lies.

    With ``fit_grid`` (the workflow's field sets), the grid is that of the box of the accepted
    fields and the points (:func:`fitted_bbox`), not ``spec.bbox``: the config's box counts
    every field usable before the search, so a field rejected as ``outside every scene`` would
    otherwise widen the grid (the demo's ``far_away``: 303 x 158 px instead of 165 x 156).
    """
    from pyproj import Transformer

    from ndvicube.cube.load import area_geobox

    polygons = _field_geometries(fields_path, spec.crs)
    if fit_grid:
        spec = dataclasses.replace(spec, bbox=fitted_bbox(spec, polygons, points_lonlat))
    geobox = area_geobox(spec)
    to_grid = Transformer.from_crs("EPSG:4326", spec.crs, always_xy=True)
    points_xy = [to_grid.transform(lon, lat) for lon, lat in points_lonlat]
    chunks = touched_chunks(polygons, points_xy, geobox, spec.cube.spatial_chunk)
    if spec.tile is not None:
        tile = spec.tile
        chunks = split_chunks(chunks, tile.rows * tile.cols)[tile.row * tile.cols + tile.col]
    return dataclasses.replace(spec, tile=None, chunks=tuple(chunks))


def fitted_bbox(
    spec: CubeSpec, polygons: Sequence, points_lonlat: Sequence[tuple[float, float]]
) -> BBox:
    """The lon/lat box of the accepted ``polygons`` (in ``spec.crs``) and the points, or
    ``spec.bbox`` itself when both give the same grid (so a rerun with the same fields keeps
    the store's recorded grid, to the last digit, and reads nothing again)."""
    import shapely
    from pyproj import Transformer

    from ndvicube.cube.load import area_geobox

    lons = [lon for lon, _ in points_lonlat]
    lats = [lat for _, lat in points_lonlat]
    xy = shapely.get_coordinates(np.asarray(list(polygons), dtype=object))
    if len(xy):
        to_lonlat = Transformer.from_crs(spec.crs, "EPSG:4326", always_xy=True)
        lon, lat = to_lonlat.transform(xy[:, 0], xy[:, 1])
        lons += [float(np.min(lon)), float(np.max(lon))]
        lats += [float(np.min(lat)), float(np.max(lat))]
    if not lons:
        return spec.bbox
    bbox = (float(min(lons)), float(min(lats)), float(max(lons)), float(max(lats)))
    same = area_geobox(dataclasses.replace(spec, bbox=bbox)) == area_geobox(spec)
    return spec.bbox if same else bbox


def _field_geometries(path: str | Path | None, crs: str) -> list:
    """The accepted fields' geometries in the cube's CRS (none without a polygons file)."""
    if path is None:
        return []
    import geopandas as gpd

    return list(gpd.read_parquet(path).to_crs(crs).geometry)

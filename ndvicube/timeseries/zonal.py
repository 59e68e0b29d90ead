"""Exact zonal statistics: each polygon's cells on the cube grid with their coverage fractions.

Why: a pixel-centre rule loses a small field's edge pixels (a 60 m x 60 m parcel at 10 m has as
many edge pixels as inner ones) and gives a pixel shared by two overlapping fields to one of
them. Here every cell a polygon touches counts by the share of its area inside the polygon
(its *coverage*, 0 < c <= 1), as exactextract defines it, and overlapping polygons each keep
their own cells.

The costly geometry is done once per polygon set and grid (:func:`coverage_weights`, by
exactextract's ``cell_id`` and ``coverage`` operations over a raster of zeros shaped like the
cube); each date's statistics are then plain numpy over the cells' values
(:func:`zonal_statistics`), for all polygons and a block of dates at once. Their definitions are
exactextract's, so its own result on one date is the reference (tests/test_zonal.py):

* ``mean``: sum(c x v) / sum(c) over the clear (non-NaN) cells;
* ``median``: exactextract's weighted quantile 0.5 of the clear cells' values, weighted by c
  (the weighted form of the usual linear interpolation between order statistics, "type 7");
* ``count``: sum(c) over the clear cells - a float: two half-covered clear cells count 1.0.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import geopandas as gpd
    from affine import Affine
    from pyproj import CRS

#: Entries (cells x dates) reduced at once, all polygons together. Small enough for the dozen
#: float64 temporaries of a step to stay out of fresh memory pages: 10,000 fields (1.2 million
#: entries) run date by date in 0.1 s a date, against 0.18 s with 4 million entries a step.
ENTRIES_PER_STEP = 1_000_000


@dataclass(frozen=True)
class CoverageWeights:
    """Which cells of the cube grid each polygon covers, and how much of each.

    Entries are grouped by polygon, in the polygons' order: polygon ``k`` owns the entries
    ``starts[k]:starts[k + 1]`` (none when it misses the grid). A cell shared by overlapping
    polygons is stored once in ``rows``/``cols`` and referred to by each polygon's entries, so
    it is read once.
    """

    starts: np.ndarray
    """(polygons + 1,) int64 offsets of each polygon's entries."""
    cells: np.ndarray
    """(entries,) int64: the cell of each entry, an index into ``rows`` and ``cols``."""
    coverage: np.ndarray
    """(entries,) float64: the share of the cell's area inside the polygon, in (0, 1]."""
    rows: np.ndarray
    """(cells,) int64 row of each distinct cell on the cube grid (0 at the top)."""
    cols: np.ndarray
    """(cells,) int64 column of each distinct cell."""

    @property
    def polygons(self) -> int:
        """How many polygons (including those with no cell)."""
        return len(self.starts) - 1

    @cached_property
    def segments(self) -> Segments:
        """The polygons' entries as :class:`Segments` (made once, used at every date)."""
        return Segments.from_starts(self.starts)

    def total(self) -> np.ndarray:
        """(polygons,) each polygon's area in cells: the sum of its coverage fractions."""
        return self.segments.sum(self.coverage[None, :])[0]


@dataclass(frozen=True)
class Segments:
    """Consecutive runs of entries (a polygon's), and what every date's reduction of them
    needs that does not depend on the date."""

    starts: np.ndarray
    """(segments + 1,) offsets: segment ``k`` is ``starts[k]:starts[k + 1]``."""
    owner: np.ndarray
    """(entries,) the segment of each entry."""
    position: np.ndarray
    """(entries,) each entry's place in its segment (0 for its first)."""
    filled: np.ndarray
    """The segments that have entries."""

    @classmethod
    def from_starts(cls, starts: np.ndarray) -> Segments:
        """The segments between the offsets ``starts``."""
        starts = np.asarray(starts, dtype=np.int64)
        lengths = np.diff(starts)
        owner = np.repeat(np.arange(len(lengths)), lengths)
        position = np.arange(starts[-1]) - starts[:-1][owner]
        return cls(starts, owner, position, np.flatnonzero(lengths > 0))

    @property
    def count(self) -> int:
        """How many segments."""
        return len(self.starts) - 1

    def sum(self, a: np.ndarray) -> np.ndarray:
        """(rows, segments) sums of each row's segments (0 for an empty one)."""
        out = np.zeros((a.shape[0], self.count), dtype=a.dtype)
        if len(self.filled):
            out[:, self.filled] = np.add.reduceat(a, self.starts[self.filled], axis=1)
        return out


def coverage_weights(
    geometries: gpd.GeoSeries, *, transform: Affine, shape: tuple[int, int], crs: CRS | str
) -> CoverageWeights:
    """Each polygon's cells and coverage fractions on the grid ``transform`` x ``shape``.

    ``geometries`` are in the grid's CRS (``crs``). The grid is north-up (as every cube is);
    ``shape`` is (rows, columns). One exactextract pass over all polygons: 10,000 fields of
    about a hectare on a 4,000 x 4,000 grid take about 2 s.
    """
    import geopandas as gpd
    from exactextract import exact_extract
    from exactextract.feature import GeoPandasFeatureSource
    from exactextract.raster import NumPyRasterSource
    from pyproj import CRS

    if transform.b != 0 or transform.d != 0 or transform.a <= 0 or transform.e >= 0:
        raise ValueError(f"coverage weights need a north-up grid, not {transform}")
    height, width = shape
    wkt = CRS.from_user_input(crs).to_wkt()
    # Zeros, not the cube's values: exactextract leaves NaN cells out of cell_id and coverage.
    zeros = np.broadcast_to(np.zeros(1, dtype=np.float32), shape)  # no memory for the grid
    x0, y1 = transform.c, transform.f
    raster = NumPyRasterSource(
        zeros, x0, y1 + transform.e * height, x0 + transform.a * width, y1, srs_wkt=wkt
    )
    frame = gpd.GeoDataFrame(geometry=gpd.GeoSeries(geometries).values, crs=wkt)
    frame = frame.reset_index(drop=True)
    nonempty = ~(frame.geometry.isna() | frame.geometry.is_empty)
    ids = [np.zeros(0, dtype=np.int64)] * len(frame)
    fractions = [np.zeros(0)] * len(frame)
    if nonempty.any():
        found = exact_extract(
            raster,
            GeoPandasFeatureSource(frame[nonempty]),
            ["cell_id", "coverage"],
            output="pandas",
        )
        kept = np.flatnonzero(nonempty)
        for k, cell, cover in zip(kept, found["cell_id"], found["coverage"], strict=True):
            ids[k], fractions[k] = np.asarray(cell, dtype=np.int64), np.asarray(cover)
    return _weights(ids, fractions, width)


def _weights(ids: list[np.ndarray], fractions: list[np.ndarray], width: int) -> CoverageWeights:
    """:class:`CoverageWeights` from exactextract's per-polygon cell ids (row x width + col)."""
    lengths = np.array([len(i) for i in ids], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)])
    flat = np.concatenate(ids) if len(ids) else np.zeros(0, dtype=np.int64)
    coverage = np.concatenate(fractions).astype("float64") if len(ids) else np.zeros(0)
    unique, cells = np.unique(flat, return_inverse=True)
    rows, cols = unique // width, unique % width
    return CoverageWeights(starts, cells.astype(np.int64), coverage, rows, cols)


def zonal_statistics(values: np.ndarray, weights: CoverageWeights) -> dict[str, np.ndarray]:
    """Weighted ``mean``, ``median`` and ``count`` of each polygon on each date.

    ``values``: (dates, cells) the cube's values at ``weights.rows``/``cols`` (NaN where not
    clear). Returns (dates, polygons) float64 arrays: NaN mean and median, count 0, where a
    polygon had no clear cell. Dates are reduced in steps of at most :data:`ENTRIES_PER_STEP`
    entries, all polygons together.
    """
    dates = values.shape[0]
    step = max(1, ENTRIES_PER_STEP // max(len(weights.cells), 1))
    parts = [
        _statistics(values[start : start + step][:, weights.cells], weights)
        for start in range(0, dates, step)
    ]
    if not parts:
        empty = np.zeros((0, weights.polygons))
        return {"mean": empty, "median": empty, "count": empty}
    return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}


def _statistics(x: np.ndarray, weights: CoverageWeights) -> dict[str, np.ndarray]:
    """:func:`zonal_statistics` of (dates, entries) values ``x``."""
    segments = weights.segments
    x = x.astype("float64")
    clear = np.isfinite(x)
    w = np.where(clear, weights.coverage[None, :], 0.0)
    count = segments.sum(w)
    total = segments.sum(np.where(clear, x, 0.0) * w)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, total / count, np.nan)
    return {"mean": mean, "median": weighted_median(x, w, segments), "count": count}


def weighted_median(x: np.ndarray, w: np.ndarray, segments: Segments) -> np.ndarray:
    """exactextract's weighted median of each segment of each row: (rows, segments), NaN
    where a segment has no value.

    ``x``: (rows, entries) values, NaN left out; ``w``: their weights (0 where NaN). With the
    segment's n values sorted, x_0 <= ... <= x_{n-1}, weights w_i and C_i = w_0 + ... + w_i,
    exactextract places x_i at s_i = i w_i + (n - 1) C_{i-1} (s_0 = 0; s never decreases) and
    reads the median at h = (n - 1) C_{n-1} / 2, interpolating linearly in s between the
    values around it (src/weighted_quantiles.cpp; with equal weights, the usual median). The
    segments are sorted all at once, each row by one argsort (:func:`_sort_keys`).
    """
    rows, entries = x.shape
    out = np.full((rows, segments.count), np.nan)
    if entries == 0:
        return out
    owner, heads = segments.owner, segments.starts[:-1]
    order = np.argsort(_sort_keys(x, owner), axis=1, kind="stable")
    xs, ws = np.take_along_axis(x, order, 1), np.take_along_axis(w, order, 1)
    valid = np.isfinite(xs)  # the first n of each segment
    n = segments.sum(valid.astype("float64"))
    cum = np.cumsum(ws, axis=1)
    base = np.where(heads > 0, cum[:, np.maximum(heads - 1, 0)], 0.0)  # weight before each
    s = segments.position * ws + (n - 1)[:, owner] * (cum - ws - base[:, owner])
    h = 0.5 * (n - 1) * segments.sum(ws)
    below = segments.sum((valid & (s <= h[:, owner])).astype("float64")).astype(np.int64)
    left = np.clip(heads + below - 1, 0, entries - 1)  # the last value at or below h
    right = np.clip(heads + below, 0, entries - 1)
    xl, xr = np.take_along_axis(xs, left, 1), np.take_along_axis(xs, right, 1)
    sl, sr = np.take_along_axis(s, left, 1), np.take_along_axis(s, right, 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        inner = xl + (h - sl) * (xr - xl) / (sr - sl)
    found = n > 0
    out[found] = np.where(below >= n, xl, inner)[found]  # h past the last value: that value
    return out


def _sort_keys(x: np.ndarray, owner: np.ndarray) -> np.ndarray:
    """int64 keys that sort entries by segment, then value (NaN last): the segment in the high
    32 bits, the float32 value's bits made order-preserving in the low 32 (negative values
    have all their bits flipped, the others their sign bit).

    Integers, not floats, because numpy's stable argsort of int64 runs through the segments,
    already in order, about 7 times faster than an argsort of floats (measured: 0.15 s against
    1.1 s for 8 dates x 820,000 entries).
    """
    bits = x.astype(np.float32).view(np.uint32)
    flip = (bits >> np.uint32(31)) * np.uint32(0x7FFFFFFF) | np.uint32(0x80000000)
    ordered = bits ^ flip
    ordered[~np.isfinite(x)] = 0xFFFFFFFF
    return (owner.astype(np.int64) << 32)[None, :] | ordered

"""Ground truth of the demo fields' means: exact coverage weights and the true pixels behind them.

Why: the workflow's polygon series (exactextract's coverage-weighted statistics on the cube) must
equal an answer computed another way. Here each 10 m pixel's weight is the area of its square
that the field covers (shapely), divided by the pixel's area; the pixel's value is the NDVI the
cube must hold there: the generator's own DNs (the arrays the COGs are written from), scaled
and masked exactly as the point truth is (:func:`ndvicube.demo.truth.expected_series`).

The grid is the one the field set gets in the workflow: :func:`ndvicube.geo.area_geobox` of the
lon/lat bounds of the fields the ``fields`` job accepts (``far_away``, rejected after the search,
left out: it no longer widens the grid), in the UTM zone of their centre.

Truth holds for the demo config's settings: items with ``eo:cloud_cover`` below
:data:`MAX_CLOUD_COVER`, SCL classes :data:`~ndvicube.demo.world.MASK_CLASSES` masked (no
buffer), NDVI. A solar day's pixel is the first item's (in datetime, id order) that observed it
(the tiles of a pass hold the same values where they overlap); ``ndvi_mean`` is
sum(w v) / sum(w) over clear pixels, ``count`` sum(w) over them, ``clear_fraction`` count /
sum(w) over all the field's pixels. Every field has a row on every solar day with a kept item
(the cube's days): NaN mean, count 0 where none of its pixels was clear.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import shapely
from pyproj import Transformer

from ndvicube.demo.fields import DemoField
from ndvicube.demo.world import EPSG, MASK_CLASSES, OFFSET, SCALE, _Layout, _Tile

MAX_CLOUD_COVER = 30
"""Items at or above this ``eo:cloud_cover`` are left out, as config/demo.yaml does."""
_TO_LONLAT = Transformer.from_crs(EPSG, 4326, always_xy=True)


@dataclass(frozen=True)
class FieldWeights:
    """The pixels each field covers and how much (the pixels of all fields stored once)."""

    ids: tuple[str, ...]
    starts: np.ndarray
    """(fields + 1,) field ``k`` owns entries ``starts[k]:starts[k + 1]``."""
    cells: np.ndarray
    """(entries,) index of each entry's pixel into ``rows``/``cols``."""
    weights: np.ndarray
    """(entries,) covered area / pixel area, in (0, 1]."""
    rows: np.ndarray
    """(pixels,) row of each pixel on the tiles' union grid at 10 m (0 at the top)."""
    cols: np.ndarray
    """(pixels,) column of each pixel on that grid."""


def kept_fields(fields: tuple[DemoField, ...]) -> list[tuple[str, shapely.Geometry]]:
    """Ids and geometries of the fields the workflow keeps, repaired as ``make_valid`` does
    (its polygonal parts)."""
    out = []
    for f in fields:
        if f.rejected is None:
            geometry = f.geometry if f.geometry.is_valid else shapely.make_valid(f.geometry)
            out.append((f.id, geometry))
    return out


def field_set_bbox(fields: tuple[DemoField, ...]) -> tuple[float, float, float, float]:
    """Lon/lat bounds of the fields the cube is gridded on (the accepted ones): their vertices
    in EPSG:4326, as :func:`ndvicube.fields.chunks.fitted_bbox` computes them."""
    counted = kept_fields(fields)
    xy = np.concatenate([shapely.get_coordinates(g) for _, g in counted])
    lon, lat = _TO_LONLAT.transform(xy[:, 0], xy[:, 1])
    return float(lon.min()), float(lat.min()), float(lon.max()), float(lat.max())


def field_weights(fields: tuple[DemoField, ...], lay: _Layout) -> FieldWeights:
    """Exact coverage of every pixel square each kept field touches, on the field set's grid."""
    from ndvicube.geo import area_geobox, utm_crs_for

    bbox = field_set_bbox(fields)
    crs = utm_crs_for((bbox[0] + bbox[2]) / 2, (bbox[1] + bbox[3]) / 2)
    gb = area_geobox(bbox, crs, 10.0)
    a = gb.affine
    if (
        crs != f"EPSG:{EPSG}"
        or (a.a, a.e) != (10, -10)
        or (a.c - lay.x0) % 10
        or (lay.y1 - a.f) % 10
    ):
        raise ValueError(f"the field set's grid {crs} {a} is not the tiles' 10 m grid")
    row0, col0 = round((lay.y1 - a.f) / 10), round((a.c - lay.x0) / 10)
    ids, starts, flat, weights = [], [0], [], []
    for fid, geometry in kept_fields(fields):
        rows, cols, w = _covered(geometry, a)
        ids.append(fid)
        flat.append((rows + row0) * 1_000_000 + cols + col0)
        weights.append(w)
        starts.append(starts[-1] + len(w))
    pixels, cells = np.unique(np.concatenate(flat), return_inverse=True)
    return FieldWeights(
        tuple(ids), np.array(starts), cells, np.concatenate(weights),
        pixels // 1_000_000, pixels % 1_000_000,
    )  # fmt: skip


def _covered(geometry, a) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows, columns (on the grid of affine ``a``) and coverage of the pixels ``geometry``
    touches: the area of each pixel square inside it over the pixel's area (shapely)."""
    xmin, ymin, xmax, ymax = geometry.bounds
    cols = np.arange(int((xmin - a.c) // 10), -int((a.c - xmax) // 10))  # floor .. ceil
    rows = np.arange(int((a.f - ymax) // 10), -int((ymin - a.f) // 10))
    rr, cc = (g.ravel() for g in np.meshgrid(rows, cols, indexing="ij"))
    squares = shapely.box(a.c + 10 * cc, a.f - 10 * (rr + 1), a.c + 10 * (cc + 1), a.f - 10 * rr)
    w = shapely.area(shapely.intersection(squares, geometry)) / 100.0
    hit = w > 0
    return rr[hit], cc[hit], w[hit]


@dataclass
class FieldTruth:
    """Collects each item's true pixels under the fields while the catalog is generated."""

    lay: _Layout
    weights: FieldWeights
    lon: float
    """Longitude of the solar day (the field set's centre)."""
    seen: list[tuple[Any, ...]] = field(default_factory=list)

    def add(self, item: dict[str, Any], tile: _Tile, arrays: dict[str, np.ndarray]) -> None:
        """Record one item's NDVI under the fields (NaN where masked) and where it has data."""
        props = item["properties"]
        w = self.weights
        col = w.cols - round((tile.x0 - self.lay.x0) / 10)
        row = w.rows - round((self.lay.y1 - tile.y1) / 10)
        inside = (
            (col >= 0)
            & (col < arrays["red"].shape[1])
            & (row >= 0)
            & (row < arrays["red"].shape[0])
        )
        r, c = np.where(inside, row, 0), np.where(inside, col, 0)
        red, nir, scl = arrays["red"][r, c], arrays["nir"][r, c], arrays["scl"][r // 2, c // 2]
        valid = inside & (red != 0) & (nir != 0) & (scl != 0)
        red_r, nir_r = red * SCALE + OFFSET, nir * SCALE + OFFSET
        ndvi = np.where(
            valid & ~np.isin(scl, MASK_CLASSES), (nir_r - red_r) / (nir_r + red_r), np.nan
        )
        when = datetime.fromisoformat(props["datetime"].replace("Z", "+00:00"))
        day = (when + timedelta(hours=self.lon / 15)).date().isoformat()
        self.seen.append((day, props["datetime"], item["id"], props["eo:cloud_cover"], valid, ndvi))

    def rows(self) -> list[dict[str, Any]]:
        """fields_truth.csv's rows: each kept field on each solar day of the kept items."""
        w = self.weights
        kept = sorted(s for s in self.seen if s[3] < MAX_CLOUD_COVER)
        out = []
        for day in sorted({s[0] for s in kept}):
            value = np.full(len(w.rows), np.nan)
            taken = np.zeros(len(w.rows), dtype=bool)
            for *_, valid, ndvi in (s for s in kept if s[0] == day):
                first = valid & ~taken  # the first item with data wins the pixel
                value[first], taken = ndvi[first], taken | valid
            out += _day_rows(day, value[w.cells], w)
        order = {fid: k for k, fid in enumerate(w.ids)}
        return sorted(out, key=lambda row: (order[row["field"]], row["solar_day"]))


def _day_rows(day: str, v: np.ndarray, w: FieldWeights) -> list[dict[str, Any]]:
    """One row per field: weighted mean over clear pixels, clear coverage, clear fraction."""
    rows = []
    for k, fid in enumerate(w.ids):
        x, c = v[w.starts[k] : w.starts[k + 1]], w.weights[w.starts[k] : w.starts[k + 1]]
        clear = np.isfinite(x)
        count = float(c[clear].sum())
        mean = float((x[clear] * c[clear]).sum() / count) if count > 0 else np.nan
        rows.append(
            {"field": fid, "solar_day": day, "ndvi_mean": mean, "count": count,
             "clear_fraction": count / float(c.sum())}
        )  # fmt: skip
    return rows

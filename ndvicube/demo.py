"""Deterministic synthetic Sentinel-2 L2A catalog shaped like Earth Search v1, with ground truth.

Why: the workflow, its tests and its benchmarks need a catalog that looks exactly like the real
``sentinel-2-c1-l2a`` collection (same item fields, asset keys, ``raster:bands`` scale/offset,
nodata 0, 10 m and 20 m bands + 20 m SCL, overlapping MGRS tiles, swath-edge nodata, clouds) but
runs offline and comes with the exact answer: the DN/SCL under every point in every item, and the
crop calendar that produced them.

Layout (default spec; every number below is derived from ``DemoCatalogSpec.bbox``):

- EPSG:32644. Both tiles span y 3003900..3007140 (324 px at 10 m). Tile ``44RPR`` (west) spans
  x 657780..659700 (192 px), tile ``44RQR`` (east) x 658980..660840 (186 px); they overlap in
  the 720 m strip x 658980..659700 through the middle of the box. Origins are multiples of
  60 m, so both tiles' 10 m and 20 m grids sit on the 10 m grid anchored at 0 that odc-stac
  uses by default: loading the box at 10 m copies pixels, it never resamples them.
- ``44RPR`` has a swath-edge nodata wedge along its east side (apex at x 659700, y ~3006101;
  its edge runs SSW to x ~658597 at the tile's south edge), decided on the 20 m grid: 19 % of
  the tile. It covers part of the overlap (``44RQR`` fills it) and, at the south edge of the
  box, ~70 m west of the overlap (those few pixels stay NaN).
- Points (points.csv): ``field1`` (overlap, both tiles), ``west_field`` and ``sugarcane``
  (west tile only), ``east_field`` and ``pond`` (east tile only; the pond has NDVI < 0),
  ``swath_gap`` (overlap, inside the wedge: only the east tile has data there).
- Every 4th pass has no ``44RQR`` item.
- Every pixel value is a function of ground position and day, so the overlap holds identical
  values in both tiles; clouds, shadows and nodata are decided on the 20 m grid.

Caveat: ``field1`` (82.608 E, 27.163 N) maps to x 659319.636, y 3005510.0004, i.e. 0.36 m and
0.4 mm from pixel edges of the anchored grid (real Sentinel-2 grids are anchored the same way).
The grid is deliberately *not* shifted to move it, because a shifted grid would make odc-stac's
default load resample every pixel; the containing pixel (x 659310..659320, y 3005510..3005520)
is still unambiguous in float64 (keep cube coordinates float64: in float32, 3005510.0004 rounds
onto the edge). All other points are pixel centres.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import rasterio
from pyproj import Transformer
from rasterio.transform import from_origin

__all__ = [
    "DemoCatalog",
    "DemoCatalogSpec",
    "expected_series",
    "generate_demo_catalog",
    "read_truth",
    "rewrite_hrefs",
]

EPSG = 32644
"""Every demo tile is in WGS 84 / UTM 44N, like real tiles 44R?R."""
SCALE, OFFSET = 0.0001, -0.1
"""Collection-1 (baseline >= 04.00) reflectance = DN * 0.0001 - 0.1."""
FIELD1 = (82.608, 27.163)
"""The origin notebook's point (lon, lat); must stay exactly here."""
PASS_ANCHOR = date(2023, 1, 1)
"""Passes fall on a fixed lattice from this day, so a shorter period is a subset of a year."""
OVERLAP_M = 720
"""Width of the strip where both tiles hold data (a multiple of 60 m)."""
MASK_CLASSES = (3, 8, 9, 10)
"""SCL classes the workflow masks by default: cloud shadow, medium/high cloud, cirrus."""
COVERS = ("rice_wheat", "sugarcane", "orchard", "urban", "water")
"""Land-cover classes; a parcel's index into this tuple is its cover code."""
_VEG = (0, 1, 2)
_WATER = 4
_GRID = 60
_PAD = 20  # 20 m pixels around the area so clouds outside it can cast shadows into it

#: Reflectance assets: Sentinel-2 band, Earth Search title, centre and width (um), pixel (m).
#: Red edge 1 and the two SWIR bands are there for the other indices (NDREI, NBR, NDMI...).
_BANDS: dict[str, tuple[str, str, float, float, int]] = {
    "red": ("B04", "Red - 10m", 0.665, 0.038, 10),
    "green": ("B03", "Green - 10m", 0.56, 0.045, 10),
    "blue": ("B02", "Blue - 10m", 0.49, 0.098, 10),
    "nir": ("B08", "NIR 1 - 10m", 0.842, 0.145, 10),
    "rededge1": ("B05", "Red Edge 1 - 20m", 0.704, 0.019, 20),
    "swir16": ("B11", "SWIR 1.6μm - 20m", 1.61, 0.143, 20),
    "swir22": ("B12", "SWIR 2.2μm - 20m", 2.19, 0.242, 20),
}
#: eo:bands common names that differ from the asset key (Earth Search's B05 is "rededge").
_COMMON_NAMES = {"rededge1": "rededge"}
_COG_TYPE = "image/tiff; application=geotiff; profile=cloud-optimized"
#: The 20 m classification assets: title and roles as Earth Search writes them; file names.
_20M: dict[str, tuple[str, list[str]]] = {
    "scl": ("Scene classification map (SCL)", ["data"]),
    "cloud": ("Cloud Probabilities", ["data", "cloud"]),
}
_20M_FILES = {"scl": "SCL.tif", "cloud": "CLD_20m.tif"}
_ASSETS = (*_BANDS, "scl", "cloud")
_SCL_NAMES = {
    1: "saturated_defective_pixel",
    2: "dark_features",
    3: "cloud_shadow",
    4: "vegetation",
    5: "not_vegetated",
    6: "water",
    7: "unclassified",
    8: "medium_proba_clouds",
    9: "high_proba_clouds",
    10: "thin_cirrus",
    11: "snow_ice",
}
_EXTENSIONS = [
    "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
    "https://stac-extensions.github.io/file/v2.1.0/schema.json",
    "https://stac-extensions.github.io/grid/v1.1.0/schema.json",
    "https://stac-extensions.github.io/mgrs/v1.0.0/schema.json",
    "https://stac-extensions.github.io/processing/v1.1.0/schema.json",
    "https://stac-extensions.github.io/projection/v1.1.0/schema.json",
    "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
    "https://stac-extensions.github.io/sentinel-2/v1.0.0/schema.json",
    "https://stac-extensions.github.io/view/v1.0.0/schema.json",
]
_PROJ_V2 = "https://stac-extensions.github.io/projection/v2.0.0/schema.json"
# crop: (sowing, peak, harvest) as (month, day, year offset), max-NDVI range, jitter days
_CROPS: dict[str, tuple[tuple[tuple[int, int, int], ...], tuple[float, float]]] = {
    "wheat": (((11, 18, -1), (2, 15, 0), (4, 8, 0)), (0.75, 0.85)),
    "rice": (((7, 10, 0), (9, 8, 0), (10, 28, 0)), (0.76, 0.86)),
    "sugarcane": (((2, 20, 0), (9, 25, 0), (1, 25, 1)), (0.72, 0.84)),
}
_JITTER = (10, 10, 7)
_ROTATIONS = {"rice_wheat": ("wheat", "rice"), "sugarcane": ("sugarcane",)}
_TO_UTM = Transformer.from_crs(4326, EPSG, always_xy=True)
_TO_LONLAT = Transformer.from_crs(EPSG, 4326, always_xy=True)


@dataclass(frozen=True)
class DemoCatalogSpec:
    """What to generate; equal specs give byte-identical catalogs (apart from the root path)."""

    seed: int = 2023
    """Seeds parcels, calendars, noise, clouds and metadata jitter."""
    start: str = "2023-01-01"
    """First acquisition day (inclusive, ISO date)."""
    end: str = "2023-12-31"
    """Last acquisition day (inclusive, ISO date)."""
    revisit_days: int = 5
    """One pass every ``revisit_days`` on a lattice anchored at 2023-01-01 (S2A/S2B alternate)."""
    bbox: tuple[float, float, float, float] = (82.599, 27.154, 82.617, 27.172)
    """Lon/lat box (west, south, east, north) the tiles must cover: the demo area."""
    tile_margin_m: float = 600.0
    """How far (m) tiles extend beyond the box."""
    proj_key: str = "proj:epsg"
    """``"proj:epsg"`` (integer, Earth Search v1) or ``"proj:code"`` (``"EPSG:32644"``)."""
    collection: str = "sentinel-2-c1-l2a"
    """Collection id written into items and collection.json."""
    blocksize: int = 256
    """COG internal tile size (pixels)."""


@dataclass(frozen=True)
class DemoCatalog:
    """Paths of one generated catalog."""

    root: Path
    items: Path
    collection: Path
    truth: Path
    points: Path
    calendar: Path


@dataclass(frozen=True)
class _Tile:
    """One MGRS-like tile: code and UTM bounds (multiples of 60 m)."""

    code: str
    x0: float
    x1: float
    y0: float
    y1: float

    def shape(self, res: int) -> list[int]:
        """Rows, cols at ``res`` metres."""
        return [round((self.y1 - self.y0) / res), round((self.x1 - self.x0) / res)]

    def transform(self, res: int) -> list[float]:
        """STAC ``proj:transform`` (first six affine coefficients)."""
        return [res, 0, self.x0, 0, -res, self.y1]

    def covers(self, x: float, y: float) -> bool:
        """Whether UTM point (x, y) falls on this tile's raster."""
        return self.x0 <= x < self.x1 and self.y0 < y <= self.y1


@dataclass(frozen=True)
class _Point:
    """A truth point: lon/lat as written to points.csv and its UTM position."""

    id: str
    lon: float
    lat: float
    x: float
    y: float


@dataclass(frozen=True)
class _Layout:
    """Everything spatial that does not depend on the seed."""

    x0: float  # union of both tiles (UTM m)
    y0: float
    x1: float
    y1: float
    box: tuple[float, float, float, float]  # largest UTM rectangle inside the lon/lat box
    tiles: tuple[_Tile, ...]
    wedge_top: float  # nodata where y < wedge_top and x > east edge - slope * (top - y)
    wedge_slope: float
    pond: tuple[float, float, float, float]
    points: tuple[_Point, ...]

    @property
    def shape10(self) -> tuple[int, int]:
        """Union grid shape at 10 m."""
        return round((self.y1 - self.y0) / 10), round((self.x1 - self.x0) / 10)

    def centres(self, res: int, pad: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Pixel-centre x (cols) and y (rows) of the union grid at ``res``, padded by ``pad``."""
        rows, cols = (n * 10 // res + 2 * pad for n in self.shape10)
        xs = self.x0 - pad * res + res / 2 + res * np.arange(cols)
        ys = self.y1 + pad * res - res / 2 - res * np.arange(rows)
        return xs, ys

    def in_wedge(self, x: np.ndarray | float, y: np.ndarray | float) -> np.ndarray | bool:
        """Whether 20 m pixel centres (x, y) of the west tile are swath-edge nodata."""
        east = self.tiles[0].x1
        return (y < self.wedge_top) & (x > east - self.wedge_slope * (self.wedge_top - y))


@dataclass(frozen=True)
class _Land:
    """Seed-dependent land cover: parcels, their NDVI curves and per-pixel noise."""

    parcel20: np.ndarray  # parcel id per 20 m pixel of the union grid
    cover: np.ndarray  # cover code per parcel
    level: np.ndarray  # fallow NDVI (crops), mean (orchard), constant (urban, water)
    orchard_amp: np.ndarray
    orchard_peak: np.ndarray  # day of year of the orchard maximum
    red_base: np.ndarray  # bare/background red reflectance per parcel
    seasons: dict[str, np.ndarray]  # parcel, sow, peak, harvest (ordinals), amp
    noise10: np.ndarray  # static NDVI noise per 10 m pixel
    red_noise10: np.ndarray
    meta: list[dict[str, Any]]  # calendar.json entries per parcel


@dataclass(frozen=True)
class _Pass:
    """One acquisition: day, platform and the sensing times shared by its tiles."""

    day: date
    number: int
    platform: str
    tiles: tuple[_Tile, ...]


def _floor(v: float, step: float = _GRID) -> float:
    return math.floor(v / step) * step


def _ceil(v: float, step: float = _GRID) -> float:
    return math.ceil(v / step) * step


def _utm_box(bbox: Sequence[float]) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Inner and outer UTM rectangles of the lon/lat box (its edges are not grid-parallel)."""
    w, s, e, n = bbox
    xs, ys = _TO_UTM.transform([w, e, w, e], [s, s, n, n])
    inner = (max(xs[0], xs[2]), max(ys[0], ys[1]), min(xs[1], xs[3]), min(ys[2], ys[3]))
    return inner, (min(xs), min(ys), max(xs), max(ys))


def _layout(spec: DemoCatalogSpec) -> _Layout:
    """Place tiles, wedge, pond and points relative to the box, so any similar box works."""
    box, outer = _utm_box(spec.bbox)
    m = spec.tile_margin_m
    x0, y0 = _floor(outer[0] - m), _floor(outer[1] - m)
    x1, y1 = _ceil(outer[2] + m), _ceil(outer[3] + m)
    west = round((box[0] + box[2]) / 2 / _GRID - OVERLAP_M / 2 / _GRID) * _GRID
    east = west + OVERLAP_M
    tiles = (_Tile("44RPR", x0, east, y0, y1), _Tile("44RQR", west, x1, y0, y1))
    height, width = box[3] - box[1], box[2] - box[0]
    top = box[1] + 0.8 * height
    slope = (OVERLAP_M + 0.04 * width) / (top - box[1])
    pond_x, pond_y = _floor(east + 0.55 * (box[2] - east), 20), _floor(box[1] + 0.25 * height, 20)
    pond = (pond_x - 100, pond_y - 80, pond_x + 100, pond_y + 80)
    lay = _Layout(x0, y0, x1, y1, box, tiles, top, slope, pond, ())
    points = _points(lay, pond_x, pond_y)
    lay = _Layout(x0, y0, x1, y1, box, tiles, top, slope, pond, points)
    _check_layout(lay, spec.bbox)
    return lay


def _points(lay: _Layout, pond_x: float, pond_y: float) -> tuple[_Point, ...]:
    """The truth points: field1 fixed, the others at pixel centres chosen by role."""
    b, (a, bt) = lay.box, lay.tiles
    h = b[3] - b[1]
    where = {
        "west_field": (b[0] + 0.35 * (bt.x0 - b[0]), b[1] + 0.75 * h),
        "east_field": (a.x1 + 0.45 * (b[2] - a.x1), b[1] + 0.62 * h),
        "swath_gap": (a.x1 - 0.2 * OVERLAP_M, b[1] + 0.2 * h),
        "pond": (pond_x, pond_y),
        "sugarcane": (b[0] + 0.3 * (bt.x0 - b[0]), b[1] + 0.3 * h),
    }
    x, y = _TO_UTM.transform(*FIELD1)
    pts = [_Point("field1", FIELD1[0], FIELD1[1], x, y)]
    for pid, (px, py) in where.items():
        lon, lat = _TO_LONLAT.transform(_floor(px, 10) + 5, _floor(py, 10) + 5)
        lon, lat = round(lon, 6), round(lat, 6)
        pts.append(_Point(pid, lon, lat, *_TO_UTM.transform(lon, lat)))
    return tuple(pts)


def _check_layout(lay: _Layout, bbox: Sequence[float]) -> None:
    """Fail loudly if a point does not play its role (e.g. after a bbox change)."""
    a, b = lay.tiles
    for p in lay.points:
        px, py = _floor(p.x, 20) + 10, _floor(p.y, 20) + 10
        roles = {
            "in_bbox": bbox[0] <= p.lon <= bbox[2] and bbox[1] <= p.lat <= bbox[3],
            "a": a.covers(p.x, p.y),
            "b": b.covers(p.x, p.y),
            "wedge": bool(lay.in_wedge(px, py)),
            "pond": lay.pond[0] <= p.x < lay.pond[2] and lay.pond[1] <= p.y < lay.pond[3],
        }
        want = {
            "field1": {"in_bbox": True, "a": True, "b": True, "wedge": False},
            "west_field": {"in_bbox": True, "a": True, "b": False},
            "east_field": {"in_bbox": True, "a": False, "b": True},
            "swath_gap": {"in_bbox": True, "a": True, "b": True, "wedge": True},
            "pond": {"in_bbox": True, "pond": True},
            "sugarcane": {"in_bbox": True, "a": True, "b": False, "wedge": False},
        }[p.id]
        bad = {k: v for k, v in want.items() if roles[k] != v}
        edge = min(p.x % 10, 10 - p.x % 10, p.y % 10, 10 - p.y % 10)
        if bad or (p.id != "field1" and edge < 1.0):
            raise ValueError(f"point {p.id} breaks its role {bad} or is {edge:.3f} m from an edge")


def _season(crop: str, year: int, rng: np.random.Generator) -> tuple[list[int], float]:
    """Sowing/peak/harvest ordinals and peak NDVI of ``crop`` harvested around ``year``."""
    stages, (lo, hi) = _CROPS[crop]
    days = [
        date(year + off, mo, dy).toordinal() + int(rng.integers(-j, j + 1))
        for (mo, dy, off), j in zip(stages, _JITTER, strict=True)
    ]
    return days, round(float(rng.uniform(lo, hi)), 3)


def _parcel_seasons(
    pid: int, cover: str, base: float, seed: int, span: tuple[date, date]
) -> list[dict[str, Any]]:
    """Crop seasons of one parcel that overlap ``span`` (each from its own RNG stream)."""
    out = []
    for year in range(span[0].year - 1, span[1].year + 2):
        for k, crop in enumerate(_ROTATIONS.get(cover, ())):
            days, peak = _season(crop, year, np.random.default_rng([seed, 4, pid, year, k]))
            if days[2] < span[0].toordinal() or days[0] > span[1].toordinal():
                continue
            iso = [date.fromordinal(d).isoformat() for d in days]
            mid = [date.fromordinal((days[0] + days[1]) // 2), date.fromordinal(sum(days[1:]) // 2)]
            out.append(
                dict(crop=crop, sowing=iso[0], peak=iso[1], harvest=iso[2], green_up=str(mid[0]))
                | dict(senescence=str(mid[1]), min_ndvi=base, max_ndvi=peak, _days=days)
            )
    return out


def _parcel_grid(rng: np.random.Generator, shape20: tuple[int, int]) -> tuple[np.ndarray, list]:
    """Rectangular fields 100-300 m, in north-south strips of independent row splits."""
    ids = np.empty(shape20, dtype=np.int32)
    rects: list[tuple[int, int, int, int]] = []
    col = 0
    while col < shape20[1]:
        w, row = int(rng.integers(5, 16)), 0
        while row < shape20[0]:
            h = int(rng.integers(5, 16))
            ids[row : row + h, col : col + w] = len(rects)
            rects.append((row, col, min(row + h, shape20[0]), min(col + w, shape20[1])))
            row += h
        col += w
    return ids, rects


def _make_land(spec: DemoCatalogSpec, lay: _Layout) -> _Land:
    """Parcels, covers (points' parcels forced to their role), curves and noise."""
    rows, cols = lay.shape10
    ids, rects = _parcel_grid(np.random.default_rng([spec.seed, 2]), (rows // 2, cols // 2))
    cover = np.random.default_rng([spec.seed, 3]).choice(
        5, len(rects), p=[0.72, 0.1, 0.08, 0.07, 0.03]
    )
    for p in lay.points:
        r, c = int((lay.y1 - p.y) // 20), int((p.x - lay.x0) // 20)
        cover[ids[r, c]] = 1 if p.id == "sugarcane" else 0
    xs, ys = lay.centres(20)
    pond = (xs[None, :] > lay.pond[0]) & (xs[None, :] < lay.pond[2])
    pond = pond & (ys[:, None] > lay.pond[1]) & (ys[:, None] < lay.pond[3])
    ids[pond] = len(rects)
    rects.append(tuple(int(v) for v in (*np.argwhere(pond).min(0), *np.argwhere(pond).max(0) + 1)))
    cover = np.append(cover, _WATER)
    return _land_curves(spec, lay, ids, rects, cover)


def _land_curves(
    spec: DemoCatalogSpec, lay: _Layout, ids: np.ndarray, rects: list, cover: np.ndarray
) -> _Land:
    """Per-parcel NDVI levels and seasons, plus static per-pixel noise."""
    rng = np.random.default_rng([spec.seed, 5])
    n = len(cover)
    lo = np.array([0.15, 0.15, 0.62, 0.06, -0.25])[cover]
    hi = np.array([0.25, 0.25, 0.72, 0.12, -0.1])[cover]
    level = np.round(rng.uniform(lo, hi), 3)
    amp = np.where(cover == 2, np.round(rng.uniform(0.04, 0.08, n), 3), 0.0)
    peak = np.round(rng.uniform(230, 270, n))
    red_lo, red_hi = np.array([0.11, 0.11, 0.1, 0.13, 0.03])[cover], np.array([0.14] * 4 + [0.05])
    red_base = rng.uniform(red_lo, red_hi[cover])
    span = (date.fromisoformat(spec.start), date.fromisoformat(spec.end))
    meta, table = [], []
    for pid in range(n):
        seasons = _parcel_seasons(pid, COVERS[cover[pid]], float(level[pid]), spec.seed, span)
        table += [(pid, *s.pop("_days"), s["max_ndvi"] - s["min_ndvi"]) for s in seasons]
        meta.append(_parcel_meta(lay, pid, rects[pid], COVERS[cover[pid]], level, amp, peak))
        meta[-1]["seasons"] = seasons
    cols = np.array(table, dtype=float).reshape(-1, 5).T
    noise = np.random.default_rng([spec.seed, 6])
    noise10 = noise.normal(0, 0.015, lay.shape10)
    red_noise10 = noise.normal(0, 0.003, lay.shape10)
    keys = ("parcel", "sow", "peak", "harvest", "amp")
    return _Land(
        ids, cover, level, amp, peak, red_base, dict(zip(keys, cols, strict=True)), noise10,
        red_noise10, meta,
    )  # fmt: skip


def _parcel_meta(
    lay: _Layout, pid: int, rect: tuple, cover: str, level: np.ndarray, amp: np.ndarray, peak
) -> dict[str, Any]:
    """calendar.json entry of one parcel (bounds in UTM metres)."""
    r0, c0, r1, c1 = rect
    bounds = [lay.x0 + 20 * c0, lay.y1 - 20 * r1, lay.x0 + 20 * c1, lay.y1 - 20 * r0]
    entry: dict[str, Any] = {"id": pid, "cover": cover, "bounds_utm": bounds}
    if cover == "orchard":
        entry |= {"min_ndvi": round(level[pid] - amp[pid], 3), "max_ndvi": level[pid] + amp[pid]}
        entry["peak_day_of_year"] = int(peak[pid])
    else:
        entry |= {"base_ndvi": float(level[pid])}
    return entry


def _smoothstep(u: np.ndarray) -> np.ndarray:
    u = np.clip(u, 0.0, 1.0)
    return u * u * (3 - 2 * u)


def _parcel_ndvi(land: _Land, day: date) -> np.ndarray:
    """Noise-free NDVI of every parcel on ``day``: fallow level plus at most one crop season."""
    t, s = float(day.toordinal()), land.seasons
    doy = day.timetuple().tm_yday
    v = land.level + land.orchard_amp * np.cos(2 * np.pi * (doy - land.orchard_peak) / 365.25)
    rise = _smoothstep((t - s["sow"]) / (s["peak"] - s["sow"]))
    fall = _smoothstep((s["harvest"] - t) / (s["harvest"] - s["peak"]))
    shape = np.where(t < s["peak"], rise, fall)
    np.add.at(v, s["parcel"].astype(int), s["amp"] * shape)
    return v


def _up(a: np.ndarray) -> np.ndarray:
    """20 m -> 10 m: each 20 m pixel becomes its four 10 m children."""
    return a.repeat(2, axis=0).repeat(2, axis=1)


def _sun(t: datetime, lon: float, lat: float) -> tuple[float, float]:
    """Approximate solar azimuth and elevation (degrees; NOAA series), for metadata/shadows."""
    hours = t.hour + t.minute / 60 + t.second / 3600
    g = 2 * math.pi / 365 * (t.timetuple().tm_yday - 1 + (hours - 12) / 24)
    decl = 0.006918 - 0.399912 * math.cos(g) + 0.070257 * math.sin(g) - 0.006758 * math.cos(2 * g)
    decl += 0.000907 * math.sin(2 * g) - 0.002697 * math.cos(3 * g) + 0.00148 * math.sin(3 * g)
    eqt = 229.18 * (0.000075 + 0.001868 * math.cos(g) - 0.032077 * math.sin(g))
    eqt -= 229.18 * (0.014615 * math.cos(2 * g) + 0.040849 * math.sin(2 * g))
    ha = math.radians((hours * 60 + eqt + 4 * lon) / 4 - 180)
    phi = math.radians(lat)
    cz = math.sin(phi) * math.sin(decl) + math.cos(phi) * math.cos(decl) * math.cos(ha)
    az = math.atan2(math.sin(ha), math.cos(ha) * math.sin(phi) - math.tan(decl) * math.cos(phi))
    return (math.degrees(az) + 180) % 360, 90 - math.degrees(math.acos(cz))


def _cloud_fraction(day: date, rng: np.random.Generator) -> float:
    """Target cloud fraction: monsoon passes are often overcast, winter ones mostly clear."""
    month = day.month
    p_heavy, p_part = (
        (0.45, 0.35) if 6 <= month <= 9 else (0.15, 0.3) if month in (12, 1) else (0.08, 0.3)
    )
    u = rng.random()
    if u < p_heavy:
        return float(rng.uniform(0.4, 0.95))
    if u < p_heavy + p_part:
        return float(rng.uniform(0.05, 0.25))
    return 0.0 if rng.random() < 0.5 else float(rng.uniform(0.002, 0.03))


def _blobs(rng, xs, ys, k: int, sigma: tuple[float, float], centres=None) -> np.ndarray:
    """Smooth cloud-density field: ``k`` clusters of four Gaussian puffs each (xs cols, ys rows).

    Clusters rather than single Gaussians give lumpy, cloud-like outlines instead of discs.
    """
    field = np.zeros((ys.size, xs.size))
    for i in range(k):
        cx, cy = centres[i] if centres else (rng.uniform(xs[0], xs[-1]), rng.uniform(ys[-1], ys[0]))
        s, a = rng.uniform(*sigma), rng.uniform(0.5, 1.0) if not centres else 1.2
        for dx, dy, f in zip(
            *rng.normal(0, 0.6 * s, (2, 4)), rng.uniform(0.35, 0.8, 4), strict=True
        ):
            g = 2 * (f * s) ** 2
            gy, gx = np.exp(-((ys - cy - dy) ** 2) / g), np.exp(-((xs - cx - dx) ** 2) / g)
            field += a * np.outer(gy, gx)
    return field


def _shift(mask: np.ndarray, drow: int, dcol: int) -> np.ndarray:
    """Move a mask by whole pixels, filling vacated pixels with False."""
    out = np.zeros_like(mask)
    r, c = mask.shape
    out[max(drow, 0) : r + min(drow, 0), max(dcol, 0) : c + min(dcol, 0)] = mask[
        max(-drow, 0) : r + min(-drow, 0), max(-dcol, 0) : c + min(-dcol, 0)
    ]
    return out


def _sky(lay: _Layout, day: date, sun_az: float, rng: np.random.Generator) -> tuple:
    """SCL overlay (0 = clear; 3, 7, 8, 9, 10), cloud brightness and shadow factor at 20 m."""
    xs, ys = lay.centres(20, _PAD)
    inner = (slice(_PAD, -_PAD), slice(_PAD, -_PAD))
    cls = np.zeros((ys.size, xs.size), dtype=np.uint8)
    frac = _cloud_fraction(day, rng)
    field = _blobs(rng, xs, ys, int(rng.integers(2, 7)), (150.0, 600.0))
    if 0.05 <= frac <= 0.25 and rng.random() < 0.7:  # make sure some clouds sit on points
        p = lay.points[int(rng.integers(len(lay.points)))]
        field += _blobs(rng, xs, ys, 1, (100.0, 250.0), [(p.x, p.y)])
    thr = np.quantile(field[inner], 1 - frac) if frac > 0 else np.inf
    core = np.quantile(field[inner], 1 - 0.6 * frac) if frac > 0 else np.inf
    cls[field >= thr] = 8
    cls[field >= core] = 9
    if rng.random() < 0.25:  # thin cirrus veil
        veil = _blobs(rng, xs, ys, 2, (500.0, 1200.0))
        cls[(veil >= np.quantile(veil[inner], 1 - rng.uniform(0.02, 0.12))) & (cls == 0)] = 10
    dist = rng.uniform(120, 380)
    drow = round(dist * math.cos(math.radians(sun_az)) / 20)
    dcol = round(-dist * math.sin(math.radians(sun_az)) / 20)
    cls[_shift((cls == 8) | (cls == 9), drow, dcol) & (cls == 0)] = 3
    cls = cls[inner]
    cls[(rng.random(cls.shape) < 0.004) & (cls == 0)] = 7
    span = max(float(field.max() - thr), 1e-9) if frac > 0 else 1.0
    bright = 0.25 + 0.35 * np.clip((field[inner] - thr) / span, 0, 1)
    return cls, bright, float(rng.uniform(0.3, 0.5))


def _surface(land: _Land, v: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Clear-sky reflectances at 10 m from parcel NDVI, static noise and per-pass jitter."""
    p10 = _up(land.parcel20)
    ndvi = np.clip(v[p10] + land.noise10 + rng.normal(0, 0.008, p10.shape), -0.6, 0.92)
    base = land.red_base[p10]
    veg = np.isin(land.cover[p10], _VEG)
    red = np.where(veg, base - (base - 0.03) * np.clip(ndvi, 0, 0.9) / 0.9, base)
    red = red + land.red_noise10
    nir = red * (1 + ndvi) / (1 - ndvi)
    green = 0.9 * red + 0.03 * ndvi + 0.01
    swir16 = 0.5 * red + 0.12 * (1 - ndvi) + 0.02
    return {
        "red": red,
        "green": green,
        "blue": 0.7 * red + 0.015,
        "nir": nir,
        "rededge1": 0.55 * red + 0.15 * nir + 0.01,
        "swir16": swir16,
        "swir22": 0.8 * swir16 - 0.01,
    }


def _scene(land: _Land, lay: _Layout, day: date, sun_az: float, seed: int) -> dict[str, np.ndarray]:
    """DN of all bands at 10 m and SCL at 20 m over the union grid for one pass."""
    sky_rng = np.random.default_rng([seed, 11, day.toordinal()])
    cls, bright, shade = _sky(lay, day, sun_az, sky_rng)
    v = _parcel_ndvi(land, day)
    refl = _surface(land, v, np.random.default_rng([seed, 12, day.toordinal()]))
    land_cls = np.where(land.cover == _WATER, 6, np.where(v >= 0.3, 4, 5))[land.parcel20]
    cls10, bright10 = _up(cls), _up(bright)
    tint = {"red": (1.0, 1.0), "green": (1.03, 1.0), "blue": (1.08, 1.1), "nir": (1.04, 0.75)}
    tint |= {"rededge1": (1.03, 0.85), "swir16": (0.9, 0.7), "swir22": (0.85, 0.7)}
    out: dict[str, np.ndarray] = {}
    for band, r in refl.items():
        r = np.where(cls10 == 10, 0.6 * r + 0.4 * 0.28, r)
        r = np.where(cls10 == 3, r * shade * tint[band][1], r)
        r = np.where((cls10 == 8) | (cls10 == 9), bright10 * tint[band][0], r)
        if _BANDS[band][4] == 20:  # the 20 m pixel is the mean of its four 10 m ones
            r = r.reshape(r.shape[0] // 2, 2, r.shape[1] // 2, 2).mean(axis=(1, 3))
        out[band] = np.clip(np.rint(r / SCALE - OFFSET / SCALE), 1, 65535).astype(np.uint16)
    out["scl"] = np.where(cls > 0, cls, land_cls).astype(np.uint8)
    out["cloud"] = _cloud_probability(cls)
    return out


#: Cloud probability (%) by sky class: clouds high, cirrus middling, shadows and clear low.
_CLOUD_PROBABILITY = {9: 95, 8: 70, 10: 45, 3: 5}
#: ... and the rim of a cloud (the 20 m pixels around it), which SCL leaves clear: 35 %.
_RIM_PROBABILITY = 35


def _cloud_probability(cls: np.ndarray) -> np.ndarray:
    """The CLD band (20 m, uint8 %): from the sky classes alone (no random draw), plus a rim
    around clouds that SCL does not mask - what a probability threshold adds to the SCL mask."""
    prob = np.zeros(cls.shape, dtype=np.uint8)
    for cls_value, percent in _CLOUD_PROBABILITY.items():
        prob[cls == cls_value] = percent
    cloud = (cls == 8) | (cls == 9)
    rim = np.zeros_like(cloud)
    for drow, dcol in ((-1, 0), (1, 0), (0, -1), (0, 1)):
        rim |= _shift(cloud, drow, dcol)
    prob[rim & (prob == 0)] = _RIM_PROBABILITY
    return prob


def _tile_arrays(scene: dict[str, np.ndarray], lay: _Layout, tile: _Tile) -> dict[str, np.ndarray]:
    """Cut one tile out of the union scene and blank its swath-edge wedge (west tile only)."""
    c10 = round((tile.x0 - lay.x0) / 10)
    w10 = tile.shape(10)[1]
    out = {}
    for band, a in scene.items():
        out[band] = (
            a[:, c10 // 2 : (c10 + w10) // 2] if _res(band) == 20 else a[:, c10 : c10 + w10]
        ).copy()
    if tile is lay.tiles[0]:
        xs = tile.x0 + 10 + 20 * np.arange(out["scl"].shape[1])
        ys = tile.y1 - 10 - 20 * np.arange(out["scl"].shape[0])
        wedge = lay.in_wedge(xs[None, :], ys[:, None])
        for band in out:
            out[band][wedge if _res(band) == 20 else _up(wedge)] = 0
    return out


def _res(asset: str) -> int:
    """Pixel size of an asset: 20 m for SCL, the cloud probability and the 20 m bands."""
    return 20 if asset in _20M else _BANDS[asset][4]


def _write_cog(path: Path, arr: np.ndarray, tile: _Tile, res: int, blocksize: int) -> dict:
    """Write a deflate COG (nodata 0, overviews) and return its STAC file:* fields."""
    is16 = arr.dtype == np.uint16
    # at least one overview level even when the raster fits in one block (GDAL's AUTO makes none)
    levels = max(1, math.ceil(math.log2(max(arr.shape) / blocksize)))
    profile = dict(
        driver="COG", width=arr.shape[1], height=arr.shape[0], count=1, dtype=arr.dtype.name,
        crs=f"EPSG:{EPSG}", transform=from_origin(tile.x0, tile.y1, res, res), nodata=0,
        compress="DEFLATE", predictor="YES" if is16 else "NO", blocksize=blocksize,
        overview_resampling="average" if is16 else "nearest", overview_count=levels,
    )  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(arr, 1)
    data = path.read_bytes()
    return {"file:checksum": "1220" + hashlib.sha256(data).hexdigest(), "file:size": len(data)}


def _scl_stats(scl: np.ndarray) -> dict[str, float]:
    """Cloud cover and SCL class percentages of valid pixels, nodata share of all pixels.

    Same definitions as ESA's L2A metadata: ``eo:cloud_cover`` counts classes 8, 9 and 10.
    """
    counts = np.bincount(scl.ravel(), minlength=12)
    valid = max(int(counts[1:].sum()), 1)
    pct = {"s2:nodata_pixel_percentage": round(100 * counts[0] / scl.size, 6)}
    for k, name in _SCL_NAMES.items():
        pct[f"s2:{name}_percentage"] = round(100 * counts[k] / valid, 6)
    return pct | {"eo:cloud_cover": round(100 * counts[8:11].sum() / valid, 6)}


def _footprint(lay: _Layout, tile: _Tile) -> list[list[float]]:
    """Valid-data outline in UTM, counter-clockwise (west tile loses its wedge corner)."""
    if tile is not lay.tiles[0]:
        return [[tile.x0, tile.y1], [tile.x0, tile.y0], [tile.x1, tile.y0], [tile.x1, tile.y1]]
    base = tile.x1 - lay.wedge_slope * (lay.wedge_top - tile.y0)
    corners = [[tile.x0, tile.y1], [tile.x0, tile.y0], [base, tile.y0], [tile.x1, lay.wedge_top]]
    return [*corners, [tile.x1, tile.y1]]


def _geometry(lay: _Layout, tile: _Tile) -> tuple[dict, list[float], dict[str, float]]:
    """GeoJSON footprint, bbox and proj:centroid in lon/lat."""
    ring = _footprint(lay, tile)
    xs, ys = _TO_LONLAT.transform(*zip(*ring, strict=True))
    coords = [[x, y] for x, y in zip(xs, ys, strict=True)]
    coords.append(coords[0])
    pts = np.array(ring + ring[:1])
    cross = pts[:-1, 0] * pts[1:, 1] - pts[1:, 0] * pts[:-1, 1]
    cx = ((pts[:-1, 0] + pts[1:, 0]) * cross).sum() / (3 * cross.sum())
    cy = ((pts[:-1, 1] + pts[1:, 1]) * cross).sum() / (3 * cross.sum())
    lon, lat = _TO_LONLAT.transform(cx, cy)
    bbox = [round(min(xs), 6), round(min(ys), 6), round(max(xs), 6), round(max(ys), 6)]
    return (
        {"type": "Polygon", "coordinates": [coords]},
        bbox,
        {"lat": round(lat, 5), "lon": round(lon, 5)},
    )


def _passes(spec: DemoCatalogSpec, lay: _Layout) -> list[_Pass]:
    """Acquisition days on the fixed revisit lattice; every 4th pass lacks the east tile."""
    start, end = date.fromisoformat(spec.start), date.fromisoformat(spec.end)
    first = -((PASS_ANCHOR - start).days // spec.revisit_days)
    out = []
    n = first
    while (day := PASS_ANCHOR + timedelta(days=n * spec.revisit_days)) <= end:
        tiles = lay.tiles[:1] if n % 4 == 3 else lay.tiles
        out.append(_Pass(day, n, "sentinel-2a" if n % 2 == 0 else "sentinel-2b", tiles))
        n += 1
    if not out:
        raise ValueError(f"no acquisition between {spec.start} and {spec.end}")
    return out


def _stamp(t: datetime) -> str:
    """Earth Search datetime format: microseconds and Z."""
    return f"{t:%Y-%m-%dT%H:%M:%S.%f}Z"


def _times(p: _Pass, seed: int) -> dict[str, Any]:
    """Sensing, datatake, datastrip, generation and catalog times of one pass (UTC, naive)."""
    rng = np.random.default_rng([seed, 10, p.day.toordinal()])
    sense = datetime.combine(p.day, time(5, 10)) + timedelta(
        milliseconds=int(rng.integers(120_000))
    )
    gen = sense + timedelta(seconds=int(rng.integers(4 * 3600, 9 * 3600)))
    return {
        "sense": [
            sense + timedelta(milliseconds=int(rng.integers(1000, 4000)) * i) for i in range(2)
        ],
        "strip": (sense - timedelta(seconds=int(rng.integers(5, 15)))).replace(microsecond=0),
        "take": (sense - timedelta(seconds=int(rng.integers(300, 420)))).replace(microsecond=0),
        "gen": gen,
        "created": gen + timedelta(milliseconds=int(rng.integers(3600_000, 3 * 3600_000))),
        "view": (float(rng.uniform(100, 110)), float(rng.uniform(8.5, 11.0))),
    }


def _orbit(sat: str, t: datetime) -> int:
    """Absolute orbit from a real reference pass and 14.3 orbits per day."""
    ref = {
        "S2A": (datetime(2024, 4, 22, 17, 39, 11), 46141),
        "S2B": (datetime(2024, 4, 20, 17, 49, 9), 37204),
    }
    t0, n0 = ref[sat]
    return n0 + round((t - t0).total_seconds() / 86400 * 14.3)


def _s2_props(p: _Pass, tile: _Tile, tm: dict[str, Any]) -> dict[str, Any]:
    """The s2:* identifiers, shaped like Earth Search's (baseline 05.10, relative orbit 19)."""
    sat = "S2A" if p.platform == "sentinel-2a" else "S2B"
    f = "%Y%m%dT%H%M%S"
    take, strip, gen = tm["take"], tm["strip"], tm["gen"]
    orbit = _orbit(sat, take)
    return {
        "s2:tile_id": f"{sat}_OPER_MSI_L2A_TL_2APS_{gen:{f}}_A{orbit:06d}_T{tile.code}_N05.10",
        "s2:product_type": "S2MSI2A",
        "s2:processing_baseline": "05.10",
        "s2:product_uri": f"{sat}_MSIL2A_{take:{f}}_N0510_R019_T{tile.code}_{gen:{f}}.SAFE",
        "s2:generation_time": f"{gen:%Y-%m-%dT%H:%M:%S}.000000Z",
        "s2:datatake_id": f"G{sat}_{take:{f}}_{orbit:06d}_N05.10",
        "s2:datatake_type": "INS-NOBS",
        "s2:datastrip_id": f"{sat}_OPER_MSI_L2A_DS_2APS_{gen:{f}}_S{strip:{f}}_N05.10",
    }


def _properties(spec, lay, p: _Pass, tile: _Tile, tm: dict, stats: dict) -> dict[str, Any]:
    """Item properties, in the order Earth Search writes them (storage:* left out: local files)."""
    sense = tm["sense"][lay.tiles.index(tile)]
    _, _, centroid = _geometry(lay, tile)
    sun_az, sun_el = _sun(sense, centroid["lon"], centroid["lat"])
    doy = sense.timetuple().tm_yday
    created = _stamp(tm["created"])[:-4] + "Z"  # Earth Search: milliseconds here
    s2 = _s2_props(p, tile, tm)
    return {
        "created": created,
        "platform": p.platform,
        "constellation": "sentinel-2",
        "instruments": ["msi"],
        "eo:cloud_cover": stats["eo:cloud_cover"],
        spec.proj_key: EPSG if spec.proj_key == "proj:epsg" else f"EPSG:{EPSG}",
        "proj:centroid": centroid,
        "mgrs:utm_zone": 44,
        "mgrs:latitude_band": "R",
        "mgrs:grid_square": tile.code[3:],
        "grid:code": f"MGRS-{tile.code}",
        "view:azimuth": tm["view"][0],
        "view:incidence_angle": tm["view"][1],
        "view:sun_azimuth": sun_az,
        "view:sun_elevation": sun_el,
        "s2:tile_id": s2.pop("s2:tile_id"),
        "s2:degraded_msi_data_percentage": 0,
        **{k: v for k, v in stats.items() if k.startswith("s2:")},
        **s2,
        "s2:reflectance_conversion_factor": 1 / (1 - 0.01673 * math.cos(0.0172 * (doy - 4))) ** 2,
        "datetime": _stamp(sense),
        "earthsearch:payload_id": f"ndvicube-demo/seed-{spec.seed}",
        "processing:software": {"ndvicube.demo": "1"},
        "updated": created,
    }


def _asset(key: str, href: Path, tile: _Tile, files: dict) -> dict[str, Any]:
    """One asset dict with Earth Search's keys, order and raster:bands."""
    if key in _20M:
        title, roles = _20M[key]
        head = {"href": str(href), "type": _COG_TYPE, "title": title}
        grid = {"gsd": 20, "proj:shape": tile.shape(20), "proj:transform": tile.transform(20)}
        bands = [{"nodata": 0, "data_type": "uint8", "spatial_resolution": 20}]
        return head | grid | {"raster:bands": bands} | files | {"roles": roles}
    name, title, centre, fwhm, res = _BANDS[key]
    eo = [
        {
            "name": name,
            "common_name": _COMMON_NAMES.get(key, key),
            "center_wavelength": centre,
            "full_width_half_max": fwhm,
        }
    ]
    head = {"href": str(href), "type": _COG_TYPE, "title": title, "eo:bands": eo}
    grid = {"gsd": res, "proj:shape": tile.shape(res), "proj:transform": tile.transform(res)}
    rb = {
        "nodata": 0,
        "data_type": "uint16",
        "spatial_resolution": res,
        "scale": SCALE,
        "offset": OFFSET,
    }
    return head | grid | {"raster:bands": [rb]} | files | {"roles": ["data", "reflectance"]}


def _item_id(p: _Pass, tile: _Tile, tm: dict) -> str:
    sat = "S2A" if p.platform == "sentinel-2a" else "S2B"
    return f"{sat}_T{tile.code}_{tm['strip']:%Y%m%dT%H%M%S}_L2A"


def _make_item(
    spec: DemoCatalogSpec, lay: _Layout, root: Path, p: _Pass, tile: _Tile, arrays: dict
) -> dict[str, Any]:
    """Write the tile's COGs and its item JSON beside them; return the item."""
    tm = _times(p, spec.seed)
    item_id = _item_id(p, tile, tm)
    folder = root / "cogs" / item_id
    folder.mkdir(parents=True, exist_ok=True)
    assets = {}
    for key in _ASSETS:
        path = folder / (_20M_FILES[key] if key in _20M else f"{_BANDS[key][0]}.tif")
        res = _res(key)
        assets[key] = _asset(
            key, path, tile, _write_cog(path, arrays[key], tile, res, spec.blocksize)
        )
    geometry, bbox, _ = _geometry(lay, tile)
    item = {"type": "Feature", "stac_version": "1.0.0", "id": item_id}
    item["properties"] = _properties(spec, lay, p, tile, tm, _scl_stats(arrays["scl"]))
    item |= {"geometry": geometry, "links": _links(root, folder / f"{item_id}.json")}
    exts = [
        _PROJ_V2 if "projection" in e and spec.proj_key == "proj:code" else e for e in _EXTENSIONS
    ]
    item |= {"assets": assets, "bbox": bbox, "stac_extensions": exts, "collection": spec.collection}
    (folder / f"{item_id}.json").write_text(json.dumps(item, indent=2) + "\n")
    return item


def _links(root: Path, self_href: Path) -> list[dict[str, str]]:
    coll = str(root / "collection.json")
    links = [{"rel": "self", "type": "application/geo+json", "href": str(self_href)}]
    return links + [
        {"rel": r, "type": "application/json", "href": coll}
        for r in ("parent", "collection", "root")
    ]


def _truth_rows(lay: _Layout, item: dict, tile: _Tile, arrays: dict) -> list[dict[str, Any]]:
    """Truth for every point on this tile, read from the generator's arrays (not the COGs)."""
    props = item["properties"]
    when = datetime.fromisoformat(props["datetime"].replace("Z", "+00:00"))
    rows = []
    for p in (p for p in lay.points if tile.covers(p.x, p.y)):
        r, c = int((tile.y1 - p.y) // 10), int((p.x - tile.x0) // 10)
        row = {"point": p.id, "lon": p.lon, "lat": p.lat, "item_id": item["id"]}
        rows.append(
            row
            | {
                "datetime": props["datetime"],
                "solar_day": (when + timedelta(hours=p.lon / 15)).date().isoformat(),
                "cloud_cover": props["eo:cloud_cover"],
                "scl": int(arrays["scl"][r // 2, c // 2]),
                "cloud": int(arrays["cloud"][r // 2, c // 2]),
                "red_scale": SCALE,
                "red_offset": OFFSET,
                "nir_scale": SCALE,
                "nir_offset": OFFSET,
            }
            | {
                f"{band}_dn": int(arrays[band][(r, c) if _res(band) == 10 else (r // 2, c // 2)])
                for band in _BANDS
            }
        )
    return rows


def _collection(spec: DemoCatalogSpec, root: Path, items: list[dict]) -> dict[str, Any]:
    """Collection document shaped like Earth Search's, restricted to the demo's assets."""
    boxes = np.array([it["bbox"] for it in items])
    bbox = [*boxes[:, :2].min(0).tolist(), *boxes[:, 2:].max(0).tolist()]
    first = min(it["properties"]["datetime"] for it in items)
    last = max(it["properties"]["datetime"] for it in items)
    tile = _Tile("44RPR", 0, 0, 0, 0)
    assets = {}
    for k in _ASSETS:
        a = _asset(k, Path(), tile, {})
        assets[k] = {
            n: v for n, v in a.items() if n not in ("href", "proj:shape", "proj:transform")
        }
    bands = [a["eo:bands"][0] | {"name": k} for k, a in assets.items() if k not in _20M]
    links = [{"rel": "self", "type": "application/json", "href": str(root / "collection.json")}]
    links.append({"rel": "items", "type": "application/geo+json", "href": str(root / "items.json")})
    return {
        "type": "Collection", "id": spec.collection,
        "title": "Sentinel-2 Collection 1 Level-2A (ndvicube synthetic demo)",
        "description": f"Synthetic Sentinel-2 L2A items from ndvicube.demo (seed {spec.seed}); "
        "same fields, grids, scale/offset and SCL classes as Earth Search v1 sentinel-2-c1-l2a.",
        "stac_version": "1.0.0", "links": links,
        "stac_extensions": [
            "https://stac-extensions.github.io/item-assets/v1.0.0/schema.json",
            "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
            "https://stac-extensions.github.io/eo/v1.0.0/schema.json",
        ],
        "item_assets": assets,
        "extent": {"spatial": {"bbox": [bbox]}, "temporal": {"interval": [[first, last]]}},
        "license": "CC0-1.0", "keywords": ["sentinel", "earth observation", "synthetic"],
        "providers": [{"name": "ndvicube", "roles": ["producer", "processor"]}],
        "summaries": {
            "platform": ["sentinel-2a", "sentinel-2b"], "constellation": ["sentinel-2"],
            "instruments": ["msi"], "gsd": [10, 20], "eo:bands": bands,
        },
    }  # fmt: skip


def _calendar(spec: DemoCatalogSpec, lay: _Layout, land: _Land) -> dict[str, Any]:
    """True crop calendar per parcel and per point (with the point's static NDVI offset)."""
    points = []
    for p in lay.points:
        r, c = int((lay.y1 - p.y) // 10), int((p.x - lay.x0) // 10)
        parcel = land.meta[int(land.parcel20[r // 2, c // 2])]
        extra = {"point": p.id, "lon": p.lon, "lat": p.lat, "x": p.x, "y": p.y}
        points.append(
            extra
            | {"parcel": parcel["id"], "ndvi_offset": round(float(land.noise10[r, c]), 6)}
            | parcel
        )
        points[-1].pop("id")
    notes = {
        "curve": "NDVI = base + (max - base) * smoothstep, rising sowing->peak, falling "
        "peak->harvest; green_up/senescence are the 50 % crossings; "
        "orchard = mean + amp * cos(2 pi (doy - peak) / 365.25)",
        "pixel_noise": "static per-pixel N(0, 0.015) (ndvi_offset) + per-pass N(0, 0.008)",
        "crs": f"EPSG:{EPSG}",
    }
    return {
        "seed": spec.seed,
        "start": spec.start,
        "end": spec.end,
        "notes": notes,
        "points": points,
        "parcels": land.meta,
    }


def _write_json(path: Path, doc: Any) -> None:
    """Write JSON via a temporary file and rename, so readers never see half a file."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n")
    os.replace(tmp, path)


def generate_demo_catalog(
    out_dir: str | Path, spec: DemoCatalogSpec = DemoCatalogSpec()
) -> DemoCatalog:
    """Write the synthetic catalog, COGs, truth, points and calendar under ``out_dir``.

    ``items.json`` is removed first and written last, so its presence means the catalog is
    complete; an existing ``cogs/`` folder under ``out_dir`` is replaced. Example::

        cat = generate_demo_catalog("demo", DemoCatalogSpec(start="2023-06-01", end="2023-07-31"))
        items = pystac.ItemCollection.from_file(cat.items)
    """
    root = Path(out_dir).resolve()
    root.mkdir(parents=True, exist_ok=True)
    cat = DemoCatalog(
        root, root / "items.json", root / "collection.json", root / "truth.csv",
        root / "points.csv", root / "calendar.json",
    )  # fmt: skip
    cat.items.unlink(missing_ok=True)
    shutil.rmtree(root / "cogs", ignore_errors=True)
    lay = _layout(spec)
    land = _make_land(spec, lay)
    items, truth = [], []
    for p in _passes(spec, lay):
        sun_az, _ = _sun(_times(p, spec.seed)["sense"][0], FIELD1[0], FIELD1[1])
        scene = _scene(land, lay, p.day, sun_az, spec.seed)
        for tile in p.tiles:
            arrays = _tile_arrays(scene, lay, tile)
            items.append(_make_item(spec, lay, root, p, tile, arrays))
            truth += _truth_rows(lay, items[-1], tile, arrays)
    items.sort(key=lambda it: (it["properties"]["datetime"], it["id"]))
    _write_outputs(cat, spec, lay, land, items, truth)
    return cat


def _write_outputs(
    cat: DemoCatalog, spec, lay: _Layout, land: _Land, items: list, truth: list
) -> None:
    """Side files first, items.json last (the completeness marker)."""
    _write_json(cat.collection, _collection(spec, cat.root, items))
    _write_json(cat.calendar, _calendar(spec, lay, land))
    pts = pd.DataFrame([{"id": p.id, "lon": p.lon, "lat": p.lat} for p in lay.points])
    pts.to_csv(cat.points, index=False)
    order = {p.id: i for i, p in enumerate(lay.points)}
    df = pd.DataFrame(truth)
    df = df.sort_values(
        ["point", "datetime", "item_id"], key=lambda s: s.map(order) if s.name == "point" else s
    )
    df.to_csv(cat.truth, index=False)
    doc = {
        "type": "FeatureCollection",
        "features": items,
        "links": [],
        "numberReturned": len(items),
    }
    _write_json(cat.items, doc)


def read_truth(path: str | Path) -> pd.DataFrame:
    """Read truth.csv with exact dtypes: DN/SCL as int64, datetime tz-aware UTC, solar_day naive."""
    df = pd.read_csv(
        path,
        dtype={"point": str, "item_id": str, "scl": "int64", "cloud": "int64"}
        | {f"{band}_dn": "int64" for band in _BANDS},
    )
    df["datetime"] = pd.to_datetime(df["datetime"], utc=True).astype("datetime64[ns, UTC]")
    df["solar_day"] = pd.to_datetime(df["solar_day"]).astype("datetime64[ns]")
    return df


def expected_series(
    truth: pd.DataFrame,
    *,
    max_cloud_cover: float = 30,
    scl_classes: Sequence[int] = MASK_CLASSES,
    max_cloud_probability: int | None = None,
    indices: Sequence[str] = ("NDVI",),
) -> pd.DataFrame:
    """The index series the workflow must produce per point and solar day, from truth alone.

    Items with ``cloud_cover >= max_cloud_cover`` are dropped; the indices (catalogue names) are
    the catalogue's formulas on float64 reflectances, NaN on nodata (DN 0 in any band they
    read, SCL 0), masked SCL classes, or a cloud probability above ``max_cloud_probability``
    (when given); items of one solar day are fused in (datetime, item_id) order, first
    observation wins. Returns ``point, time`` and one column per index (time = midnight of the
    solar day).
    """
    from ndvicube.cube.indices import assets_needed, column, evaluate

    df = truth[truth["cloud_cover"] < max_cloud_cover]
    bands = assets_needed(indices)
    reflectance = {
        band: df[f"{band}_dn"].astype("float64") * df.get(f"{band}_scale", SCALE)
        + df.get(f"{band}_offset", OFFSET)
        for band in bands
    }
    bad = (df["scl"] == 0) | df["scl"].isin(list(scl_classes))
    for band in bands:
        bad = bad | (df[f"{band}_dn"] == 0)
    if max_cloud_probability is not None:
        bad = bad | (df["cloud"] > max_cloud_probability)
    values = {column(name): evaluate(name, reflectance).mask(bad) for name in indices}
    df = df.assign(
        **values,
        time=pd.to_datetime(df["solar_day"]).astype("datetime64[ns]"),
        _t=pd.to_datetime(df["datetime"], utc=True),
        _bad=bad,
    ).sort_values(["_t", "item_id"], kind="stable")
    # First observation of the day: the first clear item's values (all indices from one item).
    first = df[~df["_bad"]].groupby(["point", "time"], sort=True).head(1)
    keys = df[["point", "time"]].drop_duplicates().sort_values(["point", "time"])
    out = keys.merge(first[["point", "time", *values]], on=["point", "time"], how="left")
    return out.reset_index(drop=True)[["point", "time", *values]]


def cube_args(spec: DemoCatalogSpec | None = None) -> dict[str, Any]:
    """Grid and mask of the demo area's cube, as keyword arguments of ``jobs.build_cube``."""
    bbox = (spec or DemoCatalogSpec()).bbox
    return {"bbox": bbox, "crs": f"EPSG:{EPSG}", "resolution": 10, "scl_classes": MASK_CLASSES}


def demo_series(root: str | Path, spec: DemoCatalogSpec | None = None) -> tuple[DemoCatalog, Path]:
    """Generate a demo catalog under ``root`` and run it through the workflow's functions up to
    ``raw.csv`` (the cube of the whole box, series at the catalog's points), in this process.

    For tests and benchmarks of the steps after the series, which need real series with a known
    truth behind them.
    """
    from ndvicube.jobs import build_cube, extract_series
    from ndvicube.timeseries.points import Point

    root = Path(root)
    catalog = generate_demo_catalog(root / "catalog", spec or DemoCatalogSpec())
    doc = json.loads(catalog.items.read_text())
    doc["features"] = [f for f in doc["features"] if f["properties"]["eo:cloud_cover"] < 30]
    _write_json(root / "items.json", doc)
    build_cube(items_path=root / "items.json", out=root / "ndvi.zarr", **cube_args(spec))
    points = [Point(r.id, r.lon, r.lat) for r in pd.read_csv(catalog.points).itertuples()]
    extract_series(cube_path=root / "ndvi.zarr", points=points, out=root / "raw.csv")
    return catalog, root / "raw.csv"


def demo_phenology(
    catalog: DemoCatalog, raw: Path, work: str | Path, **smoothing: Any
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Smooth ``raw`` (``jobs.smooth`` options), find the seasons, and compare them with the
    catalog's calendar over its period: the seasons found, and :func:`phenology_errors`."""
    from ndvicube.jobs import season_metrics, smooth

    work = Path(work)
    smooth(raw_path=raw, out=work / "smoothed.csv", **smoothing)
    season_metrics(
        smoothed_path=work / "smoothed.csv",
        out=work / "phenology.csv",
        fraction=0.5,
        min_amplitude=0.1,
    )
    found = pd.read_csv(work / "phenology.csv", parse_dates=["sos", "pos", "eos"])
    calendar = json.loads(catalog.calendar.read_text())
    errors = phenology_errors(catalog.calendar, found, calendar["start"], calendar["end"])
    return found, errors


def true_seasons(catalog: DemoCatalog) -> int:
    """How many seasons of the calendar peak within the catalog's period."""
    calendar = json.loads(catalog.calendar.read_text())
    start, end = calendar["start"], calendar["end"]
    return sum(1 for p in calendar["points"] for s in p["seasons"] if start <= s["peak"] <= end)


def phenology_errors(
    calendar_path: str | Path, found: pd.DataFrame, start: str, end: str
) -> pd.DataFrame:
    """Each true season peaking in [start, end] against the found season nearest its peak.

    Rows: ``point, crop, metric (sos/pos/eos), truth, found, error_days, cut`` where ``cut``
    says the true season began before ``start`` (for sos) or ended after ``end`` (for eos), so
    an empty ``found`` is the right answer there. ``found`` has no row for a point where no
    season was found at all.
    """
    calendar = json.loads(Path(calendar_path).read_text())
    pairs = {"sos": "green_up", "pos": "peak", "eos": "senescence"}
    rows = []
    for entry in calendar["points"]:
        mine = found[found["point"] == entry["point"]]
        for truth in (s for s in entry["seasons"] if start <= s["peak"] <= end):
            if mine.empty:
                continue
            row = mine.iloc[(mine["pos"] - pd.Timestamp(truth["peak"])).abs().argmin()]
            for metric, name in pairs.items():
                got = row[metric]
                cut = truth["sowing"] < start if metric == "sos" else truth["harvest"] > end
                error = abs((got - pd.Timestamp(truth[name])).days) if pd.notna(got) else None
                rows.append(
                    {
                        "point": entry["point"],
                        "crop": truth["crop"],
                        "metric": metric,
                        "truth": truth[name],
                        "found": got,
                        "error_days": error,
                        "cut": cut and metric != "pos",
                    }
                )
    return pd.DataFrame(rows)


def rewrite_hrefs(
    items_json: str | Path, out_json: str | Path, base_url: str, root: str | Path
) -> Path:
    """Copy an ItemCollection, turning local hrefs under ``root`` into ``base_url`` + relative path.

    Why: to serve the COGs over HTTP (e.g. a loopback server rooted at ``root``) and exercise the
    remote-read code path. Asset hrefs and item links under ``root`` are rewritten; others kept.
    """
    prefix = Path(root).resolve().as_posix().rstrip("/") + "/"
    base = base_url.rstrip("/") + "/"

    def fix(href: str) -> str:
        if "://" in href:
            return href
        local = Path(href).resolve().as_posix()
        return base + local[len(prefix) :] if local.startswith(prefix) else href

    doc = json.loads(Path(items_json).read_text())
    for feature in doc["features"]:
        for asset in feature["assets"].values():
            asset["href"] = fix(asset["href"])
        for link in feature.get("links", []):
            link["href"] = fix(link["href"])
    out = Path(out_json)
    _write_json(out, doc)
    return out


def main(argv: Sequence[str] | None = None) -> None:
    """CLI: generate a demo catalog and print where its files are."""
    ap = argparse.ArgumentParser(
        prog="python -m ndvicube.demo", description=__doc__.splitlines()[0]
    )
    d = DemoCatalogSpec()
    ap.add_argument("out_dir", metavar="OUT_DIR")
    ap.add_argument("--seed", type=int, default=d.seed)
    ap.add_argument("--start", default=d.start)
    ap.add_argument("--end", default=d.end)
    ap.add_argument("--proj-key", default=d.proj_key, choices=["proj:epsg", "proj:code"])
    ap.add_argument(
        "--planetary-computer",
        metavar="DIR",
        help="also write the catalog in Planetary Computer's shape (items.json, collection.json) "
        "to DIR (ndvicube.demo_pc)",
    )
    ap.add_argument(
        "--blob-url",
        help="with --planetary-computer: hrefs under this URL instead of local paths, e.g. "
        "http://ndvicubedemo.blob.core.windows.net/sentinel2-l2",
    )
    args = ap.parse_args(argv)
    spec = DemoCatalogSpec(seed=args.seed, start=args.start, end=args.end, proj_key=args.proj_key)
    cat = generate_demo_catalog(args.out_dir, spec)
    if args.planetary_computer:
        from ndvicube.demo_pc import planetary_computer_copy

        pc = planetary_computer_copy(cat, args.planetary_computer, blob_url=args.blob_url)
        print(f"planetary-computer items: {pc.items}")
    for name in ("root", "items", "collection", "truth", "points", "calendar"):
        print(f"{name}: {getattr(cat, name)}")


if __name__ == "__main__":
    main()

"""The synthetic world the demo catalog observes: its layout, land cover, crops and passes.

Why: every pixel of the catalog is a function of ground position and day, so the world is built
once per spec (seeded) and the scenes (:mod:`ndvicube.demo.scene`) and STAC documents
(:mod:`ndvicube.demo.stac`) are read off it. This module holds what does not depend on the day's
sky: the spec, the tiles and points, the parcels with their crop calendars, and the passes.

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

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
from pyproj import Transformer

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
#: The 20 m classification assets: title and roles as Earth Search writes them.
_20M: dict[str, tuple[str, list[str]]] = {
    "scl": ("Scene classification map (SCL)", ["data"]),
    "cloud": ("Cloud Probabilities", ["data", "cloud"]),
}
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

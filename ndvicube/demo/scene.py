"""One pass over the synthetic world: sun, clouds and shadows, surface reflectance, pixels.

Why: the catalog's COGs and its truth must hold the very same numbers, so both are cut from the
arrays built here (DN of every band at 10 m or 20 m, SCL and cloud probability at 20 m over the
union of the tiles), once per pass, from the world (:mod:`ndvicube.demo.world`) and the day.
Clouds, shadows and nodata are decided on the 20 m grid.
"""

from __future__ import annotations

import math
from datetime import date, datetime

import numpy as np

from ndvicube.demo.world import (
    _20M,
    _BANDS,
    _PAD,
    _VEG,
    _WATER,
    OFFSET,
    SCALE,
    _Land,
    _Layout,
    _parcel_ndvi,
    _Tile,
)


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

"""The synthetic region of the field-set benchmark (``bench/bench_fields.py``): fields and COGs.

Why a generator of its own: the demo catalog (:mod:`ndvicube.demo`) renders every pass's pixels
with truth for its points, which at 40 km x 40 km x 25 days would be gigabytes and minutes.
This benchmark only needs what a cube build pays for - COG headers, compressed tiles, decoding,
masking - so it writes few distinct rasters and reuses them:

* **Fields** (:func:`make_fields`): 10,000 parcels in a handful of farm districts (irregular
  ellipses of tessellated, slightly skewed rectangles, denser at the centre), a few outlying
  fields near them, and one field near each corner of the region, which set its box (a field
  set's box is its fields' lon/lat bounds, and in real portfolios outliers set it). Parcels
  scattered uniformly at this density would touch every chunk of the cube.
* **Scenes** (:func:`scene_grids`, as ``bench/bench_engine.py``'s): two overlapping UTM
  footprints per day, west and east, whose 10 m lattices are offset from the cube's corner and
  from each other by odd numbers of pixels, as two MGRS tiles' are: no COG tile edge meets a
  cube chunk edge. Red and nir (10 m, uint16) once per footprint: field-sized patches (120 m),
  slow gradients and per-pixel noise (sigma 30 and 45 DN), so DEFLATE with the horizontal
  predictor compresses them to about 1.3 bytes a pixel, about as real L2A bands: the bytes
  fetched and the DEFLATE decoding cost what they would; a nodata wedge where the other
  footprint covers. SCL (20 m, uint8) in :data:`SCL_VARIANTS` cloud patterns.
* **Items**: one per footprint per solar day (Earth Search-shaped, the offset varying by day),
  each listing its own hard links to those files (``days/NNN/west/B04.tif``...): every item is
  a distinct URL, fetched and decoded on its own (no cache keyed by URL serves a second item
  from the first's bytes), for no extra disk.

Everything is cached under one folder per COG tile size (``bs1024/``...) and reused by later
runs; ``items-{days}.json`` is written last, so its presence means the catalog is complete.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from _items import Scene, scene_item

EPSG = 32644
CRS = f"EPSG:{EPSG}"
#: Centre of the region in EPSG:32644 (metres): the demo's part of the Terai, as bench_engine.
CENTRE = (610_000.0, 3_010_000.0)
#: Side of the square whose corners the corner fields mark (metres).
SIDE_M = 40_400.0
BANDS = ("red", "nir", "scl")
FILES = {"red": "B04.tif", "nir": "B08.tif", "scl": "SCL.tif"}
#: Cloud patterns of SCL per footprint (cloud fraction of each), reused over the days.
SCL_VARIANTS = (0.02, 0.10, 0.25, 0.45)
TILE_CODE = {"west": "T44RPR", "east": "T44RQR"}


@dataclass(frozen=True)
class Catalog:
    """A cached catalog: items with local hrefs under ``root``, the distinct COGs."""

    root: Path
    items: Path
    cogs: tuple[Path, ...]
    """The distinct files (each item's hrefs are hard links to these)."""


# --- fields ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldLayout:
    """How the benchmark's fields are spread (metres, EPSG:32644)."""

    count: int = 10_000
    districts: int = 4
    strays: int = 16
    """Outlying fields within a few km of a district (the four corner fields come on top)."""
    seed: int = 26


def make_fields(layout: FieldLayout = FieldLayout()):
    """GeoDataFrame ``id``, ``geometry`` (EPSG:32644) of ``layout.count`` parcels."""
    import geopandas as gpd
    import shapely

    rng = np.random.default_rng(layout.seed)
    centres = _district_centres(rng, layout.districts)
    weights = rng.lognormal(0.0, 0.35, layout.districts)
    in_districts = layout.count - layout.strays - 4
    counts = np.floor(weights / weights.sum() * in_districts).astype(int)
    counts[0] += in_districts - counts.sum()
    parcels = []
    for (cx, cy), n in zip(centres, counts, strict=True):
        parcels += _district(rng, cx, cy, int(n))
    for _ in range(layout.strays):
        cx, cy = centres[rng.integers(len(centres))]
        angle, dist = rng.uniform(0, 2 * np.pi), rng.uniform(4_000, 7_000)
        parcels.append(_parcel(rng, cx + dist * np.cos(angle), cy + dist * np.sin(angle), 0.3))
    half = SIDE_M / 2 - 80
    for sx, sy in ((-1, -1), (1, -1), (-1, 1), (1, 1)):
        parcels.append(_parcel(rng, CENTRE[0] + sx * half, CENTRE[1] + sy * half, 0.0))
    ids = [f"f{n:05d}" for n in range(len(parcels))]
    return gpd.GeoDataFrame({"id": ids}, geometry=shapely.polygons(parcels), crs=CRS)


def _district_centres(rng: np.random.Generator, count: int) -> list[tuple[float, float]]:
    """District centres inside the region, at least 12 km apart."""
    centres: list[tuple[float, float]] = []
    reach = SIDE_M / 2 - 7_000
    while len(centres) < count:
        x, y = CENTRE[0] + rng.uniform(-reach, reach), CENTRE[1] + rng.uniform(-reach, reach)
        if all(math.hypot(x - a, y - b) >= 12_000 for a, b in centres):
            centres.append((x, y))
    return centres


def _district(rng: np.random.Generator, cx: float, cy: float, count: int) -> list[np.ndarray]:
    """``count`` parcels tessellating an irregular ellipse around (cx, cy): rows of varying
    depth along the district's orientation, parcels of varying width along each row, tracks
    between them, fewer parcels towards the rim."""
    angle = rng.uniform(0, np.pi)
    aspect = rng.uniform(1.2, 2.0)
    # 0.74 ha of land per parcel with its tracks, about 70 % of it kept: the ellipse's area.
    area = count * 0.74e4 / 0.7
    a = math.sqrt(area * aspect / np.pi)
    b = a / aspect
    wobble = rng.uniform(0, 2 * np.pi, 3)
    cells = []
    v = -b
    while v < b:
        depth = rng.uniform(50, 100)
        u = -a
        while u < a:
            width = rng.uniform(55, 135)
            cu, cv = u + width / 2, v + depth / 2
            # an irregular rim: the radius at this bearing wobbles by +-15 %
            theta = math.atan2(cv / b, cu / a)
            rim = 1 + 0.15 * sum(np.sin(k * theta + wobble[k - 2]) for k in (2, 3, 4)) / 3
            r = math.hypot(cu / a, cv / b) / rim
            if r < 1:
                cells.append((cu, cv, width - 10, depth - 10, r))
            u += width
        v += depth
    keep = np.array([1.0 - 0.6 * c[4] ** 2 for c in cells])
    chosen = rng.choice(len(cells), size=min(count, len(cells)), replace=False, p=keep / keep.sum())
    if len(chosen) < count:  # not enough room: a second, offset district takes the rest
        return [_cell_polygon(rng, cells[i], cx, cy, angle) for i in chosen] + _district(
            rng, cx + 2.2 * a * np.cos(angle), cy + 2.2 * a * np.sin(angle), count - len(chosen)
        )
    return [_cell_polygon(rng, cells[i], cx, cy, angle) for i in chosen]


def _cell_polygon(rng: np.random.Generator, cell, cx: float, cy: float, angle: float):
    """A parcel's ring: the cell's rectangle, corners jittered by up to 4 m, rotated."""
    cu, cv, w, h, _ = cell
    corners = np.array([[-w / 2, -h / 2], [w / 2, -h / 2], [w / 2, h / 2], [-w / 2, h / 2]])
    corners += rng.uniform(-4, 4, corners.shape)
    corners += (cu, cv)
    c, s = np.cos(angle), np.sin(angle)
    xy = corners @ np.array([[c, s], [-s, c]]) + (cx, cy)
    return np.vstack([xy, xy[:1]])


def _parcel(rng: np.random.Generator, x: float, y: float, tilt: float) -> np.ndarray:
    """One outlying parcel around (x, y)."""
    cell = (0.0, 0.0, rng.uniform(45, 125), rng.uniform(40, 90), 0.0)
    return _cell_polygon(rng, cell, x, y, rng.uniform(-tilt, tilt))


# --- scenes ----------------------------------------------------------------------------------


def scene_grids(x0: float, y1: float, height: int, width: int) -> dict[str, Scene]:
    """West and east footprints over the cube grid (x0, y1, height, width), offset from it and
    from each other by odd numbers of pixels (no COG tile edge meets a chunk edge)."""

    def even(n: float) -> int:
        return int(math.ceil(n / 2) * 2)

    west_dx, west_dy = 37, 23  # pixels the west scene starts left of and above the cube
    east_dx = int(0.4 * width) - 61
    east_dx += 1 - east_dx % 2  # odd
    while (east_dx + west_dx) % 256 == 0:  # never on the west scene's tile grid either
        east_dx += 2
    east_dy = 51
    west = Scene(
        "west", x0 - 10 * west_dx, y1 + 10 * west_dy, even(0.6 * width + west_dx + 40),
        even(height + west_dy + 41),
    )  # fmt: skip
    east = Scene(
        "east", x0 + 10 * east_dx, y1 + 10 * east_dy, even(width - east_dx + 45),
        even(height + east_dy + 47),
    )  # fmt: skip
    return {"west": west, "east": east}


def reflectance(scene: Scene) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Red and nir (10 m, uint16, 0 = nodata) and the 20 m nodata wedge of one footprint."""
    rng = np.random.default_rng(1 if scene.name == "west" else 2)
    h, w = scene.height, scene.width
    rows = np.arange(h // 2)[:, None] / (h // 2)
    cols = np.arange(w // 2)[None, :] / (w // 2)
    # west: a wedge along the right edge, inside the east scene; east: one at the upper left
    wedge = cols > 0.86 + 0.1 * rows if scene.name == "west" else cols < 0.12 * (1 - rows)
    nodata = np.repeat(np.repeat(wedge, 2, axis=0), 2, axis=1)
    # field-sized patches: one value per 12 x 12 px cell, shared (inversely) by red and nir
    patch = rng.normal(0.0, 1.0, (h // 12 + 1, w // 12 + 1)).astype("float32")
    patch = np.repeat(np.repeat(patch, 12, axis=0), 12, axis=1)[:h, :w]
    yy = np.arange(h, dtype="float32")[:, None]
    xx = np.arange(w, dtype="float32")[None, :]
    red = 1200 + 300 * np.sin(xx / 430.0) * np.cos(yy / 510.0) - 220 * patch
    red += rng.normal(0.0, 30.0, (h, w)).astype("float32")
    nir = 2900 + 700 * np.cos(xx / 370.0 + yy / 610.0) + 650 * patch
    nir += rng.normal(0.0, 45.0, (h, w)).astype("float32")
    out = {}
    for band, data in (("red", red), ("nir", nir)):
        out[band] = np.where(nodata, 0, np.clip(data, 1, 10_000)).astype("uint16")
    return out, wedge


def scl_variant(scene: Scene, wedge: np.ndarray, cloudy: float, seed: int) -> np.ndarray:
    """SCL (20 m): vegetation and bare soil, a river, cloud blobs covering ``cloudy`` of the
    footprint with their shadows, speckles of cirrus and unclassified, nodata on the wedge."""
    rng = np.random.default_rng(seed)
    h2, w2 = wedge.shape
    yy = np.arange(h2, dtype="float32")[:, None]
    xx = np.arange(w2, dtype="float32")[None, :]
    # bare soil on a third of the 120 m patches, vegetation on the rest
    bare = rng.random((h2 // 6 + 1, w2 // 6 + 1)) < 0.33
    scl = np.where(np.repeat(np.repeat(bare, 6, axis=0), 6, axis=1)[:h2, :w2], 5, 4)
    scl = scl.astype("uint8")
    scl[np.abs(yy - 0.4 * h2 - 60 * np.sin(xx / 300.0)) < 6] = 6
    blobs = np.zeros((h2, w2), "float32")
    for _ in range(6):
        fy, fx, py, px = rng.uniform(20, 90), rng.uniform(20, 90), *rng.uniform(0, 6.3, 2)
        blobs += np.sin(xx / fx + px) * np.cos(yy / fy + py)
    if cloudy > 0:
        edge = np.quantile(blobs[::8, ::8], 1 - cloudy)
        shadow = np.roll(blobs, (12, -9), axis=(0, 1)) > edge
        scl[shadow] = 3
        scl[blobs > edge] = 8
        scl[blobs > edge + 0.4 * (blobs.max() - edge)] = 9
    speckle = rng.random((h2, w2))
    scl[speckle < 0.004] = 10
    scl[speckle > 0.997] = 7
    scl[wedge] = 0
    return scl


def write_cog(path: Path, data: np.ndarray, scene: Scene, blocksize: int) -> None:
    """A DEFLATE COG (horizontal predictor for reflectance), nodata 0, GDAL's overviews."""
    import rasterio
    from rasterio.transform import from_origin

    res = 20 if data.dtype == np.uint8 else 10
    partial = path.with_suffix(".partial.tif")
    profile = dict(
        driver="COG", width=data.shape[1], height=data.shape[0], count=1,
        dtype=data.dtype.name, crs=CRS, transform=from_origin(scene.x0, scene.y1, res, res),
        nodata=0, compress="DEFLATE", predictor=2 if res == 10 else 1, blocksize=blocksize,
    )  # fmt: skip
    with rasterio.open(partial, "w", **profile) as dst:
        dst.write(data, 1)
    os.replace(partial, path)


# --- the catalog -----------------------------------------------------------------------------


def make_catalog(
    folder: Path, grid: tuple[float, float, int, int], blocksize: int, days: int
) -> Catalog:
    """The catalog of ``days`` solar days over the cube grid (x0, y1, height, width), COG
    tiles of ``blocksize`` px, in ``folder`` (kept and reused when complete)."""
    from pyproj import Transformer

    items = folder / f"items-{days}.json"
    scenes = scene_grids(*grid)
    files = {
        (s, b, v): folder / "scenes" / f"{s}_{b}{v if b == 'scl' else ''}.tif"
        for s in scenes
        for b in BANDS
        for v in range(len(SCL_VARIANTS) if b == "scl" else 1)
    }
    if not items.exists():
        (folder / "scenes").mkdir(parents=True, exist_ok=True)
        for name, scene in scenes.items():
            if all(p.exists() for (s, *_), p in files.items() if s == name):
                continue
            bands, wedge = reflectance(scene)
            for band, data in bands.items():
                write_cog(files[name, band, 0], data, scene, blocksize)
            for v, cloudy in enumerate(SCL_VARIANTS):
                scl = scl_variant(scene, wedge, cloudy, seed=10 * v + len(name))
                write_cog(files[name, "scl", v], scl, scene, blocksize)
        to_ll = Transformer.from_crs(EPSG, 4326, always_xy=True)
        pattern = np.random.default_rng(7).choice(len(SCL_VARIANTS), days, p=(0.4, 0.3, 0.2, 0.1))
        features = []
        for n in range(days):
            for name, scene in scenes.items():
                sources = {b: files[name, b, pattern[n] if b == "scl" else 0] for b in BANDS}
                links = _links(sources, folder / "days" / f"{n:03d}" / name)
                features.append(_item(n, scene, links, to_ll))
        partial = items.with_suffix(".partial")
        partial.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
        os.replace(partial, items)
    return Catalog(folder, items, tuple(sorted(files.values())))


def _links(sources: dict[str, Path], folder: Path) -> dict[str, Path]:
    """Hard links to the files in ``folder``: one item's own hrefs (distinct URLs, no disk)."""
    folder.mkdir(parents=True, exist_ok=True)
    links = {}
    for band, source in sources.items():
        link = folder / FILES[band]
        link.unlink(missing_ok=True)
        os.link(source, link)
        links[band] = link
    return links


def _item(n: int, scene: Scene, paths: dict[str, Path], to_ll) -> dict:
    """An Earth Search-shaped item of one footprint on day ``n`` (every fifth day, the offset
    varying by day so every day's values differ)."""
    when = dt.datetime(2023, 1, 2, 5, 10) + dt.timedelta(days=5 * n)
    when += dt.timedelta(seconds=list(TILE_CODE).index(scene.name))
    item_id = f"BENCH_{TILE_CODE[scene.name]}_{when:%Y%m%dT%H%M%S}_L2A"
    return scene_item(item_id, when, scene, paths, to_ll, epsg=EPSG,
                      offset=-0.1 - 0.0001 * (n % 50), cloud_cover=9, bands=BANDS)  # fmt: skip


def disk_mb(folder: Path) -> tuple[float, float]:
    """MB ``folder`` takes on disk (each inode once) and MB its files would take as copies."""
    seen, used, apparent = set(), 0, 0
    for path in folder.rglob("*"):
        if path.is_file():
            st = path.stat()
            apparent += st.st_size
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                used += st.st_blocks * 512
    return used / 1e6, apparent / 1e6

"""A Web-Mercator PNG tile pyramid of the composites, in the figures' colour map.

Tiles are 256 px, XYZ-numbered as Leaflet and OpenStreetMap number them, from the zoom at which
the whole area fits one tile down to the first zoom whose pixels are as fine as the cube's
(``max_zoom``); the page zooms further by enlarging. Each pixel takes the value of the cube
pixel under its centre (nearest, the cube's own values), NaN transparent; a tile whose pixels
are all NaN is not written, so a sparse field set has no tile over its absent chunks.

A composite's tiles are rendered once into a cache folder named by a digest of its values and of
how tiles are drawn, then linked into the viewer: a rebuild for new fields, or of unchanged
periods, renders nothing.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import math
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

TILE = 256
#: Half the Web-Mercator world's width in metres.
HALF = 20037508.342789244
#: Bumped when the drawing changes, so cached tiles of an older drawing are not reused.
DRAWING = "3"
#: Tile pixels per side between the points whose cube coordinates pyproj computes; the pixels
#: between are interpolated (bilinear): at most 0.04 mm off pyproj's own at zoom 14, 9 mm at
#: zoom 10 (27 N, measured); 64 times fewer transforms (a 40 km pyramid's lookups: 11.5 s ->
#: 0.3 s).
STEP = 8


@dataclass(frozen=True)
class Grid:
    """A cube's pixel grid: the centre of the first pixel and the steps (y usually negative)."""

    x0: float
    y0: float
    dx: float
    dy: float
    width: int
    height: int
    crs: str

    @classmethod
    def of(cls, array, crs=None) -> Grid:
        from ndvicube.cube.store import cube_crs

        x, y = array["x"].values, array["y"].values
        crs = crs if crs is not None else cube_crs(array)
        return cls(
            float(x[0]), float(y[0]), float(x[1] - x[0]), float(y[1] - y[0]),
            len(x), len(y), crs.to_string(),
        )  # fmt: skip


def lonlat_bounds(grid: Grid) -> tuple[float, float, float, float]:
    """The grid's outer edges as (west, south, east, north) in degrees."""
    from pyproj import Transformer

    xs = grid.x0 - grid.dx / 2 + np.linspace(0, grid.width * grid.dx, 21)
    ys = grid.y0 - grid.dy / 2 + np.linspace(0, grid.height * grid.dy, 21)
    ring_x = np.concatenate([xs, np.full(21, xs[-1]), xs[::-1], np.full(21, xs[0])])
    ring_y = np.concatenate([np.full(21, ys[0]), ys, np.full(21, ys[-1]), ys[::-1]])
    lon, lat = Transformer.from_crs(grid.crs, "EPSG:4326", always_xy=True).transform(ring_x, ring_y)
    return float(lon.min()), float(lat.min()), float(lon.max()), float(lat.max())


def zoom_range(grid: Grid) -> tuple[int, int]:
    """From the zoom at which the area spans at most two tiles across, to the first zoom whose
    pixels on the ground are no coarser than the cube's."""
    west, south, east, north = lonlat_bounds(grid)
    lat = math.radians(max(abs(south), abs(north)))
    metres = 2 * HALF * math.cos(lat) / TILE  # a pixel's ground size at zoom 0
    top = max(0, math.ceil(math.log2(metres / abs(grid.dx))))
    span = max(east - west, 1e-9) / 360
    low = max(0, min(top, math.floor(math.log2(2 / span))))
    return low, top


def tile_range(bounds, z: int) -> tuple[range, range]:
    """The x and y numbers of the tiles at zoom ``z`` that cover ``bounds`` (degrees)."""
    west, south, east, north = bounds
    n = 2**z
    x0, y0 = _tile_xy(west, north, n)
    x1, y1 = _tile_xy(east, south, n)
    return range(int(x0), int(x1) + 1), range(int(y0), int(y1) + 1)


def _tile_xy(lon: float, lat: float, n: int) -> tuple[float, float]:
    x = (lon + 180) / 360 * n
    lat = math.radians(lat)
    y = (1 - math.log(math.tan(lat) + 1 / math.cos(lat)) / math.pi) / 2 * n
    return min(max(x, 0), n - 1), min(max(y, 0), n - 1)


@functools.lru_cache(maxsize=4)
def _from_mercator(crs: str):
    """Web Mercator -> ``crs``, made once (3 ms each: 1.6 s over a 40 km pyramid's tiles)."""
    from pyproj import Transformer

    return Transformer.from_crs("EPSG:3857", crs, always_xy=True)


def tile_knots(grid: Grid, z: int, tx: int, ty: int) -> tuple[np.ndarray, np.ndarray]:
    """The cube's (column, row), in pixels from its first pixel's centre, of one tile's pixel
    edges every :data:`STEP` pixels: (33, 33) each."""
    size = 2 * HALF / 2**z
    pixel = size / TILE
    knots = np.arange(0, TILE + 1, STEP, dtype=np.float64)  # pixel edges 0, 8, ..., 256
    mx, my = np.meshgrid(-HALF + tx * size + knots * pixel, HALF - ty * size - knots * pixel)
    x, y = _from_mercator(grid.crs).transform(mx, my)
    return (x - grid.x0) / grid.dx, (y - grid.y0) / grid.dy


def lookup_of(grid: Grid, cols: np.ndarray, rows: np.ndarray):
    """The flat cube indices under the centres of one tile's pixels, and where they fall
    inside the cube (a boolean mask, None where all do), both of shape (256, 256), from the
    tile's knots (:func:`tile_knots`)."""
    centres = (np.arange(TILE) + 0.5) / STEP  # pixel centres in knot units
    col = np.floor(_bilinear(cols, centres) + 0.5).astype(np.int64)
    row = np.floor(_bilinear(rows, centres) + 0.5).astype(np.int64)
    inside = (col >= 0) & (col < grid.width) & (row >= 0) & (row < grid.height)
    index = np.where(inside, row * grid.width + col, 0).astype(np.int32)
    return index, (None if inside.all() else inside)


def _bilinear(knots: np.ndarray, at: np.ndarray) -> np.ndarray:
    """``knots`` (a square grid) interpolated at fractional positions ``at`` along both axes."""
    i = np.minimum(at.astype(int), knots.shape[0] - 2)
    f = at - i
    rows = knots[i] * (1 - f)[:, None] + knots[i + 1] * f[:, None]
    return rows[:, i] * (1 - f)[None, :] + rows[:, i + 1] * f[None, :]


def _palette() -> tuple[np.ndarray, bytes]:
    """Palette entry of each of the colour map's 256 colours, and the PNG palette (RGB bytes):
    entry 0 is transparent NaN (so the transparency table is one byte), then the colour map's
    colours in its order, but the two most alike neighbouring colours (equal in RdYlGn: its
    128th and 129th) share one entry, so the 255 entries left hold every colour, each the
    colour map's own within one unit per channel."""
    from ndvicube.figures.maps import colour_table

    table = colour_table().astype(int)
    step = np.abs(np.diff(table, axis=0)).max(axis=1)
    merged = int(np.argmin(step))  # colour merged + 1 drawn as colour merged
    assert step[merged] <= 1, "no two neighbouring colours within one unit"
    index = np.arange(len(table)) + 1
    index[merged + 1 :] -= 1
    entries = np.vstack([np.zeros((1, 3), int), np.delete(table, merged + 1, axis=0)])
    return index.astype(np.uint8), entries.astype(np.uint8).tobytes()


#: The palette entry of NaN (transparent).
NAN = 0
#: zlib's level for the tiles. On the benchmark's 227 tiles of a period, Paeth-filtered (MB of
#: compressed rows, CPU s): level 1 3.44 in 0.09, 3 3.38 in 0.12, 4 3.26 in 0.15, 6 (zlib's
#: default) 3.24 in 0.21: 4 is where lazy matching starts, within 1 % of 6 for 70 % of its time.
LEVEL = 4


def digest(values: np.ndarray, grid: Grid) -> str:
    """A name for one composite's tiles: its values, its grid and the drawing."""
    h = hashlib.sha256(memoryview(np.ascontiguousarray(values, dtype=np.float32)).cast("B"))
    h.update(repr((grid, DRAWING)).encode())
    return h.hexdigest()[:16]


#: Cube pixels a side of the blocks in which :class:`Pyramid` looks for data before drawing a
#: tile: a tile's box meets no block with a finite value, it is not drawn at all.
BLOCK = 32


class Pyramid:
    """The tiles of a grid's pyramid: every tile that touches the grid with the box of cube
    pixels it covers (computed at once, from its knots), and its lookup (computed when the tile
    is first drawn, then kept for the next periods: the projection is computed once).

    Only the tiles whose box holds a finite value are drawn, so a sparse field set costs the
    tiles over its fields, not over its bounding box."""

    def __init__(self, grid: Grid):
        self.grid = grid
        self.knots: dict[tuple[int, int, int], tuple[np.ndarray, np.ndarray]] = {}
        self.boxes: dict[tuple[int, int, int], tuple[int, int, int, int]] = {}
        bounds = lonlat_bounds(grid)
        low, top = zoom_range(grid)
        for z in range(low, top + 1):
            xs, ys = tile_range(bounds, z)
            for tx in xs:
                for ty in ys:
                    cols, rows = tile_knots(grid, z, tx, ty)
                    box = _box(cols, grid.width), _box(rows, grid.height)
                    if box[0][0] <= box[0][1] and box[1][0] <= box[1][1]:
                        self.knots[(z, tx, ty)] = cols, rows
                        self.boxes[(z, tx, ty)] = (*box[1], *box[0])
        self._lookups: dict = {}

    def lookup(self, key: tuple[int, int, int]):
        """The tile's :func:`lookup_of`, computed once."""
        if key not in self._lookups:
            self._lookups[key] = lookup_of(self.grid, *self.knots[key])
        return self._lookups[key]

    def with_data(self, missing: np.ndarray) -> list[tuple[int, int, int]]:
        """The tiles whose box meets a :data:`BLOCK` of cube pixels with a finite value
        (``missing``: the grid's NaN mask)."""
        h, w = missing.shape
        nh, nw = -(-h // BLOCK), -(-w // BLOCK)
        padded = np.ones((nh * BLOCK, nw * BLOCK), bool)
        padded[:h, :w] = missing
        found = ~padded.reshape(nh, BLOCK, nw, BLOCK).all(axis=(1, 3))
        table = np.zeros((nh + 1, nw + 1), np.int64)  # summed-area table of the blocks
        table[1:, 1:] = found.cumsum(0).cumsum(1)
        keys = []
        for key, (r0, r1, c0, c1) in self.boxes.items():
            r0, r1, c0, c1 = r0 // BLOCK, r1 // BLOCK + 1, c0 // BLOCK, c1 // BLOCK + 1
            if table[r1, c1] - table[r0, c1] - table[r1, c0] + table[r0, c0]:
                keys.append(key)
        return keys


def _box(positions: np.ndarray, size: int) -> tuple[int, int]:
    """The first and last cube pixel (clipped to the grid) whose centre is nearest to some
    position between ``positions``' least and greatest (a tile's pixels lie within its
    knots': they are interpolated between them)."""
    first = max(int(np.floor(positions.min() + 0.5)), 0)
    last = min(int(np.floor(positions.max() + 0.5)), size - 1)
    return first, last


def render_pyramid(values: np.ndarray, pyramid: Pyramid, target: Path, pool=None) -> int:
    """Write the tiles of one composite (2-D ``values``) under ``target/{z}/{x}/{y}.png``
    (palette PNGs, NaN transparent), on the threads of ``pool`` (an executor) if given; returns
    how many were written (tiles without a finite value are not)."""
    from ndvicube.figures.maps import palette_indices
    from ndvicube.viewer.png import palette_png

    to_entry, colours = _palette()
    flat = np.ascontiguousarray(values, dtype=np.float32).ravel()

    def draw(key: tuple[int, int, int]) -> bool:
        index, inside = pyramid.lookup(key)
        pixels = np.take(flat, index)  # colours per tile, not for the whole grid: on threads
        if inside is not None:
            pixels[~inside] = np.nan
        codes, nan = palette_indices(pixels)
        if nan.all():
            return False
        tile = to_entry[codes]
        tile[nan] = NAN
        z, tx, ty = key
        png = palette_png(tile, colours, transparent=NAN, level=LEVEL)
        (target / f"{z}/{tx}/{ty}.png").write_bytes(png)
        return True

    keys = pyramid.with_data(np.isnan(values))
    for z, tx in sorted({(z, tx) for z, tx, _ in keys}):  # each folder made once, not per tile
        (target / str(z) / str(tx)).mkdir(parents=True, exist_ok=True)
    return sum((pool.map if pool is not None else map)(draw, keys))


def tile_keys(folder: Path) -> list[str]:
    """The ``z/x/y`` of every tile under ``folder``, sorted."""
    return sorted(str(p.relative_to(folder).with_suffix("")) for p in folder.rglob("*.png"))


def _prune(cache: Path, used: set[str]) -> None:
    """Remove the cache's tiles of composites no longer drawn (periods recomputed since,
    leftovers of an interrupted job): the cache holds one viewer's tiles, not every past one."""
    for folder in cache.iterdir():
        if folder.name not in used:
            shutil.rmtree(folder, ignore_errors=True)


#: Cube pixels (of the area's box) from which the quick-look job asks for two threads for the
#: viewer's tiles: about 10 km x 10 km at 10 m. A smaller area's tiles take a fraction of a
#: second, and with one thread its quick-look runs beside the figures job on two cores.
THREADED_FROM_PX = 1024 * 1024


def threads_for(bbox: tuple[float, float, float, float], resolution: float) -> int:
    """Threads for the viewer's tiles of an area: 2 from :data:`THREADED_FROM_PX` pixels of
    ``resolution`` metres in its ``bbox`` (west, south, east, north in degrees), else 1."""
    west, south, east, north = bbox
    width = (east - west) * 111_320 * math.cos(math.radians((south + north) / 2))
    height = (north - south) * 110_574
    return 2 if width * height / resolution**2 >= THREADED_FROM_PX else 1


#: Bytes of composites read at once: whole time chunks where they fit (a period read alone
#: decompresses every chunk it meets whole, 8 periods of it with the cube's time chunks).
READ_BYTES = 512 * 2**20


def period_blocks(array):
    """(starts, 3-D float32 values) of blocks of periods of at most :data:`READ_BYTES`."""
    per_period = array.sizes["y"] * array.sizes["x"] * 4
    step = max(1, READ_BYTES // per_period)
    for first in range(0, array.sizes["time"], step):
        block = np.asarray(array.isel(time=slice(first, first + step)).values, dtype=np.float32)
        yield array["time"].values[first : first + step], block


def write_tiles(
    array, cache: Path, out: Path, sets: list[list[str]], crs, *, threads: int = 1
) -> list[dict]:
    """The tiles of every period of ``array`` (time, y, x), rendered into ``cache`` (on
    ``threads`` threads) unless an identical composite's are there already, and linked into
    ``out/{digest}``; returns one
    layer description per period (its start, its folder name, the number of its tile set in
    ``sets``, which gains the sets not seen yet: the page asks only for tiles that exist, so
    opening it from ``file://`` logs no missing file)."""
    from concurrent.futures import ThreadPoolExecutor

    from ndvicube.cube.links import link_or_copy

    grid = Grid.of(array, crs)
    pyramid = None
    layers, rendered, reused = [], 0, 0
    # numpy's take, zlib, sha256 and file writes release the GIL: the threads share the work
    pool = ThreadPoolExecutor(threads) if threads > 1 else None
    try:
        for starts, block in period_blocks(array):
            names = list((pool.map if pool else map)(lambda v: digest(v, grid), block))
            for start, values, name in zip(starts, block, names, strict=True):
                done = cache / name
                if done.is_dir():
                    reused += 1
                else:
                    pyramid = pyramid if pyramid is not None else Pyramid(grid)
                    partial = cache / f"{name}.partial"
                    shutil.rmtree(partial, ignore_errors=True)
                    partial.mkdir(parents=True)
                    rendered += render_pyramid(values, pyramid, partial, pool)
                    partial.rename(done)
                if not (out / name).exists():  # two periods of the same values share tiles
                    shutil.copytree(done, out / name, copy_function=link_or_copy)
                keys = tile_keys(done)
                if keys not in sets:
                    sets.append(keys)
                layers.append({"start": str(start)[:10], "tiles": name,
                               "set": sets.index(keys)})  # fmt: skip
    finally:
        if pool is not None:
            pool.shutdown()
    _prune(cache, {layer["tiles"] for layer in layers})
    log.info("tiles of %s: %d rendered; %d of %d period(s) reused from %s", array.name,
             rendered, reused, len(layers), cache)  # fmt: skip
    return layers

"""Split one area's cube into spatial tiles built by separate jobs, and join them without a copy.

A large area (say 100 km x 100 km) is too much for one job; ``areas.NAME.tiles: [rows, cols]``
cuts its pixel grid into ``rows x cols`` tiles whose edges fall on Zarr chunk edges. Each tile is
an ordinary cube store (same days, same chunking), built by its own job - on its own node under
SLURM. Because the edges are chunk-aligned, tile chunk ``t.j.i`` *is* chunk
``t.(j + row offset).(i + column offset)`` of the area's cube, byte for byte. Joining therefore
writes only the area store's metadata and coordinates and hard-links every chunk file: no pixel
is read, decoded or copied again, and the tiles and the cube share their disk blocks.
"""

from __future__ import annotations

import json
import logging
import math
import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ndvicube.cube.links import from_cache, link_or_copy
from ndvicube.errors import ConfigError

log = logging.getLogger(__name__)

#: A tile's name in file names and the ``{tile}`` wildcard: ``ROW-COL``, counted from 0 at the
#: north-west corner.
TILE_NAME = re.compile(r"^(\d+)-(\d+)$")


@dataclass(frozen=True)
class Tile:
    """One tile of an area split into ``rows x cols`` tiles."""

    row: int
    col: int
    rows: int
    cols: int

    @property
    def name(self) -> str:
        """``ROW-COL``, as in ``results/{area}/tiles/{name}.zarr``."""
        return f"{self.row}-{self.col}"

    @classmethod
    def from_name(cls, name: str, rows: int, cols: int) -> Tile:
        """Parse ``ROW-COL`` of a ``rows x cols`` split."""
        match = TILE_NAME.match(name)
        if not match or int(match[1]) >= rows or int(match[2]) >= cols:
            raise ValueError(f"tile {name!r} is not ROW-COL of a {rows} x {cols} split")
        return cls(int(match[1]), int(match[2]), rows, cols)


def all_tiles(rows: int, cols: int) -> list[Tile]:
    """Every tile of a ``rows x cols`` split, row by row."""
    return [Tile(r, c, rows, cols) for r in range(rows) for c in range(cols)]


def chunk_ranges(pixels: int, chunk: int, parts: int) -> list[range]:
    """Split ``pixels`` into ``parts`` contiguous pixel ranges made of whole chunks.

    Chunks are shared out as evenly as possible (the first ranges get one more when they do not
    divide); only the last range may end in a partial chunk.
    """
    chunks = math.ceil(pixels / chunk)
    if not 1 <= parts <= chunks:
        raise ValueError(f"cannot split {chunks} chunk(s) into {parts} part(s)")
    base, extra = divmod(chunks, parts)
    ranges, first = [], 0
    for part in range(parts):
        count = base + (1 if part < extra else 0)
        ranges.append(range(first * chunk, min((first + count) * chunk, pixels)))
        first += count
    return ranges


def tile_window(tile: Tile, shape: tuple[int, int], chunk: int) -> tuple[slice, slice]:
    """The (y, x) pixel slices of ``tile`` in an area grid of ``shape`` (height, width)."""
    ys = chunk_ranges(shape[0], chunk, tile.rows)[tile.row]
    xs = chunk_ranges(shape[1], chunk, tile.cols)[tile.col]
    return slice(ys.start, ys.stop), slice(xs.start, xs.stop)


def check_split(area: str, shape: tuple[int, int], chunk: int, rows: int, cols: int) -> None:
    """Refuse a split with more tiles along an axis than the area has chunks along it."""
    chunks = (math.ceil(shape[0] / chunk), math.ceil(shape[1] / chunk))
    if rows > chunks[0] or cols > chunks[1]:
        raise ConfigError(
            f"areas.{area}.tiles is [{rows}, {cols}], but the area's grid is {shape[0]} x "
            f"{shape[1]} pixels, i.e. {chunks[0]} x {chunks[1]} chunks of {chunk} pixels, and "
            "every tile must hold at least one whole chunk row and column. Use at most "
            f"[{chunks[0]}, {chunks[1]}] (or a smaller cube.spatial_chunk)."
        )


def link_chunks(
    tile_store: Path, area_store: Path, offsets: tuple[int, int], variable: str = "ndvi"
) -> int:
    """Hard-link a tile's chunk files into the area store, shifted by (y, x) chunk offsets.

    Returns how many files were linked. Where the filesystem cannot link (no links at all, or
    the two stores on different devices) they are copied, and the job says so once with the
    cost (:mod:`.links`); a tile from Snakemake's output cache is copied too.
    """
    _check_same_encoding(tile_store / variable, area_store / variable)
    separator = _separator(area_store / variable)
    # A tile from Snakemake's output cache: its files are the cache's (mode 666), copied.
    place = shutil.copy2 if from_cache(tile_store) else link_or_copy
    linked = 0
    for source in sorted((tile_store / variable).iterdir()):
        if source.name.startswith("."):
            continue
        t, y, x = (int(i) for i in source.name.split(separator))
        target = (
            area_store / variable / separator.join(map(str, (t, y + offsets[0], x + offsets[1])))
        )
        place(source, target)
        linked += 1
    return linked


def _check_same_encoding(tile_array: Path, area_array: Path) -> None:
    """Chunk files are only interchangeable when chunking, dtype, codecs and fill agree."""
    keys = ("chunks", "dtype", "compressor", "filters", "fill_value", "order")
    tile, area = _zarray(tile_array), _zarray(area_array)
    differing = [k for k in keys if tile.get(k) != area.get(k)]
    if differing:
        raise ValueError(
            f"tile store {tile_array.parent} was written with another {', '.join(differing)} "
            f"than the area store ({tile} vs {area}); rebuild the tiles"
        )


def _zarray(array: Path) -> Mapping:
    """An array's Zarr v2 metadata."""
    return json.loads((array / ".zarray").read_text())


def _separator(array: Path) -> str:
    """Chunk key separator of a Zarr v2 array ("." unless the store says otherwise)."""
    return _zarray(array).get("dimension_separator") or "."


def chunk_offsets(tile: Tile, shape: tuple[int, int], chunk: int) -> tuple[int, int]:
    """The tile's first chunk row and column in the area store."""
    ys, xs = tile_window(tile, shape, chunk)
    return ys.start // chunk, xs.start // chunk


def tiles_in_order(paths: Sequence[str | Path], rows: int, cols: int) -> dict[Tile, Path]:
    """Map ``.../ROW-COL.zarr`` paths to their tiles, checking the split is complete."""
    found = {Tile.from_name(Path(p).name.removesuffix(".zarr"), rows, cols): Path(p) for p in paths}
    missing = [t.name for t in all_tiles(rows, cols) if t not in found]
    if missing:
        raise ValueError(f"tiles {missing} of the {rows} x {cols} split are missing")
    return {t: found[t] for t in all_tiles(rows, cols)}

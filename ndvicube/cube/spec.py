"""What a cube is made of: its grid, its mask and its chunks, as one value a job receives.

The ``cloud_mask`` and ``cube`` sections of the config are dataclasses here, named field by
field like their YAML keys, so :mod:`ndvicube.config` builds them with ``CloudMask(**section)``
and a rule passes them on as plain parameters (:meth:`CubeSpec.to_params`) that the job turns
back into a spec (:meth:`CubeSpec.from_params`). A new cube setting is a key in the schema, a
field here, and the code that uses it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from ndvicube.cube.indices import DEFAULT_INDICES, assets_needed
from ndvicube.cube.tiles import Tile
from ndvicube.geo import BBox

#: The origin notebook's masked SCL classes: shadow, medium/high-probability cloud, cirrus.
DEFAULT_SCL_CLASSES: tuple[int, ...] = (3, 8, 9, 10)
#: Solar days per Zarr chunk (and per write block); see the README's "Chunking" section.
DEFAULT_TIME_CHUNK = 8


@dataclass(frozen=True)
class CloudMask:
    """The ``cloud_mask`` section: which pixels are cloud, shadow or cirrus."""

    scl_classes: tuple[int, ...] = DEFAULT_SCL_CLASSES
    """SCL classes masked (the notebook's 3, 8, 9, 10)."""
    buffer_m: float = 0.0
    """Masked SCL classes are grown by this many metres (0: the notebook's mask)."""
    max_probability: int | None = None
    """Also mask pixels whose ``cloud`` asset (probability, %) is above this; None: not read."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "scl_classes", tuple(sorted(self.scl_classes)))


@dataclass(frozen=True)
class Chunking:
    """The ``cube`` section: how the store is chunked (and how much a read task covers)."""

    time_chunk: int = DEFAULT_TIME_CHUNK
    """Solar days per Zarr chunk and per write block."""
    spatial_chunk: int = 256
    """Pixels per side of a read task and of a Zarr chunk."""


@dataclass(frozen=True)
class CubeSpec:
    """The grid, mask, indices and chunks of a cube: everything besides the items that decides
    its values and layout (so it is also what a store records to be reused,
    :func:`ndvicube.cube.update.grid_signature`)."""

    bbox: BBox
    """Area box, lon_min, lat_min, lon_max, lat_max (EPSG:4326)."""
    crs: str
    """Cube CRS, e.g. ``EPSG:32644`` (the UTM zone of the area's centre)."""
    resolution: float = 10.0
    """Pixel size in CRS units (metres)."""
    indices: tuple[str, ...] = DEFAULT_INDICES
    """Catalogue names of the indices computed (checked by ``indices.resolve_indices``)."""
    cloud_mask: CloudMask = field(default_factory=CloudMask)
    cube: Chunking = field(default_factory=Chunking)
    tile: Tile | None = None
    """Only this tile of the area's grid (a tile job), or the whole grid."""
    chunks: tuple[tuple[int, int], ...] | None = None
    """A sparse cube (a field set): only these (row, column) chunks of the grid are read and
    stored, the others are absent from the store (read as NaN). None: every chunk."""

    def __post_init__(self) -> None:
        if self.chunks is not None:
            object.__setattr__(
                self, "chunks", tuple(sorted({(int(r), int(c)) for r, c in self.chunks}))
            )

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> CubeSpec:
        """The spec a rule passed as plain values (:meth:`to_params`: lists, dicts, None)."""
        tile = params.get("tile")
        return cls(
            bbox=tuple(params["bbox"]),
            crs=params["crs"],
            resolution=float(params["resolution"]),
            indices=tuple(params["indices"]),
            cloud_mask=CloudMask(**params.get("cloud_mask", {})),
            cube=Chunking(**params.get("cube", {})),
            tile=Tile(**tile) if isinstance(tile, Mapping) else tile,
            chunks=params.get("chunks"),
        )

    def to_params(self) -> dict[str, Any]:
        """Plain values (JSON-able): a rule's parameter, and the store's record of its grid."""
        params = asdict(self)
        params["bbox"] = list(self.bbox)
        params["indices"] = list(self.indices)
        params["cloud_mask"]["scl_classes"] = list(self.cloud_mask.scl_classes)
        if self.chunks is not None:
            params["chunks"] = [list(c) for c in self.chunks]
        return params

    @property
    def bands(self) -> tuple[str, ...]:
        """The reflectance assets read: those the indices need (red and nir for NDVI)."""
        return assets_needed(self.indices)

    @property
    def assets(self) -> tuple[str, ...]:
        """Every asset read: the bands, scl, and the cloud probability when it is used."""
        cloud = ("cloud",) if self.cloud_mask.max_probability is not None else ()
        return (*self.bands, "scl", *cloud)

    @property
    def buffer_px(self) -> int:
        """The SCL buffer in whole cube pixels (rounded up)."""
        return math.ceil(self.cloud_mask.buffer_m / self.resolution - 1e-9)

"""The cube engine's plan: what every write block of a build reads, on which grids, and where
it writes (pickled once per graph, so a distributed worker gets it whole)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ndvicube.cube.spec import CubeSpec

if TYPE_CHECKING:
    from odc.geo.geobox import GeoBox

    from ndvicube.cube.load import SceneGroup


@dataclass(frozen=True)
class Source:
    """One asset of one item, as the block tasks read it."""

    item_id: str
    asset: str
    href: str
    raster: Any
    """Its band, grid and metadata: :class:`~ndvicube.cube.sources.RasterRef` (or odc-loader's
    ``RasterSource`` where odc-stac planned), what GDAL's reader opens."""
    chunks: frozenset[tuple[int, int]]
    """Chunks of the read grid the item's footprint touches (odc-stac reads no other)."""


@dataclass(frozen=True)
class GroupPlan:
    """Items of one solar day sharing a scaling (:class:`~ndvicube.cube.load.SceneGroup`)."""

    group: SceneGroup
    items: tuple[tuple[Source, ...], ...]
    """Per item (in fusing order), its sources in the order of ``spec.assets``."""


@dataclass(frozen=True)
class DayPlan:
    """One solar day of the cube: the groups to read, or its index in the existing store."""

    day: str
    groups: tuple[GroupPlan, ...]
    old_index: int | None = None

    @property
    def scenes(self) -> int:
        """Items read for this day (0 for a copied day)."""
        return sum(len(g.group.item_ids) for g in self.groups)


@dataclass(frozen=True)
class EnginePlan:
    """Everything a block task needs (pickled once per graph under a distributed scheduler)."""

    spec: CubeSpec
    days: tuple[DayPlan, ...]
    load_geobox: GeoBox
    """The grid read (the cube's, or a tile's with its SCL buffer margin)."""
    crop: tuple[slice, slice]
    """The cube's grid inside :attr:`load_geobox`."""
    block_px: int
    cfgs: dict[str, Any]
    """Per asset, its load config (fill values, dtypes) as odc-stac sets them:
    :class:`~ndvicube.cube.sources.LoadParams` (or odc-loader's ``RasterLoadParams``)."""
    reader: str
    rio_env: dict[str, Any] | None
    """odc-stac's GDAL settings to read with; None: the remote reader reads every COG, and a
    block that must fall back to GDAL configures it in its own process."""
    store: str
    """The ``.partial`` store the blocks are written into."""
    old_store: str | None
    variables: tuple[str, ...]
    collect: bool
    """Return unreadable assets (``skip``) instead of raising the first."""
    deadline_s: float
    job_ends_epoch: float
    """When every read of the job must be done (``time.time()``; workers have their own clocks'
    monotonic time, not this process's)."""
    chunks: frozenset[tuple[int, int]] | None = None
    """A sparse cube's present chunks (then one block is one chunk); None: every block."""
    old_chunks: frozenset[tuple[int, int]] | None = None
    """The chunks the existing store holds (None: all): its days are copied only there."""

    @property
    def shape(self) -> tuple[int, int]:
        return (self.crop[0].stop - self.crop[0].start, self.crop[1].stop - self.crop[1].start)

    def sources(self):
        """Every source the build reads, day by day, group by group, item by item (of a sparse
        cube, those whose footprint touches what its chunks read)."""
        every = (s for d in self.days for g in d.groups for item in g.items for s in item)
        if self.chunks is None:
            return every
        read = self.read_chunks()
        return (s for s in every if not s.chunks.isdisjoint(read))

    def read_chunks(self) -> frozenset[tuple[int, int]]:
        """Chunks of the read grid a sparse cube's blocks read: its own, and the neighbours its
        SCL buffer's margin reaches into."""
        chunk = self.spec.cube.spatial_chunk
        reach = -(-self.spec.buffer_px // chunk)
        return frozenset(
            (by + dy, bx + dx)
            for by, bx in self.blocks()
            for dy in range(-reach, reach + 1)
            for dx in range(-reach, reach + 1)
        )

    def blocks(self) -> list[tuple[int, int]]:
        """The (row, column) write blocks computed: every block, or a sparse cube's chunks."""
        _, ny, nx = self.grid()
        if self.chunks is not None:
            return sorted(self.chunks)
        return [(by, bx) for by in range(ny) for bx in range(nx)]

    def copies(self, day: DayPlan, block: tuple[int, int]) -> bool:
        """Whether ``block`` of ``day`` is copied from the existing store (not read)."""
        return day.old_index is not None and (self.old_chunks is None or block in self.old_chunks)

    def grid(self) -> tuple[int, int, int]:
        """Time blocks, block rows and block columns."""
        tc, (h, w), b = self.spec.cube.time_chunk, self.shape, self.block_px
        return -(-len(self.days) // tc), -(-h // b), -(-w // b)

"""Rule ``join_tiles``: an area's cube from its tile stores, by hard links (no copy), or with
``cube_store`` by writing the metadata of the version the tiles wrote their chunks into."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ndvicube.cube.tiles import Tile

log = logging.getLogger(__name__)


def join_tiles(
    *,
    tile_paths: Sequence[str | Path],
    split: Sequence[int],
    out: str | Path,
    crs: str,
    skipped: Sequence[str | Path] = (),
    skipped_out: str | Path | None = None,
    published: str | Path | None = None,
    versions_kept: int = 2,
    field_set: bool = False,
    cube_store: str | None = None,
    area: str = "",
) -> Path:
    """Assemble an area's cube from its ``rows x cols`` tile stores by hard-linking their chunks.

    The tiles' skipped-scene lists are merged into the area's (a scene skipped by several tiles
    is listed once). With ``published`` (``results/{area}/ndvi.zarr``) the joined store is also
    published as a read-only version that link names, as a whole area's cube job does
    (:func:`ndvicube.cube.versions.release`). A ``field_set``'s tiles are shares of its chunks
    on the whole grid, linked where they lie (:func:`ndvicube.cube.store.join_sparse_tiles`).
    With ``cube_store`` the tiles are manifests of tile stores whose chunks lie in the area's
    pending version already: the join writes that version's metadata and the pointer, copying
    no chunk (:func:`join_in_bucket`), and ``out`` is the area's manifest.
    """
    if cube_store is not None:
        return join_in_bucket(
            tile_paths, split, out, crs=crs, cube_store=cube_store, area=area,
            skipped=skipped, skipped_out=skipped_out, versions_kept=versions_kept,
        )  # fmt: skip
    from ndvicube.cube.links import copies_reported
    from ndvicube.cube.store import join_sparse_tiles
    from ndvicube.cube.store import join_tiles as join
    from ndvicube.cube.tiles import tiles_in_order
    from ndvicube.cube.versions import release
    from ndvicube.read.missing import read_skipped, write_skipped

    joiner = join_sparse_tiles if field_set else join
    with copies_reported(Path(out).parent):  # where the filesystem has no links (vfat, exFAT)
        path = joiner(tiles_in_order(tile_paths, *split), out, crs=crs)
        if skipped_out is not None:
            rows = [row for listing in skipped for row in read_skipped(listing)]
            write_skipped(list(dict.fromkeys(rows)), skipped_out)
        if published is not None:
            release(path, published, keep=versions_kept)
    return path


def join_in_bucket(
    tile_paths: Sequence[str | Path],
    split: Sequence[int],
    out: str | Path,
    *,
    crs: str,
    cube_store: str,
    area: str,
    skipped: Sequence[str | Path] = (),
    skipped_out: str | Path | None = None,
    versions_kept: int = 2,
) -> Path:
    """:func:`join_tiles` with ``cube_store``: the version the tile manifests name finished
    in place (:func:`join_tiles_in_place`), the pointer moved to it (older
    versions pruned) and the area's manifest ``out`` written last."""
    from ndvicube.cube.objectstore import check_cube_store, is_finished, release, write_manifest
    from ndvicube.cube.objecttiles import read_tile_manifests
    from ndvicube.cube.tiles import tiles_in_order
    from ndvicube.read.missing import read_skipped, write_skipped

    version, stores = read_tile_manifests(tile_paths)
    by_name = tiles_in_order([f"{name}.zarr" for name in stores], *split)
    tiles = {tile: stores[tile.name] for tile in by_name}
    if not is_finished(version):  # (a rerun after a join killed past its last write: done)
        join_tiles_in_place(tiles, version, crs=crs)
    if skipped_out is not None:
        rows = [row for listing in skipped for row in read_skipped(listing)]
        write_skipped(list(dict.fromkeys(rows)), skipped_out)
    pointer = release(f"{check_cube_store(cube_store)}/{area}", keep=versions_kept)
    return write_manifest(out, pointer, {"tiles": sorted(stores.values())})


def join_tiles_in_place(tiles: Mapping[Tile, str], version: str, *, crs: str) -> str:
    """Finish the pending ``version`` whose tile jobs wrote their chunks in place: the area's
    metadata and coordinates, then its consolidated metadata (what marks it finished). They
    are made in memory and each PUT once: nothing in the version is listed (a listing would
    return its chunk keys), no chunk key read or copied."""
    import asyncio

    import zarr
    from zarr.core.buffer import default_buffer_prototype
    from zarr.storage import MemoryStore

    from ndvicube.cube.objectstore import FINISHED_KEY, checked, refreshing, run_requests
    from ndvicube.cube.store import as_template, crash_point, joined_dataset
    from ndvicube.cube.zarrstore import zarr_store

    dataset, encoding, _ = joined_dataset(tiles, crs)
    memory = MemoryStore()
    as_template(dataset).to_zarr(
        memory, mode="w-", compute=False, zarr_format=2, encoding=encoding, consolidated=False
    )
    zarr.consolidate_metadata(memory, zarr_format=2)
    target, buffers = zarr_store(version), default_buffer_prototype()

    async def put_all() -> None:
        keys = [k async for k in memory.list() if k != FINISHED_KEY]
        values = [await memory.get(k, buffers) for k in keys]
        await asyncio.gather(*(target.set(k, v) for k, v in zip(keys, values, strict=True)))
        crash_point("consolidate")
        await target.set(FINISHED_KEY, await memory.get(FINISHED_KEY, buffers))

    with checked(version):
        refreshing(lambda: run_requests(put_all()))
    log.info("joined %d tile(s) in place in %s: no chunk copied", len(tiles), version)
    return version

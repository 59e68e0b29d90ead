"""Which Zarr store a location is: a local directory (usable on a filesystem without links) or
a prefix of an object store (``s3://bucket/prefix``: zarr's ``ObjectStore`` over obstore,
:mod:`.objectstore`). The cube's writers and readers open every store through here, so a block
task writes its chunks to either without knowing which. And the wait for zarr's writes still in
flight after one failed (:func:`drain_zarr_writes`).
"""

from __future__ import annotations

from pathlib import Path

from zarr.storage import LocalStore

from ndvicube.cube.links import REFUSED, note_refused


class NoLinkLocalStore(LocalStore):
    """Zarr's ``LocalStore``, whose create-if-absent also works without ``link()``.

    ``LocalStore.set_if_not_exists`` (used for a group's ``.zgroup`` whenever an array is
    created in it) writes a temporary file and ``link()``s it into place, which fails with
    EPERM on a filesystem without links. Here a refused link falls back to writing the key
    when it is absent: not exclusive against a concurrent writer, but the only such key
    ndvicube writes is a group's metadata, the same bytes from every writer.
    """

    async def set_if_not_exists(self, key: str, value) -> None:
        """Write ``value`` at ``key`` unless the key exists (see the class docstring)."""
        try:
            await super().set_if_not_exists(key, value)
        except FileExistsError:
            pass
        except OSError as error:
            if error.errno not in REFUSED:
                raise
            note_refused("link()", error)
            if not await self.exists(key):
                await self.set(key, value)


def local_store(path: str | Path, *, read_only: bool = False) -> NoLinkLocalStore:
    """The Zarr store of a local directory ``path``, usable on a filesystem without links."""
    return NoLinkLocalStore(Path(path), read_only=read_only)


def zarr_store(location: str | Path, *, read_only: bool = False):
    """The Zarr store at ``location``: the local store (usable without links) for a path,
    zarr's ``ObjectStore`` over obstore for ``s3://...`` (:mod:`.objectstore`), a tile's store
    whose chunks lie in its area's version for ``s3://.../v{N}-{digest}.zarr/_tiles/...``
    (:mod:`.objecttiles`)."""
    from ndvicube.cube.objectstore import is_url, object_store
    from ndvicube.cube.objecttiles import is_tile_store, tile_store

    if is_tile_store(location):
        return tile_store(str(location), read_only=read_only)
    if is_url(location):
        return object_store(str(location), read_only=read_only)
    return local_store(location, read_only=read_only)


def open_group(location: str | Path, mode: str = "r"):
    """The Zarr (format 2) group at ``location``, local or ``s3://``."""
    import zarr

    return zarr.open_group(zarr_store(location, read_only=mode == "r"), mode=mode, zarr_format=2)


def drain_zarr_writes(timeout_s: float = 60.0) -> None:
    """Wait for the chunk writes Zarr still has in flight in this process.

    Zarr writes the chunks of one assignment concurrently on its own event loop; when one of
    them fails (a full disk), the assignment raises at once while the others go on writing.
    Without this wait they recreated chunks in a ``.partial`` store just removed (seen in
    ``tests/test_faults.py::test_disk_full_fails_and_keeps_the_previous_cube``, 2 runs of 3).
    """
    import asyncio

    from zarr.core import sync as zarr_sync

    loop = zarr_sync.loop[0]
    if loop is None or not loop.is_running():
        return

    async def others_done() -> None:
        pending = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        await asyncio.gather(*pending, return_exceptions=True)

    asyncio.run_coroutine_threadsafe(others_done(), loop).result(timeout_s)

"""An area split in tiles (``tiles: [rows, cols]``) built straight into one version of its cube
in the object store (``cube_store``), and joined there without reading or copying a chunk.

On disk the tile jobs write their own stores, which ``join_tiles`` hard-links into the area's
(:mod:`.tiles`). An object store has no links, and a server-side copy of every chunk would
double the requests (and the bytes stored until the tiles are deleted). So here every tile job
writes its chunks at their final keys: tiles are chunk-aligned, so the tile's chunk ``t.j.i``
*is* the area's chunk ``t.(j + row offset).(i + column offset)``.

* **One pending version all tile jobs agree on, without talking to each other**
  (:func:`pending_version`): ``{area}/cube/v{N}-{digest}.zarr``, ``digest`` a hash of what
  every tile job of one build shares (the area's grid, mask and chunks, and the items), ``N``
  one more than any version there made by another build (or this build's own, once the
  versions before it were pruned). Nothing else is finished while a
  tiled area's tiles are built (only its ``join_tiles`` finishes a version), so each tile job
  lists the same numbers and derives the same name.
* **A tile's store** is ``{version}/_tiles/{row offset}.{col offset}.zarr``
  (:class:`InPlaceTileStore`): the tile's own Zarr metadata and coordinates are kept under that
  prefix, its index chunks are written at their shifted keys in the version itself. It opens
  as an ordinary cube (its chunks read from where they lie). Its rule output is a small local
  manifest (:func:`write_tile_manifest`).
* **The join** (:func:`ndvicube.jobs.join_tiles.join_tiles_in_place`) writes the area's metadata
  and coordinates into the version, its consolidated metadata last (which marks it finished),
  then the pointer (:func:`.objectstore.release`): no chunk key is read, copied or listed.

* **A rerun that adds days** (:func:`previous_tile_store`) reuses the same tile of the area's
  newest finished version, as an untiled area reuses that version: the tile lies at the same
  offsets there, so its whole old time chunks are copied by CopyObject from the old version's
  keys to the same keys of the pending one (:func:`chunk_objects`), and only the new days'
  scenes are read. A version built untiled or split otherwise holds no such tile: every day
  is read again.

A build killed before its join leaves a version without ``.zmetadata`` that no pointer names:
readers never see it. Its rerun with the same inputs derives the same name and writes the same
chunks again over it (each tile's metadata prefix is removed first); one with other inputs
derives another name, and the leftover is pruned once a newer version is published.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from zarr.abc.store import ByteRequest
from zarr.core.buffer import Buffer, BufferPrototype
from zarr.storage import WrapperStore

#: Where a tile job keeps its own metadata inside the version it writes.
SIDECAR = "_tiles"
#: A tile's store URL: ``{version}/_tiles/{row offset}.{col offset}.zarr``.
TILE_STORE = re.compile(rf"(?P<version>s3://.+\.zarr)/{SIDECAR}/(?P<y>\d+)\.(?P<x>\d+)\.zarr")
#: An index chunk's key (a (time, y, x) variable): ``ndvi/3.1.2``.
CHUNK_KEY = re.compile(r"(?P<name>[^/_.][^/]*)/(?P<t>\d+)\.(?P<y>\d+)\.(?P<x>\d+)")


def build_digest(spec_params: Mapping[str, Any], items: Iterable[Any], policy: str) -> str:
    """12 hex digits of what every tile job of one build shares: the area's spec (its tile
    left out), the items' ids and times, and the missing-asset policy."""
    shared = {k: v for k, v in spec_params.items() if k != "tile"}
    ids = sorted((i.id, str(i.properties.get("datetime"))) for i in items)
    text = json.dumps([shared, ids, policy], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def pending_version(area: str, digest: str) -> str:
    """The version prefix the tile jobs of build ``digest`` write into (see the module's
    docstring): one listing request."""
    from ndvicube.cube.objectstore import version_url, versions

    found = versions(area)
    ours = [n for n, url in found.items() if url.endswith(f"-{digest}.zarr")]
    others = [n for n in found if n not in ours]
    number = max(others, default=0) + 1
    if ours and max(ours) > number:  # this build's, once older versions were pruned
        number = max(ours)
    return f"{version_url(area, number).removesuffix('.zarr')}-{digest}.zarr"


def tile_store_url(version: str, offsets: tuple[int, int]) -> str:
    """The URL of the tile at chunk ``offsets`` (row, column) in ``version``."""
    return f"{version}/{SIDECAR}/{offsets[0]}.{offsets[1]}.zarr"


def is_tile_store(location: object) -> bool:
    """Whether ``location`` is a tile's store inside a pending version."""
    return isinstance(location, str) and TILE_STORE.fullmatch(location) is not None


def tile_store(location: str, *, read_only: bool = False) -> InPlaceTileStore:
    """Zarr's store of the tile at ``location`` (:class:`InPlaceTileStore`)."""
    from ndvicube.cube.objectstore import object_store

    match = TILE_STORE.fullmatch(location)
    if match is None:
        raise ValueError(f"{location!r} is not a tile's store in a version")
    prefix = location.removeprefix(match["version"]).strip("/")
    offsets = (int(match["y"]), int(match["x"]))
    return InPlaceTileStore(object_store(match["version"], read_only=read_only), prefix, offsets)


class InPlaceTileStore(WrapperStore):
    """A tile's cube store whose index chunks lie at their place in the area's version.

    Keys of (time, y, x) chunks (``ndvi/t.j.i``) are shifted by the tile's chunk offsets and
    kept at the version's root, where the joined area's array finds them; every other key (the
    tile's metadata, coordinates, ``scenes``) is kept under the tile's own prefix. Listing
    sees that prefix only: what zarr lists is metadata, never chunks.
    """

    def __init__(self, store, prefix: str, offsets: tuple[int, int]) -> None:
        super().__init__(store)
        self.prefix, self.offsets = prefix, offsets

    def _with_store(self, store) -> InPlaceTileStore:
        return type(self)(store, self.prefix, self.offsets)

    def placed(self, key: str) -> str:
        """The version's key of the tile's ``key``."""
        chunk = CHUNK_KEY.fullmatch(key)
        if chunk is None:
            return f"{self.prefix}/{key}"
        y, x = int(chunk["y"]) + self.offsets[0], int(chunk["x"]) + self.offsets[1]
        return f"{chunk['name']}/{chunk['t']}.{y}.{x}"

    def _tile_key(self, key: str) -> str:
        return key.removeprefix(f"{self.prefix}/")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, InPlaceTileStore) and (other.prefix, other._store) == (
            self.prefix,
            self._store,
        )

    async def get(
        self, key: str, prototype: BufferPrototype, byte_range: ByteRequest | None = None
    ) -> Buffer | None:
        return await self._store.get(self.placed(key), prototype, byte_range)

    async def get_partial_values(
        self, prototype: BufferPrototype, key_ranges: Iterable[tuple[str, ByteRequest | None]]
    ) -> list[Buffer | None]:
        placed = [(self.placed(k), r) for k, r in key_ranges]
        return await self._store.get_partial_values(prototype, placed)

    async def exists(self, key: str) -> bool:
        return await self._store.exists(self.placed(key))

    async def set(self, key: str, value: Buffer) -> None:
        await self._store.set(self.placed(key), value)

    async def set_if_not_exists(self, key: str, value: Buffer) -> None:
        await self._store.set_if_not_exists(self.placed(key), value)

    async def delete(self, key: str) -> None:
        await self._store.delete(self.placed(key))

    async def is_empty(self, prefix: str) -> bool:
        return await self._store.is_empty(f"{self.prefix}/{prefix}".rstrip("/"))

    async def delete_dir(self, prefix: str) -> None:
        await self._store.delete_dir(f"{self.prefix}/{prefix}".rstrip("/"))

    async def list(self) -> AsyncIterator[str]:  # type: ignore[override]
        async for key in self._store.list_prefix(f"{self.prefix}/"):
            yield self._tile_key(key)

    async def list_prefix(self, prefix: str) -> AsyncIterator[str]:  # type: ignore[override]
        async for key in self._store.list_prefix(f"{self.prefix}/{prefix}"):
            yield self._tile_key(key)

    async def list_dir(self, prefix: str) -> AsyncIterator[str]:  # type: ignore[override]
        async for key in self._store.list_dir(f"{self.prefix}/{prefix}".rstrip("/")):
            yield key


def previous_tile_store(location: str) -> str | None:
    """The same tile's store in its area's newest finished version, which a rerun of the tile
    job copies its old days from (whole time chunks by CopyObject, at the same keys: the tile
    lies at the same offsets); None when there is none, or that version was not built with
    this tile (untiled, or split otherwise: then every day is read). One listing and a HEAD
    or two."""
    from ndvicube.cube.objectstore import is_finished, newest_finished

    match = TILE_STORE.fullmatch(location)
    if match is None:
        raise ValueError(f"{location!r} is not a tile's store in a version")
    version = match["version"]
    newest = newest_finished(version.rsplit("/cube/", 1)[0])
    if newest is None or newest == version:
        return None
    old = f"{newest}{location.removeprefix(version)}"
    return old if is_finished(old) else None


def chunk_objects(location: str, keys: Iterable[str]) -> tuple[str, list[str]]:
    """The prefix the chunks ``keys`` (``ndvi/t.j.i``) of the store at ``location`` lie under,
    and their keys there: a tile's store's chunks lie in its version at their shifted keys
    (:meth:`InPlaceTileStore.placed`), any other store's under itself."""
    match = TILE_STORE.fullmatch(location)
    if match is None:
        return location, list(keys)
    store = tile_store(location, read_only=True)
    return match["version"], [store.placed(k) for k in keys]


def write_tile_manifest(path: str | Path, store: str, tile: str, digest: str) -> Path:
    """A tile job's rule output with ``cube_store``: its store's URL in the pending version
    (no credential), written beside and renamed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    manifest = {"store": store, "tile": tile, "build": digest}
    partial.write_text(json.dumps(manifest, indent=1) + "\n")
    os.replace(partial, path)
    return path


def read_tile_manifests(paths: Sequence[str | Path]) -> tuple[str, dict[str, str]]:
    """The version the tile manifests ``paths`` were written into and each tile's store by
    name; a :class:`ValueError` when they name different builds (rebuild them together)."""
    manifests = [json.loads(Path(p).read_text()) for p in paths]
    versions = {TILE_STORE.fullmatch(m["store"])["version"] for m in manifests}  # type: ignore[index]
    if len(versions) != 1:
        raise ValueError(
            f"the tile manifests {[str(p) for p in paths]} name different builds "
            f"({sorted(versions)}): their tiles were built from different items or settings; "
            "rebuild them together (snakemake --forcerun cube_tile)"
        )
    return versions.pop(), {m["tile"]: m["store"] for m in manifests}

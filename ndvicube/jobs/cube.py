"""Rules ``cube`` and ``cube_tile``: the masked index cube of the stored items, as Zarr."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ndvicube.compute import Compute
from ndvicube.errors import ConfigError

if TYPE_CHECKING:
    from ndvicube.cube.spec import CubeSpec


def build_cube(
    spec: CubeSpec,
    *,
    items_path: str | Path,
    out: str | Path,
    compute: Compute | None = None,
    work: str | Path | None = None,
    skipped_out: str | Path | None = None,
    area: str = "",
    on_missing_asset: str = "fail",
    config: Mapping[str, Any] | None = None,
    profile: str = "earth-search",
    published: str | Path | None = None,
    versions_kept: int = 2,
    fields: str | Path | None = None,
    field_points: Sequence[tuple[float, float]] | None = None,
    reuse_from: str | Path | None = None,
    copy_output: bool = False,
    fit_grid: bool = False,
    cube_store: str | None = None,
) -> Path:
    """Write the cube ``spec`` describes from the items at ``items_path``; return ``out``.

    Days the store already holds with the same items and grid are copied, not read
    (:mod:`ndvicube.cube.build`). The store is ``out``, or with ``work`` the store kept there
    between runs, published as ``out`` by hard links (so Snakemake never deletes the store the
    next run reuses). With ``published`` (``results/{area}/ndvi.zarr``, what readers open) it
    is also published as a read-only version that link then names, the ``versions_kept``
    newest kept (:mod:`ndvicube.cube.versions`). A scene whose assets are unusable or
    unreadable stops the job naming it, or with ``on_missing_asset="skip"`` is left out and
    listed in ``skipped_out`` (:mod:`ndvicube.read.missing`). Under the
    ``planetary-computer`` ``profile`` hrefs are signed in memory only. ``compute`` says how
    (default: threads in this process, the range reader); ``config`` is recorded in the
    store's provenance. A field set (``field_points`` given: its points' lon, lat, and
    ``fields``, the ``fields`` job's accepted polygons) gets a sparse cube of the chunks they
    touch (:func:`ndvicube.fields.chunks.sparse_spec`). A field set's tile job copies from
    ``reuse_from`` (its area's published cube) when that holds more than its own store: after
    fields are added, the even shares move chunks between tiles, and none is read again.
    With ``copy_output`` (Snakemake's output cache in use: it moves ``out`` into the cache and
    makes its files writable by all) ``out`` is a copy of the store, not hard links of it.
    With ``fit_grid`` (the workflow's field sets) a field set's grid is the box of its accepted
    fields and points, not ``spec.bbox``: a field rejected after the search does not widen it.
    With ``cube_store`` (``s3://bucket/prefix``) the cube is written by the block tasks
    straight into ``{cube_store}/{area}/cube/v{N}.zarr``, published by the pointer
    ``{cube_store}/{area}/ndvi.json`` and ``out`` is the small manifest naming that version
    (:mod:`ndvicube.cube.objectstore`); ``work``, ``published`` and ``copy_output`` then do not
    apply.
    """
    from ndvicube.cube.build import CubeBuild
    from ndvicube.cube.indices import resolve_indices
    from ndvicube.cube.links import copies_reported
    from ndvicube.cube.store import publish
    from ndvicube.cube.versions import release
    from ndvicube.logs import redact_urls_in_logs
    from ndvicube.read.missing import check_policy, usable_items, write_skipped
    from ndvicube.search.profiles import signed
    from ndvicube.search.stac import read_items

    check_policy(on_missing_asset)
    spec = dataclasses.replace(spec, indices=resolve_indices(spec.indices))  # as catalogued
    field_set_tile = field_points is not None and spec.tile is not None
    if field_points is not None:
        from ndvicube.fields.chunks import sparse_spec

        spec = sparse_spec(spec, fields, field_points, fit_grid=fit_grid)
    redact_urls_in_logs()  # GDAL and odc-stac quote asset URLs, tokens included
    items, skipped = usable_items(read_items(items_path), spec.assets, on_missing_asset, area)
    items = signed(items, profile)  # in memory only: provenance and logs never see a token
    if cube_store is not None:
        return _build_in_object_store(
            spec, items, skipped, cube_store, area=area, out=out, compute=compute,
            policy=on_missing_asset, config=config, skipped_out=skipped_out, keep=versions_kept,
            field_set_tile=field_set_tile,
        )  # fmt: skip
    store = Path(work) if work is not None else Path(out)
    store.parent.mkdir(parents=True, exist_ok=True)
    reuse = Path(reuse_from) if reuse_from is not None and Path(reuse_from).exists() else None
    with copies_reported(store.parent):  # where the filesystem has no links (vfat, exFAT)
        CubeBuild(spec, store, compute or Compute(), config or {}, reuse).write_skipping(
            items, skipped, on_missing_asset, area
        )
        if skipped_out is not None:
            write_skipped(skipped, skipped_out)
        if work is not None:
            publish(store, out, copy=copy_output)
        if published is not None:
            release(store, published, keep=versions_kept)
    return Path(out)


def _build_in_object_store(
    spec: CubeSpec,
    items: list,
    skipped: list,
    cube_store: str,
    *,
    area: str,
    out: str | Path,
    compute: Compute | None,
    policy: str,
    config: Mapping[str, Any] | None,
    skipped_out: str | Path | None,
    keep: int,
    field_set_tile: bool = False,
) -> Path:
    """:func:`build_cube` with ``cube_store``: a new version in the bucket (days the newest
    finished one holds are copied there), the pointer moved to it, older versions pruned, and
    the manifest ``out`` written last (what tells Snakemake the job is done)."""
    from ndvicube.cube.build import CubeBuild
    from ndvicube.cube.objectstore import check_cube_store, release, write_manifest
    from ndvicube.read.missing import write_skipped

    if not area:
        raise ConfigError(
            f"cube_store: {cube_store!r} holds areas' cubes under their names: give the area"
        )
    root = f"{check_cube_store(cube_store)}/{area}"
    if field_set_tile:
        raise ConfigError(
            f"cube_store: {cube_store!r} cannot hold the cube of field set {area!r} split in "
            "tiles (its tiles are shares of its chunks, joined by hard links on the local "
            "disk). Remove `tiles` from it, or remove cube_store."
        )
    if spec.tile is not None:
        return _build_tile_in_place(
            spec, items, skipped, root, area=area, out=out, compute=compute, policy=policy,
            config=config, skipped_out=skipped_out,
        )  # fmt: skip
    CubeBuild(spec, root, compute or Compute(), config or {}).write_skipping(
        items, skipped, policy, area
    )
    if skipped_out is not None:
        write_skipped(skipped, skipped_out)
    pointer = release(root, keep=keep)
    return write_manifest(out, pointer, spec.to_params())


def _build_tile_in_place(
    spec: CubeSpec,
    items: list,
    skipped: list,
    root: str,
    *,
    area: str,
    out: str | Path,
    compute: Compute | None,
    policy: str,
    config: Mapping[str, Any] | None,
    skipped_out: str | Path | None,
) -> Path:
    """A tile job with ``cube_store``: its chunks written at their place in the area's pending
    version, which every tile job of the build names alike (:mod:`ndvicube.cube.objecttiles`);
    ``out`` the tile's manifest. Days the same tile of the area's newest finished version
    holds are copied from there, not read
    (:func:`ndvicube.cube.objecttiles.previous_tile_store`). Nothing is published:
    ``join_tiles`` finishes the version.
    When that version is finished already (the same build, joined), nothing is written."""
    from ndvicube.cube.build import CubeBuild
    from ndvicube.cube.load import area_geobox
    from ndvicube.cube.objectstore import is_finished
    from ndvicube.cube.objecttiles import (
        build_digest,
        pending_version,
        tile_store_url,
        write_tile_manifest,
    )
    from ndvicube.cube.tiles import chunk_offsets
    from ndvicube.read.missing import write_skipped

    assert spec.tile is not None
    digest = build_digest(spec.to_params(), items, policy)
    version = pending_version(root, digest)
    offsets = chunk_offsets(spec.tile, area_geobox(spec).shape.yx, spec.cube.spatial_chunk)
    store = tile_store_url(version, offsets)
    if not is_finished(version):
        CubeBuild(spec, store, compute or Compute(), config or {}).write_skipping(
            items, skipped, policy, area
        )
    if skipped_out is not None:
        write_skipped(skipped, skipped_out)
    return write_tile_manifest(out, store, spec.tile.name, digest)

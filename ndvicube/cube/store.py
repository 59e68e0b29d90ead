"""Write and open the index cube as a georeferenced, chunked Zarr store.

Layout (Zarr format 2, consolidated metadata): one variable per index (``ndvi``, ``evi``...;
(time, y, x) float32 with NaN fill), 1-D ``time``/``y``/``x`` coordinates (pixel centres), and a
``spatial_ref`` variable written by rioxarray. Every index array also carries GDAL's ``_CRS``
attribute, so both ``xarray.open_zarr`` + rioxarray and GDAL's Zarr driver
(``ZARR:"ndvi.zarr":/ndvi`` through rasterio) see the CRS and the geotransform. Format 2
because GDAL 3.10 (rasterio's wheels) reads it fully; zarr-python 3 reads and writes it too.

The cube job's store is written by the block engine (:mod:`ndvicube.cube.engine`), other
stores (composites) in blocks of ``time_chunk`` steps, each one region write that Dask computes
in parallel; either way into ``<path>.partial``, renamed into place only when every block is
written, so an interrupted job never leaves a store that looks complete.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # xarray is imported where a store is written or read through it
    import xarray as xr
    from pyproj import CRS

    from ndvicube.cube.tiles import Tile

# (local_store is also imported from here, as before it had its own module.)
from ndvicube.cube.zarrstore import drain_zarr_writes, local_store, open_group, zarr_store
from ndvicube.errors import StorageFullError, is_disk_full

log = logging.getLogger(__name__)

#: Store attribute: the item ids merged into each solar day (``{"2023-01-05": [ids]}``).
DAYS_ATTR = "ndvicube:days"
#: Store attribute: the grid and mask that shaped the pixels (:func:`.update.grid_signature`).
GRID_ATTR = "ndvicube:grid"
#: Store attribute of a sparse cube (a field set): the [row, column] chunks present, sorted; the
#: others are absent from the store and read as NaN. Absent from a dense cube.
CHUNKS_ATTR = "ndvicube:chunks"


def write_cube(
    cube: xr.Dataset | xr.DataArray,
    path: str | Path,
    *,
    crs: str,
    attrs: Mapping[str, Any],
    time_chunk: int = 8,
    spatial_chunk: int = 256,
    final_attrs: Callable[[], Mapping[str, Any]] | None = None,
    steps: tuple[str, str] = ("cube", "solar days"),
) -> Path:
    """Compute ``cube`` block by block into a Zarr store at ``path``; return the path.

    ``cube`` holds one (time, y, x) variable per index (a lone array is stored under its
    name). ``attrs`` (JSON-serialisable provenance) are stored on the dataset, updated by
    ``final_attrs()`` once every block is written (what only the reads could tell). Progress
    is logged after each block as steps done / total (``steps``: what is written and its time
    steps, e.g. a composite's periods).
    """
    dataset = as_dataset(cube)

    def fill(partial: Path, written: xr.Dataset) -> None:
        _write_blocks(written, partial, time_chunk, steps)

    return write_store(
        dataset,
        path,
        crs=crs,
        attrs=attrs,
        time_chunk=time_chunk,
        spatial_chunk=spatial_chunk,
        fill=fill,
        final_attrs=final_attrs,
    )


def write_store(
    dataset: xr.Dataset,
    path: str | Path,
    *,
    crs: str,
    attrs: Mapping[str, Any],
    time_chunk: int,
    spatial_chunk: int,
    fill: Callable[[Path, xr.Dataset], None],
    final_attrs: Callable[[], Mapping[str, Any]] | None = None,
) -> Path:
    """A cube store at ``path``: its metadata and coordinates from ``dataset`` (lazy index
    variables: nothing of them is computed here), its chunks written by ``fill(partial,
    dataset)``, then ``final_attrs()``, consolidated and swapped into place.

    Everything is written into ``<path>.partial``, removed if anything fails, so ``path`` is
    either the previous store or the finished new one (:func:`_swap_into_place`).
    """
    dataset = _georeferenced(dataset, crs, attrs)
    chunks, encoding = _chunking(time_chunk, spatial_chunk, list(dataset.data_vars))
    dataset = dataset.chunk(chunks)
    encoding = {name: e for name, e in encoding.items() if name in dataset.variables}

    def metadata(store: Any, mode: str) -> None:  # (an object store's .zmetadata: written last)
        as_template(dataset).to_zarr(
            store, mode=mode, compute=False, zarr_format=2, encoding=encoding,
            **({"consolidated": False} if mode == "w-" else {}),
        )  # fmt: skip

    return write_with(metadata, path, lambda location: fill(location, dataset), final_attrs)


def write_with(
    metadata: Callable[[Any, str], None],
    path: str | Path,
    fill: Callable[[Path | str], None],
    final_attrs: Callable[[], Mapping[str, Any]] | None,
) -> Path | str:
    """A store at ``path``: ``metadata(store, mode)``, then ``fill(location)``, then
    ``final_attrs()``, consolidated; locally into ``<path>.partial`` swapped into place."""
    from ndvicube.cube.objectstore import is_url

    if is_url(path):  # a new version's prefix in an object store: written once, in place
        return _write_version(str(path), metadata, fill, final_attrs)
    path = Path(path)
    partial = path.with_name(path.name + ".partial")
    remove(partial)
    with _partial_removed_on_failure(partial, path):
        metadata(local_store(partial), "w")
        fill(partial)
        if final_attrs is not None:
            _update_attrs(partial, final_attrs())
        _consolidate(partial)
    _swap_into_place(partial, path)
    return path


def _write_version(
    url: str,
    metadata: Callable[[Any, str], None],
    fill: Callable[[Path | str], None],
    final_attrs: Callable[[], Mapping[str, Any]] | None,
) -> str:
    """:func:`write_store` into a version's prefix of an object store (``s3://...``): nothing
    there renames, so the version is written where it stays, its consolidated metadata last
    (what marks it finished: :mod:`.objectstore`); no reader opens it before a pointer names it.
    A failure leaves it unfinished, and the next build writes the next version."""
    from ndvicube.cube.objectstore import checked

    with checked(url):
        metadata(zarr_store(url), "w-")
        fill(url)
        if final_attrs is not None:
            _update_attrs(url, final_attrs())
        crash_point("consolidate")
        _consolidate(url)
    return url


def as_template(dataset: xr.Dataset) -> xr.Dataset:
    """``dataset`` with each lazy variable one Dask chunk of nothing: what ``to_zarr`` needs to
    write the metadata. Writing it with the variables' real chunks made a Dask task per Zarr
    chunk, never run but built: for a field set's grid of 3 million chunks, gigabytes and
    minutes before the first read (0.4 GB and 5 s at 44,000 chunks)."""
    import dask.array as da

    template = dataset.copy()
    for name, variable in dataset.data_vars.items():
        if variable.chunks is not None:
            empty = da.empty(variable.shape, chunks=variable.shape, dtype=variable.dtype)
            template[name] = variable.copy(data=empty)
    return template


def _update_attrs(store: str | Path, attrs: Mapping[str, Any]) -> None:
    """Overwrite some dataset attributes of a store not yet consolidated (JSON, as written)."""
    group = open_group(store, mode="r+")
    group.attrs.update({k: json.dumps(v, sort_keys=True) for k, v in attrs.items()})


@contextlib.contextmanager
def _partial_removed_on_failure(partial: Path, path: Path) -> Iterator[None]:
    """Delete a half-written ``.partial`` store when writing fails (the old store stays).

    A full disk becomes a :class:`StorageFullError` saying so; the space the partial store
    held is given back first.
    """
    try:
        yield
    except BaseException as error:
        from ndvicube.compute import drain_running_tasks

        drain_running_tasks()  # a task still running could write into the partial store
        drain_zarr_writes()  # and so could the other chunks of a task's failed write
        remove(partial)
        if is_disk_full(error):
            raise StorageFullError(
                f"No space left on the device (or quota) while writing the cube {path}. The "
                "half-written copy was removed and the previous cube, if any, is unchanged. "
                f"Free space on {path.parent} (df -h {path.parent}) or run from a working "
                "directory on a larger disk, then run again."
            ) from error
        raise


def join_tiles(tiles: Mapping[Tile, Path], path: str | Path, *, crs: str) -> Path:
    """Assemble the area store at ``path`` from its chunk-aligned tile stores, copying no pixel.

    The area store's metadata and coordinates are written from the tiles' lazily opened arrays
    (nothing is computed); its chunk files are hard links to the tiles' (:mod:`.tiles`).
    Attributes are the first tile's, with the grid signature of the whole area.
    """
    from ndvicube.cube.tiles import chunk_offsets, link_chunks

    path = Path(path)
    partial = path.with_name(path.name + ".partial")
    remove(partial)
    dataset, encoding, grid = joined_dataset(tiles, crs)
    cube = dataset
    shape = (cube.sizes["y"], cube.sizes["x"])
    with _partial_removed_on_failure(partial, path):
        dataset.to_zarr(
            local_store(partial), mode="w", compute=False, zarr_format=2, encoding=encoding
        )
        linked = sum(
            link_chunks(
                store, partial, chunk_offsets(tile, shape, grid["cube"]["spatial_chunk"]), name
            )
            for tile, store in tiles.items()
            for name in cube.data_vars
        )
        _consolidate(partial)
    log.info("joined %d tile(s): %d chunk file(s) linked, none copied", len(tiles), linked)
    _swap_into_place(partial, path)
    return path


def joined_dataset(
    tiles: Mapping[Tile, Path | str], crs: str
) -> tuple[xr.Dataset, dict[str, Any], dict[str, Any]]:
    """The area's dataset from its tiles' stores, lazily (coordinates loaded: they are written
    with the metadata), its encoding and grid signature: what a join writes besides chunks."""
    import xarray as xr

    cubes = {tile: open_cube(store).drop_vars("spatial_ref") for tile, store in tiles.items()}
    attrs = _same_days_attrs(tiles)
    grid = attrs[GRID_ATTR] | {"tile": None}
    attrs[GRID_ATTR] = grid
    rows = sorted({t.row for t in tiles})
    cube = xr.concat(
        [xr.concat([c for t, c in cubes.items() if t.row == r], dim="x") for r in rows], dim="y"
    )
    drop_encodings(cube)  # so every variable is encoded as a freshly built cube's
    chunks, encoding = _chunking(**grid["cube"], variables=list(cube.data_vars))
    dataset = _georeferenced(cube, crs, attrs).chunk(chunks)
    # Coordinates are written now (compute=False defers only dask arrays): load them.
    dataset = dataset.assign_coords({name: c.load() for name, c in dataset.coords.items()})
    return dataset, encoding, grid


def join_sparse_tiles(tiles: Mapping[Tile, Path], path: str | Path, *, crs: str) -> Path:
    """Assemble a field set's cube from its tile stores, copying no pixel.

    A field set's tiles each hold a share of its chunks on the whole grid
    (:func:`ndvicube.fields.chunks.split_chunks`), so every chunk file is linked where it lies
    and the present chunks are the union of the tiles'.
    """
    from ndvicube.cube.tiles import link_chunks

    path = Path(path)
    partial = path.with_name(path.name + ".partial")
    remove(partial)
    attrs = _same_days_attrs(tiles)
    shares = [present_chunks(read_attrs(store)) or frozenset() for store in tiles.values()]
    attrs[CHUNKS_ATTR] = sorted([r, c] for share in shares for r, c in share)
    cube = open_cube(next(iter(tiles.values()))).drop_vars("spatial_ref")
    drop_encodings(cube)
    chunks, encoding = _chunking(**attrs[GRID_ATTR]["cube"], variables=list(cube.data_vars))
    dataset = _georeferenced(cube, crs, attrs).chunk(chunks)
    dataset = dataset.assign_coords({name: c.load() for name, c in dataset.coords.items()})
    with _partial_removed_on_failure(partial, path):
        dataset.to_zarr(
            local_store(partial), mode="w", compute=False, zarr_format=2, encoding=encoding
        )
        linked = sum(
            link_chunks(store, partial, (0, 0), name)
            for store in tiles.values()
            for name in cube.data_vars
        )
        _consolidate(partial)
    log.info(
        "joined %d tile(s) of a field set: %d chunk(s), %d chunk file(s) linked, none copied",
        len(tiles),
        len(attrs[CHUNKS_ATTR]),
        linked,
    )
    _swap_into_place(partial, path)
    return path


def _chunking(
    time_chunk: int, spatial_chunk: int, variables: list[str]
) -> tuple[dict[str, int], dict[str, dict]]:
    """Dask chunks and Zarr encoding of a cube store (built or joined: the same bytes)."""
    chunks = {"time": time_chunk, "y": spatial_chunk, "x": spatial_chunk}
    encoding = {name: {"chunks": (time_chunk, spatial_chunk, spatial_chunk)} for name in variables}
    encoding["scenes"] = {"chunks": (time_chunk,)}
    return chunks, encoding


def as_dataset(cube: xr.Dataset | xr.DataArray) -> xr.Dataset:
    """A cube as a Dataset of index variables (a lone DataArray under its name)."""
    import xarray as xr

    return cube if isinstance(cube, xr.Dataset) else cube.to_dataset(name=cube.name or "ndvi")


def drop_encodings(cube: xr.Dataset) -> None:
    """Forget the encodings a cube's variables were read with (a rewrite chooses its own)."""
    for variable in cube.variables.values():
        variable.encoding = {}


def _same_days_attrs(tiles: Mapping[Tile, Path]) -> dict[str, Any]:
    """The first tile's attributes, once every tile is seen to hold the same days and items."""

    attrs = {tile: read_attrs(store) for tile, store in tiles.items()}
    days = {json.dumps(a.get(DAYS_ATTR), sort_keys=True) for a in attrs.values()}
    if len(days) > 1:
        raise ValueError(
            f"the tiles {sorted(t.name for t in tiles)} were built from different items; "
            "rebuild them together"
        )
    return next(iter(attrs.values()))


def open_cube(path: str | Path, *, dask: bool = True) -> xr.Dataset:
    """The index variables of a cube store, lazily, with their CRS in ``spatial_ref``.

    Variables come in the order the config listed the indices (Zarr lists them sorted), so the
    series' columns do too. With ``dask=False`` the variables are xarray's lazy arrays over
    Zarr, not Dask arrays: a job that reads a few pixels (the point series) then does not import
    Dask (0.9 s) or build a graph. ``.rio`` needs ``import rioxarray`` by the caller (1.2 s,
    so only the jobs that use it pay it); :func:`cube_crs` reads the CRS without it. A symbolic
    link (``results/{area}/ndvi.zarr``) is resolved first: the handle reads the version it
    named when opened, whatever a rerun publishes meanwhile (:mod:`.versions`). So is an
    object store's cube (``cube_store``): ``path`` may be its area's URL
    (``s3://bucket/prefix/{area}``, whose pointer is read once), a version's URL, or the cube
    job's manifest (``results/{area}/cube/workflow.json``) (:func:`.objectstore.resolve`).
    """
    import xarray as xr

    from ndvicube.cube.indices import column
    from ndvicube.cube.objectstore import resolve

    chunks = {} if dask else None
    store = zarr_store(resolve(path), read_only=True)
    dataset = xr.open_zarr(store, consolidated=True, decode_coords="all", chunks=chunks)
    grid = _maybe_json(dataset.attrs.get("ndvicube:grid", "{}"))
    listed = [column(name) for name in grid.get("indices", [])]
    ordered = [n for n in listed if n in dataset.data_vars]
    return dataset[ordered + [n for n in dataset.data_vars if n not in ordered]]


def cube_crs(cube: xr.Dataset | xr.DataArray) -> CRS:
    """The CRS of a cube, from its CF grid mapping (``spatial_ref``'s ``crs_wkt``, which
    rioxarray and GDAL write), or from rioxarray when the cube has none."""
    from pyproj import CRS

    ref = cube.coords.get("spatial_ref")
    if ref is not None and "crs_wkt" in ref.attrs:
        return CRS.from_wkt(ref.attrs["crs_wkt"])
    import rioxarray  # noqa: F401  (registers the .rio accessor)

    return CRS.from_user_input(cube.rio.crs)


def read_attrs(path: str | Path) -> dict[str, Any]:
    """Dataset attributes of a cube store (a link resolved first), JSON values decoded."""
    import xarray as xr

    from ndvicube.cube.objectstore import resolve

    return cube_attrs(xr.open_zarr(zarr_store(resolve(path), read_only=True), consolidated=True))


def present_chunks(attrs: Mapping[str, Any]) -> frozenset[tuple[int, int]] | None:
    """The chunks a sparse cube holds (decoded attributes), or None for a dense cube."""
    chunks = attrs.get(CHUNKS_ATTR)
    return None if chunks is None else frozenset((int(r), int(c)) for r, c in chunks)


def stored_as_read(variable: xr.DataArray) -> bool:
    """Whether the store holds ``variable``'s values as they are read: (time, y, x) floats
    with no CF scaling to decode (what ndvicube writes), so a job may read its chunks with
    Zarr directly (the point and polygon series do)."""
    scaled = {"scale_factor", "add_offset"} & set(variable.encoding)
    return variable.dims == ("time", "y", "x") and variable.dtype.kind == "f" and not scaled


def cube_attrs(cube: xr.Dataset) -> dict[str, Any]:
    """An opened cube's attributes, JSON values decoded (no second open of its store)."""
    return {k: _maybe_json(v) for k, v in cube.attrs.items()}


def _georeferenced(cube: xr.Dataset, crs: str, attrs: Mapping[str, Any]) -> xr.Dataset:
    """Attach CRS (rioxarray's spatial_ref + GDAL's _CRS) and provenance attributes."""
    import rioxarray  # noqa: F401

    dataset = cube.drop_vars("spatial_ref", errors="ignore").rio.write_crs(crs)
    dataset = dataset.rio.write_transform(dataset.rio.transform(recalc=True))
    wkt = dataset.rio.crs.to_wkt()
    for name, variable in dataset.data_vars.items():
        # Replace odc-stac's attributes (its "nodata: 0" is the raw bands', wrong for an index).
        variable.attrs = {
            "long_name": variable.attrs.get("long_name", name.upper()),
            "units": "1",
            "grid_mapping": "spatial_ref",
            "_CRS": {"wkt": wkt},
        }
        variable.encoding.pop("grid_mapping", None)
    dataset.attrs = {k: json.dumps(v, sort_keys=True) for k, v in attrs.items()}
    dataset["time"].encoding.update(units="days since 1970-01-01", dtype="int64")
    return dataset


def _write_blocks(
    dataset: xr.Dataset,
    store: Path,
    time_chunk: int,
    steps: tuple[str, str] = ("cube", "solar days"),
) -> None:
    """Region-write ``time_chunk`` steps at a time, logging steps (and scenes) done / total."""
    total = dataset.sizes["time"]
    scenes = dataset["scenes"].values if "scenes" in dataset.coords else None
    for start in range(0, total, time_chunk):
        stop = min(start + time_chunk, total)
        block = dataset[list(dataset.data_vars)].isel(time=slice(start, stop))
        block.drop_vars(["x", "y", "spatial_ref"], errors="ignore").to_zarr(
            local_store(store), region={"time": slice(start, stop)}, zarr_format=2
        )
        log_progress(steps, stop, total, scenes)


def log_progress(
    steps: tuple[str, str], stop: int, total: int, scenes=None, *, before: str = "", after: str = ""
) -> None:
    """``cube progress: 16/60 solar days (20/74 scenes) written``: the log's progress line.

    ``scenes``: per step (the first ``stop`` written) or (done, total); ``before``/``after``:
    what :mod:`ndvicube.cube.progress` adds (blocks; elapsed and time left). The record is
    marked ``progress``: :func:`ndvicube.logs.job_logging` shows it on the terminal too.
    """
    if scenes is not None and not isinstance(scenes, tuple):
        scenes = (scenes[:stop].sum(), scenes.sum())
    done = "" if scenes is None else f" ({scenes[0]}/{scenes[1]} scenes)"
    line = f"{before}{stop}/{total} {steps[1]}{done} written{after}"
    log.info("%s progress: %s", steps[0], line, extra={"progress": True})


def _swap_into_place(partial: Path, path: Path) -> None:
    """Replace ``path`` by the finished ``partial`` store; a kill at any point loses neither.

    The old store is first renamed to ``<path>.old``; :func:`recover_interrupted_swap` puts it
    back if the process died before the new one was in place.
    """
    old = path.with_name(path.name + ".old")
    remove(old)
    if path.exists():
        os.replace(path, old)
    crash_point("swap")
    os.replace(partial, path)
    remove(old)


def working_store(out: str | Path) -> Path:
    """Where the cube job keeps the store behind its output ``out``: ``<folder>/.work/<name>``.

    Not a Snakemake output, so Snakemake neither deletes it before the job (as it does any
    output) nor copies it to ``.snakemake/backups`` (as ``update()`` did, which a kill or a
    full disk left wedged); the job alone updates it, atomically (:func:`write_cube`).
    """
    out = Path(out)
    return out.parent / ".work" / out.name


def publish(
    store: str | Path, out: str | Path, *, read_only: bool = False, copy: bool = False
) -> Path:
    """Make ``out`` a hard-linked copy of the finished ``store``: no pixel is copied.

    The cube job keeps its store outside Snakemake's outputs (``results/{area}/.work/``), so
    Snakemake never deletes or backs it up, and publishes it as the rule's output (and as a
    version, :mod:`.versions`). The links go to ``<out>.linking`` first and are renamed into
    place, so ``out`` is never half there; on a failure (a full disk) the links are removed and
    ``store`` is untouched. With ``read_only`` the files lose their write bits before the
    rename: they are the store's own files (hard links), which nothing writes in place.
    With ``copy``, or when ``store`` is from Snakemake's output cache (whose files are writable
    by all), ``out`` is a true copy sharing no file with ``store``, its cost logged.
    """
    from ndvicube.cube.links import copy_tree, from_cache, link_or_copy

    store, out = Path(store), Path(out)
    linking = out.with_name(out.name + ".linking")
    remove(linking)
    try:
        if copy or from_cache(store):
            cost = copy_tree(store, linking)
            log.info("copied %s as %s (not linked): %s", store, out, cost)
        else:
            shutil.copytree(store, linking, copy_function=link_or_copy)
        if read_only:
            make_read_only(linking)
        crash_point("publish")
    except BaseException as error:
        remove(linking)
        if is_disk_full(error):
            raise StorageFullError(
                f"No space left on the device (or quota) while publishing the cube {store} as "
                f"{out}. The cube itself is complete and kept; free space on {out.parent} "
                f"(df -h {out.parent}) and run again: nothing is read again."
            ) from error
        raise
    remove(out)
    os.replace(linking, out)
    return out


def make_read_only(tree: Path) -> None:
    """Clear the write bits of every file under ``tree`` (directories stay writable, so
    ``rm -r`` still works). A file another user owns (a shared cache's) is left as it is."""
    for folder, _, files in os.walk(tree):
        for name in files:
            file = os.path.join(folder, name)
            with contextlib.suppress(PermissionError):
                os.chmod(file, os.stat(file).st_mode & ~0o222)


def crash_point(name: str) -> None:
    """Kill this job's whole process group here when ``NDVICUBE_CRASH_AT`` names ``name``.

    The kill tests' way to stop a run at an exact moment of an update (``swap``: between the
    swap's two renames; ``publish``: the links made, not yet renamed; ``release``: a new
    version made, the link readers open not yet pointed at it; ``consolidate``: an object
    store's version written, its metadata not yet; ``pointer``: that version finished, the
    pointer not yet moved) with a real SIGKILL, as a power loss would; it does nothing unless
    that variable is set.
    """
    if os.environ.get("NDVICUBE_CRASH_AT") == name:
        import signal

        os.killpg(os.getpgrp(), signal.SIGKILL)


def recover_interrupted_swap(path: str | Path) -> None:
    """After a kill between the two renames of a swap, restore the previous complete store."""
    path = Path(path)
    old = path.with_name(path.name + ".old")
    if old.exists() and not path.exists():
        os.replace(old, path)
        log.info("restored %s from an interrupted update", path)


def _consolidate(store: str | Path) -> None:
    """Write consolidated metadata last: its presence marks a store whose metadata is final."""
    import zarr

    zarr.consolidate_metadata(zarr_store(store))


def remove(path: Path) -> None:
    """Delete a store (directory) or file if it exists (a symbolic link: the link only)."""
    if path.is_symlink():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def _maybe_json(value: Any) -> Any:
    """Attributes are stored as JSON strings; decode those that are."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value

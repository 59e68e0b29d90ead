"""Published versions of an area's cube: what readers open, replaced without a gap.

Snakemake deletes a rule's output when its job starts, so the path readers open cannot be an
output. The cube job (or ``join_tiles``) therefore publishes each finished store three ways,
all hard links of the same files (no pixel copied, no extra space for the store itself):

* ``results/{area}/cube/workflow.zarr`` - the rule's output, what the later rules read;
  Snakemake removes it while a cube job runs.
* ``results/{area}/cube/v{N}.zarr`` - an immutable version: its files are read-only, and
  it stays until ``cube_versions_kept`` newer versions exist (:func:`prune`).
* ``results/{area}/ndvi.zarr`` - a symbolic link to the newest version, replaced by
  rename(2) of a new link (:func:`point`): whoever resolves it, at any moment of a rerun,
  finds the previous version or the new one, each complete.

On a filesystem without links (vfat, exFAT, some SMB mounts) the same steps copy
(:mod:`.links`): a version is a copy of the store, and where symbolic links are refused the
published path is a copy of the newest version, a real directory holding a small file
(:data:`MARKER`) that names that version, replaced by two renames (the published path is
missing between them, for microseconds; the version it names never is).

A reader that resolves the link once (:func:`pinned`; ``open_cube`` does) reads one version
for as long as it is kept. A path that goes through the link is resolved again at every file
read: xarray reads a store's metadata when it opens it and its chunks when it computes, so
such a handle kept across a rerun would read the new chunks under the old metadata.
"""

from __future__ import annotations

import filecmp
import logging
import os
import re
from pathlib import Path

from ndvicube.cube.links import MARKER, from_cache, pinned

__all__ = ["MARKER", "from_cache", "pinned", "point", "prune", "publish_cached", "release"]

log = logging.getLogger(__name__)

#: A version's folder name in the versions folder: ``v1.zarr``, ``v2.zarr``...
VERSION = re.compile(r"v(\d+)\.zarr")
#: Versions kept by default: the newest one and the one before it.
DEFAULT_KEPT = 2


def versions_dir(link: str | Path) -> Path:
    """The folder of a published path's versions: ``results/{area}/cube`` for the cube's
    ``ndvi.zarr``, ``results/{area}/composites.versions`` for ``composites.zarr``."""
    link = Path(link)
    return link.parent / ("cube" if link.name == "ndvi.zarr" else f"{link.stem}.versions")


def versions(folder: str | Path) -> dict[int, Path]:
    """The finished versions in ``folder`` by number, oldest first."""
    found = {}
    if Path(folder).is_dir():
        for entry in Path(folder).iterdir():
            match = VERSION.fullmatch(entry.name)
            if match:
                found[int(match.group(1))] = entry
    return dict(sorted(found.items()))


def release(
    store: str | Path,
    link: str | Path,
    *,
    keep: int = DEFAULT_KEPT,
    copy: bool = False,
) -> Path:
    """Publish the finished ``store`` as the newest version and point ``link`` at it.

    The version is made of read-only hard links of ``store``'s files; it is the newest one
    when that is already ``store`` (a job run again on an unchanged store, or one killed
    before the link moved), so no duplicate is made. Versions beyond the ``keep`` newest are
    deleted (never the one ``link`` names). The versions live in :func:`versions_dir`. With
    ``copy`` (or a ``store`` from Snakemake's output cache) the version is a copy: it shares
    no file with ``store``. Returns the version's path.
    """
    from ndvicube.cube.store import crash_point

    store, link = Path(store), Path(link)
    folder = versions_dir(link)
    folder.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(folder)
    version = _newest_if_same(store, folder) or _new_version(store, folder, copy=copy)
    crash_point("release")
    if pinned(link).resolve() != version.resolve():  # (a copy, without symbolic links, costs)
        point(link, version)
    prune(folder, keep=keep, current=version)
    return version


def _newest_if_same(store: Path, folder: Path) -> Path | None:
    """The newest version when it is ``store``: the same inodes or, where it had to be copied
    (no links), the same bytes and modification time of the file written last. Else None."""
    found = versions(folder)
    if not found:
        return None
    newest = found[max(found)]
    return newest if _same_file(store / ".zmetadata", newest / ".zmetadata") else None


def _same_file(a: Path, b: Path) -> bool:
    """``b`` is ``a``: a hard link of it, or a copy (``copy2`` keeps the mtime) of its bytes."""
    if not (a.is_file() and b.is_file()):
        return False
    if os.path.samefile(a, b):
        return True
    same_time = a.stat().st_mtime_ns == b.stat().st_mtime_ns
    return same_time and filecmp.cmp(a, b, shallow=False)


def _new_version(store: Path, folder: Path, *, copy: bool = False) -> Path:
    """``store`` hard-linked (or copied), read-only, as the next ``v{N}.zarr`` of ``folder``."""
    from ndvicube.cube.store import publish

    number = max(versions(folder), default=0) + 1
    version = publish(store, folder / f"v{number}.zarr", read_only=True, copy=copy)
    log.info("published %s as version %s", store, version)
    return version


def point(link: Path, version: Path) -> None:
    """Make ``link`` a relative symbolic link to ``version``, atomically.

    The new link is made beside it and renamed over it: rename(2) replaces the old link in
    one step. A real directory there (the layout before versions, where ``ndvi.zarr`` was the
    rule's output, or a copy published where symbolic links are refused) is moved aside first
    and deleted after: the only moment ``link`` is missing. Where the filesystem refuses
    symbolic links, ``link`` becomes a copy of ``version`` naming it (:data:`MARKER`).
    """
    from ndvicube.cube.links import REFUSED, note_refused
    from ndvicube.cube.store import remove

    following = link.with_name(link.name + ".next")
    if following.is_symlink():
        following.unlink()
    remove(following)
    try:
        os.symlink(os.path.relpath(version, link.parent), following)
    except OSError as error:  # EPERM (vfat), ENOSYS (exFAT over FUSE), EOPNOTSUPP (SMB)
        if error.errno not in REFUSED:
            raise
        note_refused("symlink()", error)
        _copy_naming(version, following, link.parent)
    older = link.with_name(link.name + ".before-versions")
    if link.is_dir() and not link.is_symlink():
        remove(older)
        os.replace(link, older)
    os.replace(following, link)
    remove(older)


def _copy_naming(version: Path, copy: Path, parent: Path) -> None:
    """``copy``: ``version``'s files (hard links where allowed) and a :data:`MARKER` naming it."""
    from ndvicube.cube.store import publish

    publish(version, copy, read_only=True)
    (copy / MARKER).write_text(os.path.relpath(version, parent) + "\n")


def prune(folder: Path, *, keep: int, current: Path) -> list[Path]:
    """Delete the versions of ``folder`` that have ``keep`` newer ones, except ``current``.

    A version's files are also the working store's or a newer version's only while no
    update has rewritten them, so deleting an old version gives back what only it held.
    """
    from ndvicube.cube.store import remove

    found = versions(folder)
    numbers = sorted(found)
    doomed = [found[n] for n in numbers[: max(len(numbers) - keep, 0)]]
    doomed = [v for v in doomed if v.resolve() != current.resolve()]
    for version in doomed:
        remove(version)
        log.info("removed %s (%d newer version(s) kept)", version, keep)
    return doomed


def publish_cached(
    output: str | Path, link: str | Path, *, keep: int = DEFAULT_KEPT
) -> Path | None:
    """Publish a cube Snakemake's output cache gave this working directory, where no cube job
    ran to publish it: ``link`` then names a read-only copy of it (no file shared with the
    cache). Nothing happens when ``output`` is not from the cache or ``link`` already names
    it. Returns the version made, or None.
    """
    output, link = Path(output), Path(link)
    if not (output.exists() and from_cache(output)):
        return None
    if link.exists() and _newest_if_same(output, versions_dir(link)) == pinned(link):
        return None
    version = release(output, link, keep=keep, copy=True)
    log.info("published %s, from the output cache, as %s", output, version)
    return version


def _remove_leftovers(folder: Path) -> None:
    """A version still being linked when a job was killed (``v{N}.zarr.linking``)."""
    from ndvicube.cube.store import remove

    for entry in folder.glob("v*.zarr.linking"):
        remove(entry)

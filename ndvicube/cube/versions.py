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

A reader that resolves the link once (:func:`pinned`; ``open_cube`` does) reads one version
for as long as it is kept. A path that goes through the link is resolved again at every file
read: xarray reads a store's metadata when it opens it and its chunks when it computes, so
such a handle kept across a rerun would read the new chunks under the old metadata.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

log = logging.getLogger(__name__)

#: A version's folder name in the versions folder: ``v1.zarr``, ``v2.zarr``...
VERSION = re.compile(r"v(\d+)\.zarr")
#: Versions kept by default: the newest one and the one before it.
DEFAULT_KEPT = 2


def versions_dir(link: str | Path) -> Path:
    """The folder of an area's versions: ``results/{area}/cube`` for its ``ndvi.zarr``."""
    return Path(link).parent / "cube"


def versions(folder: str | Path) -> dict[int, Path]:
    """The finished versions in ``folder`` by number, oldest first."""
    found = {}
    if Path(folder).is_dir():
        for entry in Path(folder).iterdir():
            match = VERSION.fullmatch(entry.name)
            if match:
                found[int(match.group(1))] = entry
    return dict(sorted(found.items()))


def pinned(link: str | Path) -> Path:
    """The version ``link`` names now: open this path to read one version whatever follows."""
    return Path(os.path.realpath(link))


def release(store: str | Path, link: str | Path, *, keep: int = DEFAULT_KEPT) -> Path:
    """Publish the finished ``store`` as the newest version and point ``link`` at it.

    The version is made of read-only hard links of ``store``'s files; it is the newest one
    when that is already ``store`` (a job run again on an unchanged store, or one killed
    before the link moved), so no duplicate is made. Versions beyond the ``keep`` newest are
    deleted (never the one ``link`` names). Returns the version's path.
    """
    from ndvicube.cube.store import crash_point

    store, link = Path(store), Path(link)
    folder = versions_dir(link)
    folder.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(folder)
    version = _newest_if_same(store, folder) or _new_version(store, folder)
    crash_point("release")
    point(link, version)
    prune(folder, keep=keep, current=version)
    return version


def _newest_if_same(store: Path, folder: Path) -> Path | None:
    """The newest version when its files are ``store``'s (same inodes), else None."""
    found = versions(folder)
    if not found:
        return None
    newest = found[max(found)]
    marker = ".zmetadata"  # written last: one file identifies a finished store
    same = (newest / marker).exists() and os.path.samefile(store / marker, newest / marker)
    return newest if same else None


def _new_version(store: Path, folder: Path) -> Path:
    """``store`` hard-linked, read-only, as the next ``v{N}.zarr`` of ``folder``."""
    from ndvicube.cube.store import publish

    number = max(versions(folder), default=0) + 1
    version = publish(store, folder / f"v{number}.zarr", read_only=True)
    log.info("published %s as version %s", store, version)
    return version


def point(link: Path, version: Path) -> None:
    """Make ``link`` a relative symbolic link to ``version``, atomically.

    The new link is made beside it and renamed over it: rename(2) replaces the old link in
    one step. A real directory there (the layout before versions, where ``ndvi.zarr`` was the
    rule's output) is moved aside first and deleted after: the only moment ``link`` is
    missing, once, at the first publish after an upgrade.
    """
    from ndvicube.cube.store import remove

    following = link.with_name(link.name + ".next")
    if following.is_symlink():
        following.unlink()
    remove(following)
    os.symlink(os.path.relpath(version, link.parent), following)
    older = link.with_name(link.name + ".before-versions")
    if link.is_dir() and not link.is_symlink():
        remove(older)
        os.replace(link, older)
    os.replace(following, link)
    remove(older)


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


def _remove_leftovers(folder: Path) -> None:
    """A version still being linked when a job was killed (``v{N}.zarr.linking``)."""
    from ndvicube.cube.store import remove

    for entry in folder.glob("v*.zarr.linking"):
        remove(entry)

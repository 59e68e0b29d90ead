"""Hard links where the filesystem makes them, copies where it refuses (vfat, exFAT, some SMB
and network mounts), with the cost of the copies said once per job.

Publishing a store (:func:`ndvicube.cube.store.publish`), making a version of it
(:mod:`.versions`) and joining tiles (:mod:`.tiles`) hard-link files: no byte is copied and
no space taken. A filesystem without links answers ``link()`` with EPERM (exFAT, vfat) or
ENOSYS/EOPNOTSUPP, and another device with EXDEV; then the file is copied instead and the
copy is tallied. A job wraps its work in :func:`copies_reported`, which logs one warning with
what the copies cost (files, bytes, seconds), so a user sees once why publishing takes
seconds and space. (Zarr's own local store makes a group's metadata with ``link()`` too:
:func:`ndvicube.cube.store.local_store` gives it a way that needs no link.)

And what a published path links to: :func:`pinned` resolves a symbolic link, or the copy made
where symbolic links are refused (it names its version in :data:`MARKER`), so a reader opens
one version; :func:`from_cache` tells a store Snakemake's output cache put in place (its files
are the cache's, writable by all: copied, never linked).
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import logging
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger(__name__)

#: What ``link()`` or ``symlink()`` answers where the filesystem has no such links (vfat and
#: exFAT: EPERM; exFAT over FUSE: ENOSYS for symlink; SMB: EOPNOTSUPP), or where the two paths
#: are on different devices (EXDEV) or a file has too many links (EMLINK). Any other error (a
#: full disk) is raised as it is.
REFUSED = frozenset(
    {errno.EPERM, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EXDEV, errno.EMLINK}
)

#: In a published path that is a copy (symbolic links refused): the version it is, relative
#: to the path's folder (``cube/v2.zarr``). Zarr and GDAL ignore a file of this name.
MARKER = ".ndvicube-version"


@dataclasses.dataclass
class Copies:
    """The copies made where a link was refused, since the job's tally was reset."""

    files: int = 0
    bytes: int = 0
    seconds: float = 0.0
    #: What was refused and why, as the OS said it (``link(): Operation not permitted``).
    reason: str = ""


_copies = Copies()


def link_or_copy(source: str | Path, target: str | Path) -> None:
    """``os.link`` ``source`` as ``target``; a copy (tallied) where the filesystem refuses.

    A full disk fails the copy too, as it should. Used as ``shutil.copytree``'s
    ``copy_function``, so a whole store is linked, or copied file by file, by one call.
    """
    try:
        os.link(source, target)
    except OSError as error:
        if error.errno not in REFUSED:
            raise
        started = time.perf_counter()
        shutil.copy2(source, target)
        _copies.files += 1
        _copies.bytes += os.path.getsize(target)
        _copies.seconds += time.perf_counter() - started
        _copies.reason = _copies.reason or f"link(): {error.strerror}"


def copy_tree(source: Path, target: Path) -> str:
    """``source`` copied file by file as ``target`` (symbolic links followed), when a copy is
    wanted, not for want of links; returns its cost, ``"412 file(s), 31.2 MB in 0.42 s"``."""
    started = time.perf_counter()
    shutil.copytree(source, target)
    sizes = [p.stat().st_size for p in target.rglob("*") if p.is_file()]
    seconds = time.perf_counter() - started
    return f"{len(sizes)} file(s), {sum(sizes) / 1e6:.1f} MB in {seconds:.2f} s"


def note_refused(what: str, error: OSError) -> None:
    """Record a link of another kind (a symbolic link) the filesystem refused."""
    refusal = f"{what}: {error.strerror}"
    if refusal not in _copies.reason:
        _copies.reason = f"{_copies.reason}; {refusal}" if _copies.reason else refusal


def copies_made() -> Copies:
    """The copies tallied so far in this process (since the last :func:`copies_reported`)."""
    return dataclasses.replace(_copies)


@contextlib.contextmanager
def copies_reported(where: str | Path) -> Iterator[None]:
    """Tally the copies made for want of links inside the block; log them once at its end.

    ``where`` names the folder whose filesystem refused, for the message.
    """
    global _copies
    _copies = Copies()
    try:
        yield
    finally:
        if _copies.files or _copies.reason:
            log.warning(
                "The filesystem of %s refuses links (%s): %d file(s) were copied instead, "
                "%.1f MB in %.2f s, and they take that space on disk. On a filesystem with "
                "hard and symbolic links (ext4, xfs, NFS...) publishing copies nothing "
                "(docs/reruns.md, 'Filesystems without links').",
                where,
                _copies.reason or "copies",
                _copies.files,
                _copies.bytes / 1e6,
                _copies.seconds,
            )
        _copies = Copies()


def pinned(link: str | Path) -> Path:
    """The version ``link`` names now: open this path to read one version whatever follows.

    A symbolic link is resolved; a published copy (a filesystem without symbolic links) names
    its version in :data:`MARKER`, used while that version is kept. Any other path is itself.
    """
    link = Path(link)
    if not link.is_symlink() and (link / MARKER).is_file():
        version = link.parent / (link / MARKER).read_text().strip()
        if version.name.endswith(".zarr") and (version / ".zmetadata").is_file():
            return version
    return Path(os.path.realpath(link))


def from_cache(store: str | Path) -> bool:
    """Whether Snakemake's output cache put ``store`` there: a symbolic link into the cache
    (the working directory that filled it) or a folder of such links (one that reused it).

    Its files are the cache entry's, which Snakemake makes writable by all (mode 666), so
    they are copied, never hard-linked, into a version or an area store.
    """
    store = Path(store)
    if store.is_symlink():
        return True
    return store.is_dir() and any(entry.is_symlink() for entry in store.iterdir())

"""The cube in an object store (``cube_store: s3://bucket/prefix``): written there by the
block tasks themselves, published as immutable versions and a pointer written last.

An object store has no rename and no links, so the local design (:mod:`.versions`: hard links,
a symbolic link replaced by rename(2)) becomes, under ``s3://bucket/prefix/{area}/``:

* ``cube/v{N}.zarr/`` - one version per build. The engine's tasks write their chunks into it
  straight from where they compute them (zarr's ``ObjectStore`` over obstore's ``S3Store``:
  many small PUTs in flight, nothing staged on a local disk); its consolidated metadata
  (``.zmetadata``) is written last and marks it finished. A version is never written again.
* ``ndvi.json`` - the pointer: ``{"version": N, "store": "s3://.../cube/vN.zarr"}``, one PUT
  made after the version is finished (a PUT replaces an object whole: a reader gets the old
  pointer or the new one). :func:`resolve` reads it once, so a reader reads one version for as
  long as it is kept (``cube_versions_kept``, :func:`prune`).

A build killed while writing leaves a version without ``.zmetadata`` that no pointer names;
the next build reuses the newest *finished* version (its days are copied, as ``.work`` is on
disk) and writes the next number. What Snakemake sees is a small local manifest
(``results/{area}/cube/workflow.json``, :func:`write_manifest`): the version's URL and the
checksum of its metadata, rewritten only by a cube job, so ``snakemake`` knows the cube is up
to date without asking the bucket.

Credentials are never passed around: every process (the job, each Dask worker) makes its own
store from its environment or the AWS files (:func:`ndvicube.read.s3.s3_options`), so the plan
a worker receives names URLs only, and nothing ndvicube writes holds a key.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import logging
import os
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from ndvicube.errors import ConfigError, NdviCubeError

if TYPE_CHECKING:
    from obstore.store import S3Store
    from zarr.abc.store import Store

log = logging.getLogger(__name__)
T = TypeVar("T")

#: The pointer object under an area's prefix: which version readers open.
POINTER = "ndvi.json"
#: A version's prefix under ``{area}/cube/``: ``v{N}.zarr``, or ``v{N}-{digest}.zarr`` for an
#: area split in tiles (:mod:`.objecttiles`).
VERSION = re.compile(r"v(\d+)(?:-[0-9a-f]{12})?\.zarr")
#: The metadata written last: a version holding it is finished.
FINISHED_KEY = ".zmetadata"
#: S3's bucket names (3-63 lowercase letters, digits, dots, hyphens).
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


class ObjectStoreAccessError(NdviCubeError):
    """The bucket refused the request (a wrong key, no permission, no such bucket)."""


def is_url(location: str | Path | None) -> bool:
    """Whether ``location`` names an object store (``s3://...``), not a local path."""
    return isinstance(location, str) and location.startswith("s3://")


def check_cube_store(url: str, *, key: str = "cube_store") -> str:
    """``url`` without a trailing slash, once it is an ``s3://bucket[/prefix]`` URL; else a
    :class:`ConfigError` naming it and saying what is expected."""
    text = str(url).strip().rstrip("/")
    bucket, _, _ = text.removeprefix("s3://").partition("/")
    if not text.startswith("s3://") or not _BUCKET.fullmatch(bucket) or "//" in text[5:]:
        raise ConfigError(
            f"{key}: {url!r} is not an object-store URL. The cube is written to S3 when {key} "
            "is 's3://bucket' or 's3://bucket/prefix' (a bucket name of 3-63 lowercase letters, "
            "digits, dots and hyphens; no empty path segment). Fix the value, or remove the "
            "key to keep the cube on the local disk (results/{area}/cube/)."
        )
    return text


def split(url: str) -> tuple[str, str]:
    """``s3://bucket/some/key`` -> ``("bucket", "some/key")``."""
    bucket, _, key = url.removeprefix("s3://").partition("/")
    return bucket, key.strip("/")


@functools.lru_cache(maxsize=64)
def bucket_store(bucket: str, prefix: str = "") -> S3Store:
    """obstore's store of ``bucket`` (under ``prefix``), made once per process from this
    process's environment and AWS files, with ndvicube's retries: 5xx answers (503 SlowDown,
    500), dropped or reset connections and timeouts are retried with backoff; 4xx answers
    (403: a wrong key) are not. Temporary credentials from a provider (instance profile,
    web identity, container) are refreshed by obstore before they expire."""
    from obstore.store import S3Store

    from ndvicube.read.retries import OBSTORE_CLIENT, OBSTORE_RETRY
    from ndvicube.read.s3 import s3_options

    options = s3_options()
    options.pop("skip_signature", None)  # writing needs credentials: obstore then says which
    client = OBSTORE_CLIENT | {"allow_http": options.get("endpoint", "").startswith("http:")}
    return S3Store(
        bucket,
        prefix=prefix or None,
        **options,
        client_options=client,
        retry_config=OBSTORE_RETRY,  # type: ignore[arg-type]
    )


def reset() -> None:
    """Forget this process's stores (after the environment changed: tests)."""
    bucket_store.cache_clear()


def object_store(url: str, *, read_only: bool = False) -> Store:
    """Zarr's ``ObjectStore`` over obstore for the store at ``url`` (``s3://bucket/prefix``).
    (:func:`ndvicube.cube.store.zarr_store` chooses between it and a local store.)"""
    from zarr.storage import ObjectStore

    return ObjectStore(bucket_store(*split(url)), read_only=read_only)


# --- requests, with a clear error where retrying cannot help ----------------------------------


def run_requests(coroutine):
    """Run one coroutine of requests from synchronous code: a job, a worker thread, or a light
    job run in a thread of Snakemake's process, where an event loop may be running already
    (then in a thread of its own, where ``asyncio.run`` may start one)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def refused(error: BaseException, url: str) -> ObjectStoreAccessError | None:
    """The error to raise for obstore's ``error`` at ``url`` when no retry can mend it (a
    refused key, a missing bucket), the credentials never quoted; None for other errors."""
    from obstore.exceptions import PermissionDeniedError, UnauthenticatedError

    text = str(error)
    denied = isinstance(error, (PermissionDeniedError, UnauthenticatedError)) or any(
        code in text for code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch",
                                  "ExpiredToken", "NoSuchBucket", "status: 403", "403 Forbidden")
    )  # fmt: skip
    if not denied:
        return None
    reason = next(
        (c for c in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken",
                     "NoSuchBucket", "AccessDenied") if c in text),
        "403 Forbidden",
    )  # fmt: skip
    return ObjectStoreAccessError(
        f"The object store refused ndvicube's request for {url} ({reason}): no retry can "
        "mend that. The credentials are those of this process's environment "
        "(AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN, AWS_PROFILE) or the AWS "
        "files (~/.aws/credentials); check that they are current, allowed to list, read, "
        "write and delete under that prefix, and that the bucket exists (and, for another "
        "server than AWS, that AWS_ENDPOINT_URL names it). Every Dask worker needs the same."
    )


#: What S3 answers when the request's credentials expired (a session token, a presigned time).
EXPIRED = ("ExpiredToken", "TokenRefreshRequired", "RequestExpired", "token has expired")


def refreshing(call: Callable[[], T]) -> T:
    """``call()``; when the store answers that the credentials expired, this process's stores
    are made again (the environment or the AWS files, which a credential helper may have
    renewed meanwhile: ``aws sso login``, a ``credential_process``) and ``call()`` is sent once
    more. (Credentials from a provider - instance profile, web identity, container - are
    renewed by obstore itself before they expire.) Any other error is raised as it is."""
    try:
        return call()
    except Exception as error:
        if not any(mark in str(error) for mark in EXPIRED):
            raise
        log.warning("the object store's credentials expired: reading them again and retrying")
        reset()
        return call()


def checked(url: str):
    """Context: obstore errors at ``url`` that no retry can mend become
    :class:`ObjectStoreAccessError`."""
    return _Checked(url)


class _Checked:
    def __init__(self, url: str) -> None:
        self.url = url

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, error, traceback) -> bool:
        if error is not None and not isinstance(error, NdviCubeError):
            clear = refused(error, self.url)
            if clear is not None:
                raise clear from None  # obstore's text may quote the request's headers
        return False


# --- versions and the pointer -------------------------------------------------------------------


def version_url(area: str, number: int) -> str:
    """``s3://bucket/prefix/{area}/cube/v{number}.zarr``."""
    return f"{area}/cube/v{number}.zarr"


def versions(area: str) -> dict[int, str]:
    """The version prefixes under ``area`` (finished or not) by number, oldest first: one
    listing request (with a delimiter: the chunks are not listed)."""
    import obstore

    bucket, key = split(area)
    with checked(area):
        found = obstore.list_with_delimiter(bucket_store(bucket), f"{key}/cube/")
    numbers = {}
    for prefix in found["common_prefixes"]:
        match = VERSION.fullmatch(prefix.rstrip("/").rsplit("/", 1)[-1])
        if match:
            numbers[int(match.group(1))] = f"s3://{bucket}/{prefix.rstrip('/')}"
    return dict(sorted(numbers.items()))


def is_finished(url: str) -> bool:
    """Whether the store at ``url`` holds its consolidated metadata (one HEAD request)."""
    import obstore
    from obstore.exceptions import NotFoundError

    bucket, key = split(url)
    try:
        with checked(url):
            obstore.head(bucket_store(bucket), f"{key}/{FINISHED_KEY}")
    except (NotFoundError, FileNotFoundError):
        return False
    return True


def newest_finished(area: str, found: dict[int, str] | None = None) -> str | None:
    """The newest finished version under ``area`` (of ``found``, its listed versions), or
    None."""
    for _, url in reversed((versions(area) if found is None else found).items()):
        if is_finished(url):
            return url
    return None


def build_target(area: str) -> tuple[str | None, str]:
    """What a build under ``area`` reuses (its newest finished version, or None) and the
    prefix it writes: one more than any version there, finished or not (a killed build's
    leftover is never written into, so nothing stale mixes with the new). One listing."""
    found = versions(area)
    return newest_finished(area, found), version_url(area, max(found, default=0) + 1)


def read_pointer(area: str) -> dict[str, Any] | None:
    """The pointer of ``area`` (``{"version": N, "store": url}``), or None when none is
    published yet."""
    import obstore
    from obstore.exceptions import NotFoundError

    bucket, key = split(area)
    try:
        with checked(area):
            data = obstore.get(bucket_store(bucket), f"{key}/{POINTER}").bytes()
    except (NotFoundError, FileNotFoundError):
        return None
    return json.loads(bytes(data))


def metadata_digest(url: str) -> str:
    """SHA-256 of a finished version's consolidated metadata (what its manifest records)."""
    import obstore

    bucket, key = split(url)
    with checked(url):
        data = obstore.get(bucket_store(bucket), f"{key}/{FINISHED_KEY}").bytes()
    return hashlib.sha256(bytes(data)).hexdigest()


def release(area: str, *, keep: int) -> dict[str, Any]:
    """Point ``area``'s pointer at its newest finished version (one PUT, made only when it
    names another), then delete the versions ``keep`` newer ones have replaced. Returns the
    pointer's content."""
    import obstore

    found = versions(area)
    newest = newest_finished(area, found)
    if newest is None:
        raise NdviCubeError(f"no finished cube version under {area}/cube/ to publish")
    number = int(VERSION.fullmatch(newest.rsplit("/", 1)[-1]).group(1))  # type: ignore[union-attr]
    pointer = {"version": number, "store": newest, FINISHED_KEY: metadata_digest(newest)}
    if read_pointer(area) != pointer:
        bucket, key = split(area)
        body = json.dumps(pointer).encode()
        with checked(area):
            refreshing(lambda: obstore.put(bucket_store(bucket), f"{key}/{POINTER}", body))
        log.info("published %s as %s/%s", newest, area, POINTER)
    prune(area, keep=keep, current=number, found=found)
    return pointer


def prune(area: str, *, keep: int, current: int, found: dict[int, str] | None = None) -> list[str]:
    """Delete the versions of ``area`` that have ``keep`` newer ones (never ``current``), and
    unfinished ones older than ``current`` (a killed build's). ``found``: the versions listed
    already. Returns their URLs."""
    found = versions(area) if found is None else found
    older = [n for n in sorted(found) if n < current]
    unfinished = [n for n in older if not is_finished(found[n])]
    finished = [n for n in older if n not in unfinished]
    doomed = finished[: max(len(finished) + 1 - keep, 0)] + unfinished
    for number in doomed:
        remove(found[number])
        log.info("removed %s (%d newer version(s) kept)", found[number], keep)
    return [found[n] for n in doomed]


def remove(url: str) -> int:
    """Delete every object under the prefix ``url`` (a version): listed, then deleted in
    batches. Returns how many."""
    import obstore

    bucket, key = split(url)
    store = bucket_store(bucket)
    with checked(url):
        paths = [o["path"] for batch in obstore.list(store, f"{key}/") for o in batch]
        for start in range(0, len(paths), 1000):
            obstore.delete(store, paths[start : start + 1000])
    return len(paths)


def copy_chunks(old: str, new: str, keys: Iterable[str]) -> int:
    """Copy chunk objects ``keys`` from version ``old`` to ``new`` inside the bucket
    (server-side CopyObject: no byte goes through this process). A key the old version lacks
    (an all-NaN chunk, which Zarr does not store) is absent from the new one too. Returns how
    many were copied."""
    import obstore
    from obstore.exceptions import NotFoundError

    bucket, old_key = split(old)
    _, new_key = split(new)
    store = bucket_store(bucket)

    async def one(chunk: str) -> int:
        try:
            await obstore.copy_async(store, f"{old_key}/{chunk}", f"{new_key}/{chunk}")
        except (NotFoundError, FileNotFoundError):
            return 0
        return 1

    async def every() -> list[int]:
        return await asyncio.gather(*(one(k) for k in keys))

    with checked(new):
        return sum(refreshing(lambda: run_requests(every())))


# --- what readers open ------------------------------------------------------------------------


def resolve(location: str | Path) -> str | Path:
    """The one version a reader of ``location`` opens, resolved once:

    * a cube job's manifest (``results/{area}/cube/workflow.json``): the version it names;
    * an area's URL (``s3://bucket/prefix/{area}``): the version its pointer names now;
    * a version's URL (``.../cube/v3.zarr``): itself;
    * a local path: the version its link names (:func:`ndvicube.cube.links.pinned`).
    """
    from ndvicube.cube.links import pinned

    if is_url(location):
        url = str(location).rstrip("/")
        if url.endswith(".zarr"):
            return url
        pointer = read_pointer(url)
        if pointer is None:
            raise FileNotFoundError(
                f"no cube is published at {url}: {url}/{POINTER} is missing (a cube job "
                "with cube_store set publishes it when its first build is finished)"
            )
        return str(pointer["store"])
    path = Path(location)
    if path.suffix == ".json" and path.is_file():
        return str(json.loads(path.read_text())["store"])
    return pinned(path)


def write_manifest(path: str | Path, pointer: dict[str, Any], spec: dict[str, Any]) -> Path:
    """The cube rule's output with ``cube_store``: which version it published, the checksum of
    that version's metadata and the digest of the spec that made it (no credential: URLs and
    digests only). Written beside and renamed, so it is never half there."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()
    manifest = {
        "store": pointer["store"],
        "version": pointer["version"],
        "zmetadata_sha256": pointer[FINISHED_KEY],
        "spec_sha256": digest,
    }
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(manifest, indent=1) + "\n")
    os.replace(partial, path)
    return path

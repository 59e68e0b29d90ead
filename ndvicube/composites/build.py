"""The composites job's work: the composites store of an area and its COGs, kept up to date.

Like the cube, both are kept in ``results/{area}/.work/`` between runs and published as hard
links (:func:`ndvicube.cube.store.publish`), the store also as a read-only version that
``results/{area}/composites.zarr`` names (:mod:`ndvicube.cube.versions`): a period is computed
again only when its solar days or items changed (:mod:`ndvicube.composites.periods`), and a
COG written again only when its period's sources did (:mod:`ndvicube.composites.cog`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ndvicube.composites.periods import CompositeSpec

log = logging.getLogger(__name__)


def build_composites(
    cube_path: str | Path,
    out: str | Path,
    cogs_out: str | Path,
    spec: CompositeSpec,
    indices: Sequence[str],
    *,
    threads: int = 2,
    published: str | Path | None = None,
    versions_kept: int = 2,
) -> list[str]:
    """Write an area's composites store ``out`` and its COGs in ``cogs_out`` from the local cube;
    return the periods computed (the others were copied from the job's earlier store).

    The job keeps its store beside ``published`` (``results/{area}/.work/composites.zarr``),
    or beside ``out`` without it. With ``published`` the store becomes a read-only version in
    ``results/{area}/composites.versions/`` and ``published`` a link to it, moved in one rename:
    a reader opening it during a rerun finds the previous store or the new one, never none
    (Snakemake deletes ``out`` when the job starts), and a handle opened on the version keeps
    its values while the ``versions_kept`` newest are kept.

    ``indices`` are the catalogue names of ``spec.variables``. A COG is written again only when
    its period's solar days and items (or the statistic, indices or grid) differ from those its
    manifest (``.periods.json`` in the folder) records.
    """
    from ndvicube.composites.periods import write_composites
    from ndvicube.cube.indices import column
    from ndvicube.cube.links import copies_reported
    from ndvicube.cube.store import publish, working_store
    from ndvicube.cube.versions import release

    store, folder = working_store(published or out), working_store(cogs_out)
    with copies_reported(store.parent):  # where the filesystem has no links (vfat, exFAT)
        computed = write_composites(cube_path, store, spec, threads=threads)
        export_changed_cogs(store, folder, [(n, column(n)) for n in indices], threads=threads)
        publish(store, out)
        publish(folder, cogs_out)
        if published is not None:
            release(store, published, keep=versions_kept)
    return computed


def export_changed_cogs(
    store: Path, folder: Path, indices: Sequence[tuple[str, str]], *, threads: int
) -> None:
    """Bring the COGs in ``folder`` up to date with the composites ``store``: write those whose
    period's sources changed (or are missing), remove those no longer configured."""
    from ndvicube.composites.cog import cog_name, export_cogs, stale_cogs
    from ndvicube.composites.periods import PERIODS_ATTR, SPEC_ATTR
    from ndvicube.cube.store import open_cube, read_attrs

    attrs = read_attrs(store)
    manifest_path = folder / ".periods.json"
    old = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    same_spec = old.get(SPEC_ATTR) == attrs[SPEC_ATTR]
    made = old.get("files", {}) if same_spec else {}
    sources = attrs[PERIODS_ATTR]
    files = {cog_name(index, p): sources[p] for index, _ in indices for p in sources}

    def outdated(period: str) -> bool:
        names = [cog_name(index, period) for index, _ in indices]
        return any(made.get(n) != sources[period] or not (folder / n).is_file() for n in names)

    todo = [p for p in sources if outdated(p)]
    manifest_path.unlink(missing_ok=True)  # until the files it would list are all written
    written = export_cogs(open_cube(store), folder, indices, todo, threads=threads)
    for stale in stale_cogs(folder, set(files)):
        stale.unlink()
    manifest = {SPEC_ATTR: attrs[SPEC_ATTR], "files": files}
    manifest_path.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    log.info("composites: %d COG(s) written for %d period(s), %d kept", len(written), len(todo),
             len(files) - len(written))  # fmt: skip

"""Rule ``composites``: an area's regular composites (Zarr) and their COGs, from the local cube."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path


def build_composites(
    *,
    cube_path: str | Path,
    out: str | Path,
    cogs_out: str | Path,
    period: str,
    statistic: str,
    indices: Sequence[str],
    start: str,
    end: str,
    threads: int = 2,
    published: str | Path | None = None,
    versions_kept: int = 2,
) -> list[str]:
    """Write the composites store ``out`` and the COGs in ``cogs_out``; return the periods
    computed (the others were copied from the job's earlier store, ``results/{area}/.work/``).

    With ``published`` (``results/{area}/composites.zarr``, what readers open) the store is
    also published as a read-only version that link then names, the ``versions_kept`` newest
    kept, as the cube is (:mod:`ndvicube.cube.versions`)."""
    from ndvicube.composites.build import build_composites as build
    from ndvicube.composites.periods import CompositeSpec
    from ndvicube.cube.indices import column, resolve_indices

    names = resolve_indices(indices, key="composites.indices")
    spec = CompositeSpec(period, statistic, tuple(column(n) for n in names),
                         dt.date.fromisoformat(start), dt.date.fromisoformat(end))  # fmt: skip
    return build(cube_path, out, cogs_out, spec, names, threads=threads, published=published,
                 versions_kept=versions_kept)  # fmt: skip

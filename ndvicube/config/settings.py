"""Typed settings: one frozen dataclass per config section, named field by field like its keys.

A section a stage receives is defined in that stage (``cloud_mask`` and ``cube`` in
:mod:`ndvicube.cube.spec`, ``smoothing`` and ``phenology`` in :mod:`ndvicube.timeseries`,
``compute`` in :mod:`ndvicube.compute`) and built here from the schema-filled section as it is
(``CloudMask(**section)``), so a new setting is a key in the schema, a field in its section and
the code that uses it. This module checks what neither the schema nor a section can (``end``
before ``start``, pandas frequencies, the Savitzky-Golay window, indices among those computed).
Every failure is a :class:`ConfigError` naming the key and the offending value and saying how to
fix it, so a run stops before any job starts.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ndvicube.compute import Compute
from ndvicube.config.areas import (
    Area,
    check_area_name,
    check_tiles,
    parse_area,
    with_plotted_points,
)
from ndvicube.config.schema import apply_schema
from ndvicube.cube.indices import DEFAULT_INDICES, resolve_indices
from ndvicube.cube.spec import Chunking, CloudMask
from ndvicube.errors import ConfigError
from ndvicube.fields.bounds import FieldLimits
from ndvicube.timeseries.phenology import Phenology
from ndvicube.timeseries.smoothing import Smoothing


@dataclass(frozen=True)
class Stac:
    """The ``stac`` section: where the scenes are found, and how their items are shaped."""

    url: str
    """STAC API root, or path/URL of an ItemCollection or static catalog JSON."""
    collection: str
    max_cloud_cover: float
    """Percent; items with ``eo:cloud_cover >= max_cloud_cover`` are dropped."""
    profile: str = "earth-search"
    """The archive's item conventions (:mod:`ndvicube.search.profiles`)."""


@dataclass(frozen=True)
class PolygonSeries:
    """The ``polygon_series`` section."""

    min_clear_fraction: float = 0.0
    """Dates whose polygon is less clear than this get no statistics."""
    batch_cells: int = 2_000_000
    """Cells whose weights and values the polygon tables hold at once (memory, not values)."""


@dataclass(frozen=True)
class Figures:
    """The ``figures`` section: which points get a figure of their own (resolved per area in
    :attr:`Area.plotted_points`)."""

    points: tuple[str, ...] | None = None
    max_points: int | str = 50


@dataclass(frozen=True)
class Composites:
    """The ``composites`` section: period grid, statistic and indices (catalogue names)."""

    period: str
    statistic: str
    indices: tuple[str, ...]


@dataclass(frozen=True)
class Demo:
    """The ``demo`` section: the synthetic catalog the search reads is generated first."""

    seed: int = 2023


@dataclass(frozen=True)
class Settings:
    """Everything a run needs, validated: a field per config section or top-level key."""

    stac: Stac
    start: dt.date
    end: dt.date
    """Inclusive."""
    resolution: float
    """Pixel size in metres, in each area's UTM zone."""
    areas: Mapping[str, Area]
    cube: Chunking = field(default_factory=Chunking)
    cloud_mask: CloudMask = field(default_factory=CloudMask)
    indices: tuple[str, ...] = DEFAULT_INDICES
    """Catalogue names of the cube's indices (the first is the quick-look's)."""
    on_missing_asset: str = "fail"
    cube_versions_kept: int = 2
    """Published versions of each area's cube kept on disk (:mod:`ndvicube.cube.versions`)."""
    cube_store: str | None = None
    """``s3://bucket/prefix`` where the cubes are written (:mod:`ndvicube.cube.objectstore`);
    None: the local disk."""
    smoothing: Smoothing = field(default_factory=Smoothing)
    phenology: Phenology = field(default_factory=Phenology)
    """With ``index`` resolved: the configured one, or the first of :attr:`indices`."""
    polygon_series: PolygonSeries = field(default_factory=PolygonSeries)
    fields: FieldLimits = field(default_factory=FieldLimits)
    figures: Figures = field(default_factory=Figures)
    compute: Compute = field(default_factory=Compute)
    composites: Composites | None = None
    """Regular composites and their COGs; None when the section is absent."""
    demo: Demo | None = None
    """None unless the config asks for the demo catalog."""
    config: Mapping[str, Any] = field(default_factory=dict, repr=False)
    """The config as the schema filled it (plain values): what rules pass to jobs as it is."""


def validate_config(config: Mapping[str, Any], *, base_dir: Path | None = None) -> Settings:
    """Check ``config`` against the schema and the semantic rules; return typed settings.

    ``base_dir`` is the directory relative paths (``stac.url``, points CSVs) are resolved
    against: Snakemake's working directory, so ``--directory`` works.
    """
    base_dir = Path.cwd() if base_dir is None else base_dir
    areas_section = config.get("areas")
    for name in areas_section if isinstance(areas_section, Mapping) else ():
        check_area_name(name)  # before the schema, whose message for a name is its regex
    filled = apply_schema(config)
    start, end = _parse_dates(filled["start"], filled["end"])
    resolution, cube = float(filled["resolution"]), Chunking(**filled["cube"])
    limits = FieldLimits(**filled["fields"])
    areas = {
        name: parse_area(name, spec, base_dir=base_dir, limits=limits, resolution=resolution)
        for name, spec in filled["areas"].items()
    }
    for area in areas.values():
        check_tiles(area, resolution, cube.spatial_chunk)
    areas = with_plotted_points(areas, filled["figures"])
    smoothing = filled["smoothing"]
    _check_frequency(smoothing["resample"])
    _check_savgol(smoothing)
    indices = resolve_indices(filled["indices"])
    phenology = filled["phenology"] | {
        "index": _phenology_index(filled["phenology"]["index"], indices)
    }
    stac = filled["stac"] | {"url": _resolve_source(filled["stac"]["url"], base_dir)}
    return Settings(
        stac=Stac(**stac),
        start=start,
        end=end,
        resolution=resolution,
        areas=areas,
        cube=cube,
        cloud_mask=CloudMask(**filled["cloud_mask"]),
        indices=indices,
        on_missing_asset=filled["on_missing_asset"],
        cube_versions_kept=filled["cube_versions_kept"],
        cube_store=_cube_store(filled.get("cube_store"), areas),
        smoothing=Smoothing.from_section(smoothing),
        phenology=Phenology(**phenology),
        polygon_series=PolygonSeries(**filled["polygon_series"]),
        fields=limits,
        figures=Figures(**filled["figures"]),
        compute=Compute(**filled["compute"]),
        composites=_composites(filled.get("composites"), indices),
        demo=Demo(**filled["demo"]) if "demo" in filled else None,
        config=filled,
    )


def _cube_store(url: str | None, areas: Mapping[str, Area]) -> str | None:
    """``cube_store`` checked: an ``s3://`` URL, and no field set split in tiles (its tiles
    are shares of its chunks on the whole grid, joined by hard links on the local disk; a box
    split in tiles writes its chunks in place in the bucket, :mod:`ndvicube.cube.objecttiles`)."""
    if url is None:
        return None
    from ndvicube.cube.objectstore import check_cube_store

    url = check_cube_store(url)
    tiled = sorted(name for name, area in areas.items() if area.split and area.field_set)
    if tiled:
        raise ConfigError(
            f"cube_store: {url!r} cannot hold the cubes of field sets split in tiles "
            f"({', '.join(tiled)}): their tiles are shares of the field set's chunks, joined by "
            "hard links on the local disk. Remove `tiles` from those field sets (one cube job "
            "per field set writes to the bucket from all its workers), or remove cube_store."
        )
    return url


def _composites(section: Mapping[str, Any] | None, indices: tuple[str, ...]) -> Composites | None:
    """The composites section checked: a pandas period, indices among those computed."""
    if section is None:
        return None
    _check_frequency(section["period"], key="composites.period")
    names = (
        indices
        if section["indices"] is None
        else resolve_indices(section["indices"], key="composites.indices")
    )
    outside = [n for n in names if n not in indices]
    if outside:
        raise ConfigError(
            f"Invalid config at composites.indices: {', '.join(outside)} is not among the indices "
            f"computed ({', '.join(indices)}). Add it to `indices`, or composite only those."
        )
    return Composites(section["period"], section["statistic"], tuple(names))


def _phenology_index(name: str | None, indices: tuple[str, ...]) -> str:
    """The index phenology is computed on: ``name`` (one of ``indices``) or the first index."""
    if name is None:
        return indices[0]
    (resolved,) = resolve_indices([name], key="phenology.index")
    if resolved not in indices:
        raise ConfigError(
            f"Invalid config at phenology.index: {name!r} is not one of the indices computed "
            f"({', '.join(indices)}). Add it to `indices` or choose one of those."
        )
    return resolved


def _parse_dates(start: str, end: str) -> tuple[dt.date, dt.date]:
    """Parse ``start``/``end`` and require start <= end."""
    start_d, end_d = dt.date.fromisoformat(start), dt.date.fromisoformat(end)
    if end_d < start_d:
        raise ConfigError(
            f"Invalid config: end {end!r} is before start {start!r}. "
            "Set end to the same day as start or later (both YYYY-MM-DD, inclusive)."
        )
    return start_d, end_d


def _check_savgol(smoothing: Mapping[str, Any]) -> None:
    """Savitzky-Golay needs an odd window longer than its polynomial order."""
    window, order = smoothing["window"], smoothing["polyorder"]
    if smoothing["method"] == "savgol" and (window % 2 == 0 or window <= order):
        raise ConfigError(
            f"Invalid config at smoothing: method savgol with window {window} and polyorder "
            f"{order}. The Savitzky-Golay window must be odd and larger than polyorder, e.g. "
            "window: 7 with polyorder: 2."
        )


def _check_frequency(freq: str, key: str = "smoothing.resample") -> None:
    """Reject frequencies pandas cannot parse, before any job runs."""
    import pandas as pd

    try:
        pd.tseries.frequencies.to_offset(freq)
    except ValueError as exc:
        raise ConfigError(
            f"Invalid config at {key}: value {freq!r} is not a pandas frequency "
            f"({exc}). Use e.g. '5D' for five days, '1W' for weekly or '1MS' for months."
        ) from None


def _resolve_source(url: str, base_dir: Path) -> str:
    """URLs and absolute paths stay as they are; relative paths are relative to ``base_dir``.

    A relative path is kept relative when ``base_dir`` is the working directory, so the search
    jobs' parameters do not change when a working directory is moved or copied.
    """
    if "://" in url or Path(url).is_absolute() or base_dir.resolve() == Path.cwd().resolve():
        return url
    return str((base_dir / url).resolve())

"""Validate a workflow configuration and turn it into typed settings.

The JSON schema in ``workflow/schemas/config.schema.yaml`` is the public contract for the keys and
their defaults; this module applies it and then checks what a schema cannot express (latitude and
longitude ranges, boxes that are empty, ``end`` before ``start``, points outside their area,
duplicate point ids). Every failure is a :class:`ConfigError` whose message names the key and the
offending value and says how to fix it, so a run stops before any job starts.
"""

from __future__ import annotations

import copy
import csv
import dataclasses
import datetime as dt
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from ndvicube.cube.indices import DEFAULT_INDICES, resolve_indices
from ndvicube.errors import ConfigError
from ndvicube.geo import BBox, bbox_around, utm_crs_for
from ndvicube.timeseries.points import Point

#: The schema shipped with the workflow; ``validate_config`` fills its defaults.
SCHEMA_PATH = Path(__file__).resolve().parent.parent / "workflow" / "schemas" / "config.schema.yaml"


@dataclass(frozen=True)
class Area:
    """A named box searched and cubed as one unit; its name is the ``results/`` folder."""

    name: str
    bbox: BBox
    """lon_min, lat_min, lon_max, lat_max in EPSG:4326 degrees."""
    crs: str
    """CRS of the cube: the UTM zone of the box's centre (e.g. ``EPSG:32644``)."""
    points: tuple[Point, ...]
    points_file: Path | None
    """The CSV the points came from, if any (an input of the series job)."""
    polygons_file: Path | None = None
    """GeoJSON/GeoPackage of polygons whose series are extracted, if any."""
    tiles: tuple[int, int] = (1, 1)
    """Rows and columns of tile jobs the cube is split into (1, 1: one cube job)."""
    plotted_points: tuple[str, ...] = ()
    """Ids of the points drawn in a figure of their own (``figures``), in drawing order."""

    @property
    def split(self) -> bool:
        """Whether the cube is built by tile jobs and joined."""
        return self.tiles != (1, 1)


@dataclass(frozen=True)
class CompositeSettings:
    """The ``composites`` section: period grid, statistic and indices (catalogue names)."""

    period: str
    statistic: str
    indices: tuple[str, ...]


@dataclass(frozen=True)
class Settings:
    """Everything a run needs, validated."""

    stac_url: str
    collection: str
    max_cloud_cover: float
    start: dt.date
    end: dt.date
    resolution: float
    areas: Mapping[str, Area]
    scl_classes: tuple[int, ...]
    resample: str
    window: int
    demo_seed: int | None
    time_chunk: int = 8
    spatial_chunk: int = 256
    on_missing_asset: str = "fail"
    smoothing_method: str = "notebook"
    polyorder: int = 2
    lam: float = 10.0
    season_fraction: float = 0.5
    min_amplitude: float = 0.1
    min_clear_fraction: float = 0.0
    scl_buffer_m: float = 0.0
    max_cloud_probability: int | None = None
    indices: tuple[str, ...] = DEFAULT_INDICES
    """Catalogue names of the cube's indices (the first is the quick-look's)."""
    phenology_index: str = DEFAULT_INDICES[0]
    """The index whose seasons ``phenology.csv`` describes."""
    profile: str = "earth-search"
    """The archive's item conventions (:mod:`ndvicube.search.profiles`)."""
    composites: CompositeSettings | None = None
    """Regular composites and their COGs; None when the section is absent."""


class _DateCheckingLoader(yaml.SafeLoader):
    """A YAML loader that names the key and line of an unquoted date that does not exist.

    YAML reads ``end: 2023-02-30`` as a date, and PyYAML then fails with a bare "day is out of
    range for month" from deep in its constructor: the user got a 62-line traceback naming no
    key.
    """

    def construct_mapping(self, node, deep=False):
        for key_node, value_node in node.value:
            value_node.ndvicube_key = key_node.value
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_timestamp(self, node):
        try:
            return super().construct_yaml_timestamp(node)
        except ValueError as error:
            key = getattr(node, "ndvicube_key", "?")
            raise _ImpossibleDate(
                f"Invalid config in {self.name}, line {node.start_mark.line + 1}: {key}: "
                f"{node.value} is not a date that exists ({error}). Write a real date, in "
                f'quotes: {key}: "YYYY-MM-DD".'
            ) from None


class _ImpossibleDate(Exception):
    """Raised inside the loader; :func:`check_yaml_dates` turns it into a ConfigError."""


_DateCheckingLoader.add_constructor(
    "tag:yaml.org,2002:timestamp", _DateCheckingLoader.construct_yaml_timestamp
)


def check_yaml_dates(path: str | Path) -> None:
    """Raise :class:`ConfigError` naming the key of an impossible unquoted date in a YAML file.

    Run on the config file before Snakemake loads it (Snakemake's own loader fails with a
    traceback). Anything else wrong with the file is left to Snakemake's loader to report.
    """
    path = Path(path)
    if not path.is_file():
        return
    with open(path, encoding="utf-8", errors="replace") as f:
        loader = _DateCheckingLoader(f)
        loader.name = str(path)
        try:
            loader.get_single_data()
            return
        except yaml.YAMLError:
            return
        except _ImpossibleDate as error:
            message = str(error)
        finally:
            loader.dispose()
    raise ConfigError(message)  # here, so the traceback Snakemake shows is two lines


def load_schema(path: Path = SCHEMA_PATH) -> dict[str, Any]:
    """Read the configuration schema (YAML)."""
    with open(path) as f:
        return yaml.safe_load(f)


def validate_config(
    config: Mapping[str, Any], *, base_dir: Path | None = None, schema_path: Path = SCHEMA_PATH
) -> Settings:
    """Check ``config`` against the schema and the semantic rules; return typed settings.

    ``base_dir`` is the directory relative paths (``stac.url``, points CSVs) are resolved
    against: Snakemake's working directory, so ``--directory`` works.
    """
    base_dir = Path.cwd() if base_dir is None else base_dir
    filled = _apply_schema(config, schema_path)
    start, end = _parse_dates(filled["start"], filled["end"])
    resolution, chunk = float(filled["resolution"]), int(filled["cube"]["spatial_chunk"])
    areas = {
        name: _parse_area(name, spec, base_dir=base_dir) for name, spec in filled["areas"].items()
    }
    for area in areas.values():
        _check_tiles(area, resolution, chunk)
    areas = _with_plotted_points(areas, filled["figures"])
    smoothing = filled["smoothing"]
    _check_frequency(smoothing["resample"])
    _check_savgol(smoothing)
    indices = resolve_indices(filled["indices"])
    return Settings(
        stac_url=_resolve_source(filled["stac"]["url"], base_dir),
        collection=filled["stac"]["collection"],
        max_cloud_cover=float(filled["stac"]["max_cloud_cover"]),
        start=start,
        end=end,
        resolution=resolution,
        areas=areas,
        scl_classes=tuple(sorted(filled["cloud_mask"]["scl_classes"])),
        resample=smoothing["resample"],
        window=int(smoothing["window"]),
        demo_seed=filled["demo"]["seed"] if "demo" in filled else None,
        time_chunk=int(filled["cube"]["time_chunk"]),
        spatial_chunk=chunk,
        on_missing_asset=filled["on_missing_asset"],
        smoothing_method=smoothing["method"],
        polyorder=int(smoothing["polyorder"]),
        lam=float(smoothing["lambda"]),
        season_fraction=float(filled["phenology"]["fraction"]),
        min_amplitude=float(filled["phenology"]["min_amplitude"]),
        min_clear_fraction=float(filled["polygon_series"]["min_clear_fraction"]),
        scl_buffer_m=float(filled["cloud_mask"]["buffer_m"]),
        max_cloud_probability=filled["cloud_mask"]["max_probability"],
        indices=indices,
        phenology_index=_phenology_index(filled["phenology"]["index"], indices),
        profile=filled["stac"]["profile"],
        composites=_composites(filled.get("composites"), indices),
    )


def _with_plotted_points(areas: dict[str, Area], figures: Mapping[str, Any]) -> dict[str, Area]:
    """Each area with the ids of its points that get a figure of their own.

    ``figures.points`` names them (an id no area has is refused: a typo would silently draw
    nothing); otherwise the first ``figures.max_points`` of each area, or all of them.
    """
    chosen, limit = figures["points"], figures["max_points"]
    wanted = set(chosen or ())
    if chosen is not None:
        known = {p.id for a in areas.values() for p in a.points}
        unknown = [i for i in chosen if i not in known]
        if unknown:
            raise ConfigError(
                f"Invalid config at figures.points: {unknown!r} is not the id of any point "
                f"(known ids include {sorted(known)[:5]!r}). Use ids from the areas' points, "
                "or remove figures.points to draw the first figures.max_points points."
            )
    out = {}
    for name, area in areas.items():
        ids = [p.id for p in area.points]
        if chosen is not None:
            ids = [i for i in ids if i in wanted]
        elif limit != "all":
            ids = ids[: int(limit)]
        out[name] = dataclasses.replace(area, plotted_points=tuple(ids))
    return out


def _composites(
    section: Mapping[str, Any] | None, indices: tuple[str, ...]
) -> CompositeSettings | None:
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
    return CompositeSettings(section["period"], section["statistic"], tuple(names))


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


def with_defaults(config: Mapping[str, Any], schema_path: Path = SCHEMA_PATH) -> dict[str, Any]:
    """A copy of ``config`` with the schema's defaults filled in (what the jobs see)."""
    return _apply_schema(config, schema_path)


def _apply_schema(config: Mapping[str, Any], schema_path: Path) -> dict[str, Any]:
    """Normalise YAML dates to strings, fill schema defaults, then validate."""
    data = _stringify_dates(copy.deepcopy(dict(config)))
    schema = load_schema(schema_path)
    _fill_defaults(data, schema)
    validator = jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        raise ConfigError(_describe_schema_error(errors[0]))
    return data


def _stringify_dates(value: Any) -> Any:
    """YAML turns ``2023-01-01`` into a date; the schema wants ISO strings."""
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _stringify_dates(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_stringify_dates(v) for v in value]
    return value


def _fill_defaults(data: dict[str, Any], schema: Mapping[str, Any]) -> None:
    """Fill ``default:`` values of object properties, recursively (as Snakemake's validate)."""
    for key, sub in schema.get("properties", {}).items():
        if key not in data and "default" in sub:
            data[key] = copy.deepcopy(sub["default"])
        if isinstance(data.get(key), dict):
            _fill_defaults(data[key], sub)
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        for key, value in data.items():
            if key not in schema.get("properties", {}) and isinstance(value, dict):
                _fill_defaults(value, extra)


def _describe_schema_error(error: jsonschema.ValidationError) -> str:
    """One paragraph: which key, which value, what is wrong, how to fix it."""
    key = ".".join(str(p) for p in error.absolute_path) or "(top level)"
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        unknown = sorted(set(error.instance) - set(allowed))
        return (
            f"Invalid config: unknown key(s) {', '.join(map(repr, unknown))} under {key}. "
            f"Allowed keys there are: {', '.join(allowed)}. Check the spelling or remove them."
        )
    if error.validator == "oneOf" and key.startswith("areas."):
        return (
            f"Invalid config at {key}: value {error.instance!r}. An area needs `points` and "
            "exactly one of `bbox: [lon_min, lat_min, lon_max, lat_max]` or "
            "`center: [lon, lat]` together with `buffer_km`."
        )
    if error.validator == "required":
        return f"Invalid config: {error.message} (at {key}). Add it to the config file."
    return (
        f"Invalid config at {key}: value {error.instance!r} is not valid ({error.message}). "
        "See workflow/schemas/config.schema.yaml for what this key accepts."
    )


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


def _parse_area(name: str, spec: Mapping[str, Any], *, base_dir: Path) -> Area:
    """Build an :class:`Area` from its config entry, checking box and points."""
    if "bbox" in spec:
        bbox = _check_bbox(f"areas.{name}.bbox", tuple(spec["bbox"]))
    else:
        lon, lat = spec["center"]
        _check_lonlat(f"areas.{name}.center", lon, lat)
        bbox = bbox_around(lon, lat, spec["buffer_km"] * 1000.0)
    points_file, points = _read_points(name, spec["points"], base_dir)
    _check_points(name, bbox, points)
    center_lon, center_lat = (bbox[0] + bbox[2]) / 2, (bbox[1] + bbox[3]) / 2
    return Area(
        name=name,
        bbox=bbox,
        crs=utm_crs_for(center_lon, center_lat),
        points=tuple(points),
        points_file=points_file,
        tiles=tuple(spec["tiles"]),
        polygons_file=_polygons_file(name, spec.get("polygons"), base_dir),
    )


def _polygons_file(area: str, spec: str | None, base_dir: Path) -> Path | None:
    """The area's polygons file, which must exist and be GeoJSON or GeoPackage."""
    if spec is None:
        return None
    path = Path(spec) if base_dir.resolve() == Path.cwd().resolve() else base_dir / spec
    if path.suffix.lower() not in (".geojson", ".json", ".gpkg"):
        raise ConfigError(
            f"Invalid config at areas.{area}.polygons: {spec!r} is not a .geojson, .json or "
            ".gpkg file. Convert it, e.g. with ogr2ogr or geopandas."
        )
    if not path.is_file():
        raise ConfigError(
            f"Invalid config at areas.{area}.polygons: file {str(path)!r} not found. Paths "
            "are relative to the working directory."
        )
    return path


def _check_tiles(area: Area, resolution: float, chunk: int) -> None:
    """A split needs at least one whole chunk per tile row and column."""
    if not area.split:
        return
    from ndvicube.cube.tiles import check_split
    from ndvicube.geo import area_geobox

    shape = area_geobox(area.bbox, area.crs, resolution).shape.yx
    check_split(area.name, shape, chunk, *area.tiles)


def _check_lonlat(key: str, lon: float, lat: float) -> None:
    """Longitude in [-180, 180], latitude in [-90, 90]; hint at swapped order."""
    if not (math.isfinite(lon) and math.isfinite(lat)):
        raise ConfigError(f"Invalid config at {key}: ({lon}, {lat}) is not a finite lon, lat.")
    if -90 <= lat <= 90 and -180 <= lon <= 180:
        return
    hint = (
        " It looks like latitude and longitude are swapped: write longitude first."
        if -90 <= lon <= 90 and -180 <= lat <= 180
        else ""
    )
    raise ConfigError(
        f"Invalid config at {key}: lon {lon}, lat {lat} is out of range "
        f"(lon must be in [-180, 180], lat in [-90, 90]).{hint}"
    )


def _check_bbox(key: str, bbox: tuple[float, ...]) -> BBox:
    """A box is (lon_min, lat_min, lon_max, lat_max) with positive width and height."""
    lon_min, lat_min, lon_max, lat_max = (float(v) for v in bbox)
    for lon, lat in ((lon_min, lat_min), (lon_max, lat_max)):
        try:
            _check_lonlat(key, lon, lat)
        except ConfigError as exc:
            raise ConfigError(
                f"{exc} The box is {list(bbox)} = [lon_min, lat_min, lon_max, lat_max]."
            ) from None
    if not (lon_min < lon_max and lat_min < lat_max):
        raise ConfigError(
            f"Invalid config at {key}: value {list(bbox)} is an empty box. Write it as "
            "[lon_min, lat_min, lon_max, lat_max] with lon_min < lon_max and lat_min < lat_max."
        )
    return (lon_min, lat_min, lon_max, lat_max)


#: Encodings a points CSV may be in: UTF-8, with or without the byte-order mark Excel writes
#: ("CSV UTF-8"), which ``utf-8-sig`` drops.
POINTS_ENCODING = "utf-8-sig"


def check_point_id(pid: str, where: str) -> None:
    """The one rule for point ids, inline and in CSVs: they become file names and table keys.

    A letter or digit first (so never ``.``, ``..`` or a hidden file), then letters, digits,
    ``_``, ``.`` or ``-``.
    """
    if pid and pid[0].isalnum() and all(c.isalnum() or c in "_.-" for c in pid):
        return
    raise ConfigError(
        f"Invalid {where}: point id {pid!r} must start with a letter or digit and use only "
        "letters, digits, '_', '.', '-' (it becomes a file name, so '.' and '..' are refused). "
        "Rename the point."
    )


def _read_points(
    area: str, spec: str | list[Mapping[str, Any]], base_dir: Path
) -> tuple[Path | None, list[Point]]:
    """Points come inline or from a CSV with columns id,lon,lat."""
    if isinstance(spec, str):
        path = Path(spec) if base_dir.resolve() == Path.cwd().resolve() else base_dir / spec
        return path, list(_points_from_csv(f"areas.{area}.points", path))
    points = [Point(str(p["id"]), float(p["lon"]), float(p["lat"])) for p in spec]
    for point in points:
        check_point_id(point.id, f"config at areas.{area}.points")
    return None, points


def _points_from_csv(key: str, path: Path) -> Iterator[Point]:
    """Parse a points CSV, naming the file and line of any bad row."""
    if not path.is_file():
        raise ConfigError(
            f"Invalid config at {key}: points file {str(path)!r} does not exist. Give a CSV "
            "with columns id,lon,lat (relative paths are relative to the working directory)."
        )
    try:
        with open(path, newline="", encoding=POINTS_ENCODING) as f:
            reader = csv.DictReader(f)
            missing = {"id", "lon", "lat"} - set(reader.fieldnames or [])
            if missing:
                raise ConfigError(
                    f"Invalid points file {str(path)!r} ({key}): missing column(s) "
                    f"{', '.join(sorted(missing))}; its header is {reader.fieldnames}. "
                    "The header must be id,lon,lat."
                )
            rows = list(reader)
    except UnicodeDecodeError as error:
        raise ConfigError(
            f"Invalid points file {str(path)!r} ({key}): it is not UTF-8 text (byte "
            f"{error.object[error.start : error.start + 1]!r} at offset {error.start} cannot be "
            "decoded; Latin-1 or Windows-1252, as older Excel versions save CSV?). Save it as "
            "UTF-8 (in Excel: Save As > CSV UTF-8; or iconv -f latin1 -t utf-8 in.csv > "
            "out.csv) and run again."
        ) from None
    if not rows:
        raise ConfigError(f"Invalid points file {str(path)!r} ({key}): it has no points.")
    for line, row in enumerate(rows, start=2):
        yield _point_from_row(path, line, row)


def _point_from_row(path: Path, line: int, row: Mapping[str, str]) -> Point:
    """One CSV row to a point; ids must be usable as file names."""
    pid = (row["id"] or "").strip()
    try:
        lon, lat = float(row["lon"]), float(row["lat"])
    except (TypeError, ValueError):
        raise ConfigError(
            f"Invalid points file {str(path)!r}, line {line}: lon {row['lon']!r} / lat "
            f"{row['lat']!r} of point {pid!r} are not numbers. Use decimal degrees."
        ) from None
    check_point_id(pid, f"points file {str(path)!r}, line {line}")
    return Point(pid, lon, lat)


def _check_points(area: str, bbox: BBox, points: list[Point]) -> None:
    """Point ids unique; each point valid and inside its area's box."""
    seen: set[str] = set()
    for p in points:
        if p.id in seen:
            raise ConfigError(
                f"Invalid config at areas.{area}.points: duplicate point id {p.id!r}. "
                "Point ids must be unique within an area; rename one of them."
            )
        seen.add(p.id)
        _check_lonlat(f"areas.{area}.points[{p.id}]", p.lon, p.lat)
        if not _inside(bbox, p.lon, p.lat):
            hint = (
                f" Either the point or the box (areas.{area}.bbox) is written latitude first: "
                "the point falls inside the box only when one of them is swapped. Write "
                "longitude first in both."
                if _inside(bbox, p.lat, p.lon)
                else ""
            )
            raise ConfigError(
                f"Invalid config at areas.{area}.points: point {p.id!r} (lon {p.lon}, lat "
                f"{p.lat}) lies outside the area's box {list(bbox)}.{hint} Move the point, "
                "enlarge the box, or put the point in another area."
            )


def _inside(bbox: BBox, lon: float, lat: float) -> bool:
    """Whether (lon, lat) lies in the box, edges included."""
    return bbox[0] <= lon <= bbox[2] and bbox[1] <= lat <= bbox[3]

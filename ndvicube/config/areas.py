"""The ``areas`` section: boxes, field sets, points (inline or from a CSV) and polygons, checked.

An area is a box (``bbox``, or ``center`` and ``buffer_km``) or a *field set*: ``polygons``
and/or ``points`` without a box, whose box is the lon/lat bounds of its fields
(:func:`ndvicube.fields.field_set_bbox`, which reads the polygons file: only a field set's file
is read here, so a config of boxes does not import geopandas).

What a schema cannot say is checked here: latitude and longitude ranges (with a hint when they
look swapped), empty boxes, points outside their area, duplicate or unusable point ids, points
CSVs that are not UTF-8, polygons files of an unknown format, tile splits smaller than a chunk.
"""

from __future__ import annotations

import csv
import dataclasses
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ndvicube.errors import ConfigError
from ndvicube.fields import FieldLimits, check_fields_suffix, field_set_bbox
from ndvicube.geo import BBox, Point, bbox_around, utm_crs_for


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
    """Fields file (GeoPackage, GeoJSON, GeoParquet, Shapefile) of polygons whose series are
    extracted, if any; screened by the ``fields`` rule into ``fields.parquet``."""
    tiles: tuple[int, int] = (1, 1)
    """Rows and columns of tile jobs the cube is split into (1, 1: one cube job)."""
    plotted_points: tuple[str, ...] = ()
    """Ids of the points drawn in a figure of their own (``figures``), in drawing order."""
    field_set: bool = False
    """Given by its fields (no ``bbox``/``center``): :attr:`bbox` is their lon/lat bounds."""

    @property
    def split(self) -> bool:
        """Whether the cube is built by tile jobs and joined."""
        return self.tiles != (1, 1)


def parse_area(
    name: str,
    spec: Mapping[str, Any],
    *,
    base_dir: Path,
    limits: FieldLimits | None = None,
    resolution: float = 10.0,
) -> Area:
    """Build an :class:`Area` from its config entry, checking box, points and polygons (a field
    set's extent against ``limits``, its grid at ``resolution``)."""
    points_file, points = _read_points(name, spec.get("points"), base_dir)
    polygons_file = _polygons_file(name, spec.get("polygons"), base_dir)
    field_set = "bbox" not in spec and "center" not in spec
    if "bbox" in spec:
        bbox = _check_bbox(f"areas.{name}.bbox", tuple(spec["bbox"]))
    elif "center" in spec:
        lon, lat = spec["center"]
        _check_lonlat(f"areas.{name}.center", lon, lat)
        bbox = bbox_around(lon, lat, spec["buffer_km"] * 1000.0)
    else:
        bbox = _field_set_bbox(name, polygons_file, points, limits, resolution)
    _check_points(name, bbox, points)
    center_lon, center_lat = (bbox[0] + bbox[2]) / 2, (bbox[1] + bbox[3]) / 2
    return Area(
        name=name,
        bbox=bbox,
        crs=utm_crs_for(center_lon, center_lat),
        points=tuple(points),
        points_file=points_file,
        tiles=tuple(spec["tiles"]),
        polygons_file=polygons_file,
        field_set=field_set,
    )


def _field_set_bbox(
    name: str,
    polygons_file: Path | None,
    points: list[Point],
    limits: FieldLimits | None,
    resolution: float,
) -> BBox:
    """The box of a field set: its points checked first (a swapped point would stretch it)."""
    for p in points:
        _check_lonlat(f"areas.{name}.points[{p.id}]", p.lon, p.lat)
    where = f"areas.{name}.polygons" if polygons_file is not None else f"areas.{name}.points"
    return field_set_bbox(polygons_file, points, where=where, limits=limits, resolution=resolution)


def _polygons_file(area: str, spec: str | None, base_dir: Path) -> Path | None:
    """The area's polygons file, which must exist and be in a format ndvicube reads."""
    if spec is None:
        return None
    path = Path(spec) if base_dir.resolve() == Path.cwd().resolve() else base_dir / spec
    check_fields_suffix(path, where=f"config at areas.{area}.polygons")
    if not path.is_file():
        raise ConfigError(
            f"Invalid config at areas.{area}.polygons: file {str(path)!r} not found. Paths "
            "are relative to the working directory."
        )
    return path


def check_tiles(area: Area, resolution: float, chunk: int) -> None:
    """A split needs at least one whole chunk per tile row and column (a field set's tiles
    share its touched chunks instead, :func:`ndvicube.fields.chunks.split_chunks`: any split)."""
    if not area.split or area.field_set:
        return
    from ndvicube.cube.tiles import check_split
    from ndvicube.geo import area_geobox

    shape = area_geobox(area.bbox, area.crs, resolution).shape.yx
    check_split(area.name, shape, chunk, *area.tiles)


def with_plotted_points(areas: dict[str, Area], figures: Mapping[str, Any]) -> dict[str, Area]:
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


#: Area names: ASCII letters, digits, '_' and '-', a letter or digit first (as the schema says;
#: its pattern's ``$`` lets a trailing line break through, as Python's ``re`` matches it there).
AREA_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")


def check_area_name(name: object) -> None:
    """An area name becomes the folder ``results/{name}/`` and a Snakemake wildcard value, so it
    is refused before anything is made (``"seed\\n"`` made ``results/seed\\n/`` and the cube
    job then died with a traceback)."""
    if isinstance(name, str) and AREA_NAME.fullmatch(name):
        return
    if not isinstance(name, str):
        why = f"is not text (YAML read the unquoted key as {type(name).__name__}): quote it"
    elif not name:
        why = "is empty"
    else:
        # Each character checked where it stands: first, or after an allowed one ("a").
        at = next(i for i, c in enumerate(name) if not AREA_NAME.fullmatch("a" * (i > 0) + c))
        why = f"has {name[at]!r} at position {at}"
    raise ConfigError(
        f"Invalid config at areas: area name {name!r} {why}. An area name must start with a "
        "letter or digit and use only letters, digits, '_' and '-' (ASCII; it becomes the folder "
        "results/<name>/ and a Snakemake wildcard). Rename the area."
    )


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
    area: str, spec: str | list[Mapping[str, Any]] | None, base_dir: Path
) -> tuple[Path | None, list[Point]]:
    """Points come inline or from a CSV with columns id,lon,lat (an area of polygons may have
    none)."""
    if spec is None:
        return None, []
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

"""Reading a fields file: GeoPackage, GeoJSON, GeoParquet or Shapefile, any CRS, an ``id`` column.

The one reader of polygons in ndvicube: the config reads a field set's file with it to size the
area, the ``fields`` job to screen the fields, the polygon series to read ``fields.parquet``.
Nothing is dropped or reprojected here (that is :mod:`ndvicube.fields.checks`' and the caller's
business); a file that cannot be used at all - unknown format, unreadable, no ``id`` column, no
CRS, coordinates that cannot be the degrees its CRS says (metres in a GeoJSON without a CRS) -
raises a :class:`~ndvicube.errors.ConfigError` saying how to fix it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ndvicube.errors import ConfigError

if TYPE_CHECKING:
    import geopandas as gpd

#: File suffix -> format of the fields files ndvicube reads (GeoParquet needs pyarrow).
FORMATS = {
    ".gpkg": "GeoPackage",
    ".geojson": "GeoJSON",
    ".json": "GeoJSON",
    ".parquet": "GeoParquet",
    ".shp": "Shapefile",
}


def check_fields_suffix(path: str | Path, *, where: str) -> None:
    """Refuse a file whose suffix is not one of :data:`FORMATS` (without opening it).

    ``where`` names the config key or job in the message.
    """
    if Path(path).suffix.lower() not in FORMATS:
        raise ConfigError(
            f"Invalid {where}: {str(path)!r} is not a fields file ndvicube reads. Give a "
            f"GeoPackage (.gpkg), GeoJSON (.geojson, .json), GeoParquet (.parquet) or Shapefile "
            "(.shp) with an `id` column; convert others with ogr2ogr or geopandas."
        )


def read_fields(path: str | Path, *, where: str = "fields file") -> gpd.GeoDataFrame:
    """The rows of a fields file as columns ``id`` (str) and ``geometry``, in the file's CRS.

    Every row is kept, empty, missing or invalid geometries and repeated ids included, so that
    screening can say what became of each. Integer ids stay integers in text (``7``, not
    ``7.0``, even where a missing id made the column float); a missing id is ``""``.

    >>> read_fields("parcels.gpkg").crs.to_epsg()  # doctest: +SKIP
    32644
    """
    path = Path(path)
    check_fields_suffix(path, where=where)
    frame = _read(path, where)
    if "id" not in frame.columns:
        others = ", ".join(c for c in frame.columns if c != frame.geometry.name) or "none"
        raise ConfigError(
            f"Invalid {where}: {str(path)!r} has no `id` column (its columns: {others}). Add "
            "one naming each field; it becomes the `polygon` column of the series."
        )
    if frame.crs is None:
        raise ConfigError(
            f"Invalid {where}: {str(path)!r} declares no CRS, so its coordinates cannot be "
            "placed. Write it with one (e.g. geopandas: frame.set_crs('EPSG:4326'))."
        )
    _check_degrees(frame, path, where)
    frame = frame.rename_geometry("geometry") if frame.geometry.name != "geometry" else frame
    return frame.assign(id=_ids_as_text(frame["id"]))[["id", "geometry"]]


def _check_degrees(frame: gpd.GeoDataFrame, path: Path, where: str) -> None:
    """A file in degrees (as every GeoJSON without a CRS is read) must hold degrees: metres
    written without their CRS (EPSG:3857 or UTM from a web tool) would otherwise pass as
    degrees and be searched for a box of millions of degrees."""
    import numpy as np

    if not frame.crs.is_geographic or frame.empty:
        return
    x0, y0, x1, y1 = frame.geometry.total_bounds
    if not np.isfinite([x0, y0, x1, y1]).all():
        return
    if x0 >= -180 and x1 <= 180 and y0 >= -90 and y1 <= 90:
        return
    raise ConfigError(
        f"Invalid {where}: {str(path)!r} is read as degrees ({frame.crs.to_string()}), but its "
        f"coordinates reach x {x0:.1f} .. {x1:.1f}, y {y0:.1f} .. {y1:.1f}, outside lon "
        "[-180, 180] and lat [-90, 90]: they are not degrees, probably projected metres "
        "(EPSG:3857 or UTM) written without a CRS (a GeoJSON without a `crs` member is read as "
        "EPSG:4326). Reproject the file to EPSG:4326 (ogr2ogr -s_srs EPSG:3857 -t_srs EPSG:4326 "
        "out.geojson in.geojson), or write it as a GeoPackage that declares its CRS."
    )


def _read(path: Path, where: str) -> gpd.GeoDataFrame:
    """The file read by its format; a missing or unreadable file is a ConfigError."""
    import geopandas as gpd

    if not path.is_file():
        raise ConfigError(
            f"Invalid {where}: file {str(path)!r} not found. Paths are relative to the working "
            "directory."
        )
    try:
        if path.suffix.lower() == ".parquet":
            return gpd.read_parquet(path)
        return gpd.read_file(path)
    except (OSError, ValueError, RuntimeError) as error:  # pyogrio's errors are these kinds
        raise ConfigError(
            f"Invalid {where}: {str(path)!r} cannot be read as {FORMATS[path.suffix.lower()]} "
            f"({type(error).__name__}: {error}). Check the file, or write it again."
        ) from None


def _ids_as_text(ids):
    """Ids as strings: whole floats without their ``.0``, missing values empty."""
    import pandas as pd

    if pd.api.types.is_float_dtype(ids) and (ids.dropna() % 1 == 0).all():
        ids = ids.astype("Int64")
    return ids.astype("string").fillna("").astype(object).map(str).str.strip()

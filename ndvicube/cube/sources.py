"""What the cube engine reads of each item, planned from the items' JSON with odc-geo: per
asset its href, band metadata and grid, per item the footprint that decides which chunks it
touches, and per asset the load config (dtype, fill value) - exactly what odc-stac's
``parse_items`` and odc-loader's ``resolve_load_cfg`` give for the same items.

Why not call them: importing odc-stac (odc-loader with it) imports xarray, pandas, dask.array,
rasterio and scipy, 1.1 s of the cube job's 2 s of imports on this machine, and the remote
reader uses none of them (docs/performance.md, "The cube job's imports"). The planning here
covers the items the cube job meets (Sentinel-2 L2A of Earth Search and the Planetary
Computer, the demo catalog): one collection, the projection extension on every item, every
asset read with its own grid, one band per asset. For any other shape :func:`plan_sources`
answers None and the engine plans with odc-stac itself. ``tests/test_imports.py`` compares the
two on the demo catalog, overlapping scenes and the real Earth Search items.

The types mirror odc-loader's (``RasterBandMetadata``, ``RasterLoadParams``,
``RasterSource``, same fields and defaults) and become them (:func:`as_odc`) where GDAL reads,
through odc-loader's reader.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pystac
    from odc.geo.geobox import GeoBox
    from odc.geo.geom import Geometry

#: odc-stac's defaults for a band whose STAC says nothing (odc-loader's ``BAND_DEFAULTS``).
DEFAULT_DTYPE, DEFAULT_UNITS = "float32", "1"
#: Roles and media types odc-stac takes for raster data (``odc.stac._mdtools``' rules).
THUMBNAIL_ROLES = {"thumbnail", "overview"}
RASTER_EXTENSIONS = {"tif", "tiff", "jpeg", "jpg", "jp2", "img", "hdf", "nc", "zarr"}
NON_IMAGE_RASTER_TYPES = {
    "application/x-hdf", "application/x-hdf5", "application/hdf", "application/hdf5",
    "application/x-netcdf", "application/netcdf", "application/x-zarr", "application/zarr",
}  # fmt: skip
_DATA_VALUES = ("nodata", "data_type", "unit")
PROJECTION_SCHEMA = "https://stac-extensions.github.io/projection/"
#: A footprint odc-stac picks among grids in a set's order: left to odc-stac.
_AMBIGUOUS: Any = object()


@dataclass(frozen=True)
class BandMeta:
    """A band's dtype, nodata and units (odc-loader's ``RasterBandMetadata``)."""

    data_type: str | None = None
    nodata: float | None = None
    units: str = DEFAULT_UNITS
    dims: tuple[str, ...] = ()
    driver_data: Any = None
    attrs: dict[str, Any] = field(default_factory=dict)

    def to_odc(self) -> Any:
        from odc.loader import RasterBandMetadata

        return RasterBandMetadata(
            self.data_type, self.nodata, self.units, self.dims, self.driver_data, self.attrs
        )


@dataclass(frozen=True)
class LoadParams:
    """How one asset is loaded: dtype and fill value of the cube's read grid (odc-loader's
    ``RasterLoadParams``, as ``resolve_load_cfg(..., "nearest", fail_on_error=True)`` sets it)."""

    dtype: str | None = None
    fill_value: float | None = None
    src_nodata_fallback: float | None = None
    src_nodata_override: float | None = None
    use_overviews: bool = True
    resampling: str = "nearest"
    fail_on_error: bool = True
    dims: tuple[str, ...] = ()
    meta: BandMeta | None = None
    fuser_fqn: str | None = None

    @property
    def nearest(self) -> bool:
        """Whether nearest-neighbour resampling is used."""
        return self.resampling == "nearest"

    def to_odc(self) -> Any:
        from odc.loader import RasterLoadParams

        return RasterLoadParams(
            self.dtype, self.fill_value, self.src_nodata_fallback, self.src_nodata_override,
            self.use_overviews, self.resampling, self.fail_on_error, self.dims,
            None if self.meta is None else self.meta.to_odc(), self.fuser_fqn,
        )  # fmt: skip


@dataclass(frozen=True)
class RasterRef:
    """One band of one asset: where it is, its grid and metadata (odc-loader's
    ``RasterSource``)."""

    uri: str
    band: int = 1
    subdataset: str | None = None
    geobox: GeoBox | None = None
    meta: BandMeta | None = None
    driver_data: Any = None

    def to_odc(self) -> Any:
        from odc.loader import RasterSource

        meta = None if self.meta is None else self.meta.to_odc()
        return RasterSource(
            self.uri, self.band, self.subdataset, self.geobox, meta, self.driver_data
        )


def as_odc(value: Any) -> Any:
    """odc-loader's own type of a :class:`LoadParams` or :class:`RasterRef` (what its GDAL
    reader takes); odc-loader's objects (planned by odc-stac) as they are."""
    return value.to_odc() if hasattr(value, "to_odc") else value


@dataclass(frozen=True)
class PlannedSources:
    """What :func:`plan_sources` gives: per item, its assets' bands and its footprint; per
    asset, the load config (the first item's metadata, as odc-stac resolves it)."""

    rasters: dict[str, dict[str, RasterRef]]
    footprints: dict[str, Geometry | None]
    cfgs: dict[str, LoadParams]


def plan_sources(
    items: Sequence[pystac.Item], assets: Sequence[str], crs: Any
) -> PlannedSources | None:
    """The rasters, footprints (in ``crs``) and load configs of ``assets`` of ``items`` (in
    the order odc-stac parses them), or None when the items are not of the shape planned here
    (see the module docstring): then odc-stac plans them."""
    if not items or len({i.collection_id for i in items}) != 1:
        return None
    parsed = [_parse(item, assets) for item in items]
    if any(p is None for p in parsed):
        return None
    if any(set(p[2]) != set(parsed[0][2]) for p in parsed):  # (odc-stac regroups new assets)
        return None
    if not _grids_consistent(items[0], parsed[0][2], parsed):
        return None
    rasters = {item.id: p[0] for item, p in zip(items, parsed, strict=True)}
    footprints = {item.id: _footprint(p[2], crs) for item, p in zip(items, parsed, strict=True)}
    if any(f is _AMBIGUOUS for f in footprints.values()):
        return None
    first = parsed[0][0]
    cfgs = {a: _load_params(first[a].meta) for a in assets}
    return PlannedSources(rasters, footprints, cfgs)


def planned_sources(
    items: Sequence[pystac.Item], assets: Sequence[str], crs: Any
) -> PlannedSources:
    """:func:`plan_sources`, or odc-stac's plan where that answers None."""
    if not items:
        return PlannedSources({}, {}, {})
    return plan_sources(items, assets, crs) or odc_stac_sources(items, assets, crs)


def odc_stac_sources(
    items: Sequence[pystac.Item], assets: Sequence[str], crs: Any
) -> PlannedSources:
    """The same plan by odc-stac's ``parse_items`` and odc-loader's ``resolve_load_cfg``
    (odc-loader's types): the reference :func:`plan_sources` is tested against, and the plan
    of items it does not cover."""
    from odc.loader import resolve_load_cfg
    from odc.stac import parse_items

    parsed = list(parse_items(items))
    collection = parsed[0].collection  # (its bands: the first item's)
    cfgs = resolve_load_cfg(collection.resolve_bands(list(assets)), "nearest", fail_on_error=True)
    return PlannedSources(
        {p.id: {a: p.bands[(a, 1)] for a in assets} for p in parsed},
        {p.id: p.safe_geometry(crs) for p in parsed},
        dict(cfgs),
    )


def _parse(item: pystac.Item, assets: Sequence[str]) -> tuple | None:
    """``({asset: RasterRef}, {asset: BandMeta}, {data asset: GeoBox})`` of one item, or None
    when one of ``assets`` is missing, has no grid or several bands, or the item lacks the
    projection extension."""
    if not _has_proj_ext(item):
        return None
    grids: dict[str, GeoBox] = {}
    for name, asset in item.assets.items():
        if _is_raster_data(asset):  # with the projection extension: those with a grid
            grid = _asset_geobox(asset)
            if grid is None:
                return None
            grids[name] = grid
    rasters, metas = {}, {}
    for name in assets:
        asset = item.assets.get(name)
        if asset is None or name not in grids:
            return None
        bands = _band_metadata(item, asset)
        if len(bands) != 1:
            return None
        uri = asset.get_absolute_href()
        if uri is None:
            return None
        rasters[name] = RasterRef(uri, 1, None, grids[name], bands[0], None)
        metas[name] = bands[0]
    return rasters, metas, grids


def _has_proj_ext(item: pystac.Item) -> bool:
    """Whether the item declares the projection extension (any of its schema versions)."""
    return any(e.startswith(PROJECTION_SCHEMA) for e in item.stac_extensions)


def _proj(asset: pystac.Asset, key: str) -> Any:
    """A projection field of the asset, else of its item (pystac's ``ProjectionExtension``
    reads them so; that class comes in a distribution of its own, not needed for 4 fields)."""
    value = asset.extra_fields.get(key)
    if value is None and asset.owner is not None and hasattr(asset.owner, "properties"):
        value = asset.owner.properties.get(key)
    return value


def _crs_string(asset: pystac.Asset) -> str | None:
    """``proj:code``, else ``EPSG:{proj:epsg}``, ``proj:wkt2``, ``proj:projjson`` (pystac's
    ``crs_string``)."""
    if code := _proj(asset, "proj:code"):
        return code
    if epsg := _proj(asset, "proj:epsg"):
        return f"EPSG:{epsg}"
    if wkt2 := _proj(asset, "proj:wkt2"):
        return wkt2
    if projjson := _proj(asset, "proj:projjson"):
        return json.dumps(projjson)
    return None


def _has_proj_data(asset: pystac.Asset) -> bool:
    return _proj(asset, "proj:shape") is not None and _proj(asset, "proj:transform") is not None


def _is_raster_data(asset: pystac.Asset) -> bool:
    """odc-stac's test of a raster data asset, for an item with the projection extension."""
    if not _has_proj_data(asset):
        return False
    roles = set(asset.roles or [])
    if asset.media_type is None:
        if "data" in roles:
            return True
        if "metadata" in roles:
            return False
        return asset.href.split(".")[-1].lower() in RASTER_EXTENSIONS
    media_type = asset.media_type.split(";")[0].lower()
    if media_type.startswith("image/"):
        return not roles & THUMBNAIL_ROLES
    return media_type in NON_IMAGE_RASTER_TYPES


def _asset_geobox(asset: pystac.Asset) -> GeoBox | None:
    """The asset's grid from its projection fields (odc-stac's ``asset_geobox``); None where
    odc-stac would refuse it."""
    from affine import Affine
    from odc.geo import wh_
    from odc.geo.geobox import GeoBox

    shape, t, crs = _proj(asset, "proj:shape"), _proj(asset, "proj:transform"), _crs_string(asset)
    if shape is None or t is None or crs is None:
        return None
    if len(t) not in (6, 9) or (len(t) == 9 and list(t[-3:]) != [0, 0, 1]):
        return None
    h, w = shape
    return GeoBox(wh_(w, h), Affine(*t[:6]), crs)


def _band_metadata(item: pystac.Item, asset: pystac.Asset) -> list[BandMeta]:
    """The asset's bands' metadata: STAC 1.1's ``nodata``/``data_type``/``unit`` of the item
    and asset (and ``bands``), else ``raster:bands`` (odc-stac's ``band_metadata``)."""
    doc = asset.to_dict()
    parent = _data_values(item.properties) | _data_values(doc)
    bands = (
        [parent] if doc.get("bands") is None else [parent | _data_values(b) for b in doc["bands"]]
    )
    raster_bands = doc.get("raster:bands")
    if raster_bands is not None and all(b == {} for b in bands):
        bands = [_data_values(b) for b in raster_bands]
    if not bands:
        return [BandMeta(DEFAULT_DTYPE, None, DEFAULT_UNITS)]
    return [
        BandMeta(
            _default(b.get("data_type"), DEFAULT_DTYPE),
            _norm_nodata(b.get("nodata")),
            _default(b.get("unit"), DEFAULT_UNITS),
        )
        for b in bands
    ]


def _data_values(values: dict) -> dict:
    return {k: v for k in _DATA_VALUES if (v := values.get(k)) is not None}


def _default(value: Any, default: Any) -> Any:
    return default if value is None else value


def _norm_nodata(nodata: Any) -> float | None:
    if nodata is None or isinstance(nodata, int | float):
        return nodata
    return float(nodata)


def _grids_consistent(first: pystac.Item, grids0: dict, parsed: list) -> bool:
    """Whether every item's assets that odc-stac puts on one named grid (those sharing a grid
    in the first item) have one grid in it too: odc-stac gives them all the first one's, we
    each its own. Else odc-stac plans."""
    named: dict[Any, list[str]] = {}
    for name, grid in grids0.items():
        named.setdefault(grid, []).append(name)
    groups = [names for names in named.values() if len(names) > 1]
    return all(len({p[2][n] for n in names}) == 1 for p in parsed for names in groups)


def _footprint(grids: dict[str, GeoBox], crs: Any) -> Geometry | None:
    """The item's footprint in ``crs``: its finest grid's (odc-stac's ``safe_geometry``,
    which looks at every data asset)."""
    unique = set(grids.values())
    finest = min(min(abs(r) for r in g.resolution.xy) for g in unique)
    candidates = [g for g in unique if min(abs(r) for r in g.resolution.xy) == finest]
    if len(candidates) != 1:  # odc-stac's pick among these follows a set's order
        return _AMBIGUOUS
    grid = candidates[0]
    if grid.crs == crs:
        return grid.extent
    return grid.footprint(crs, wrapdateline=True)


def _load_params(meta: BandMeta) -> LoadParams:
    """odc-loader's ``resolve_load_cfg`` of one band, nearest resampling, failing on error."""
    return LoadParams(
        _default(meta.data_type, DEFAULT_DTYPE), meta.nodata, None, None, True, "nearest", True,
        meta.dims, meta,
    )  # fmt: skip

"""Lines ndvicube owns instead of importing another library's private modules (issue 33) behave
as the library does, checked through the library's public API on real files:

* :mod:`ndvicube.read.nodata` (odc-loader's nodata rules): against :class:`odc.loader.RioReader`,
  odc-loader's public reader, on a GeoTIFF with nodata pixels and NaNs;
* :func:`ndvicube.read.vsi.vsi_path` (rasterio's path parsing): against the GDAL path rasterio
  opens (``DatasetReader.files``) for a local file and a zipped one; remote URIs against the paths
  rasterio 1.4.4 gives.

The engine's paths through them are covered by the cube tests: the range reader gives the cube
GDAL gives byte for byte (tests/test_cogs.py), the engine's store equals odc-stac's lazy load
(tests/test_cube_synthetic.py).
"""

from __future__ import annotations

import math
import zipfile

import numpy as np
import pytest
import rasterio
from odc.geo.geobox import GeoBox
from odc.loader import (
    RasterLoadParams,
    RasterSource,
    RioReader,
    resolve_dst_dtype,
    resolve_dst_nodata,
    resolve_src_nodata,
)
from rasterio.transform import from_origin

from ndvicube.read.nodata import dst_fill_value, nodata_mask, same_nodata
from ndvicube.read.vsi import vsi_path

NAN = float("nan")


def _geotiff(path, values: np.ndarray, nodata) -> GeoBox:
    """A one-band GeoTIFF of ``values`` in EPSG:32633 (10 m pixels); its grid."""
    transform = from_origin(500_000, 4_000_000, 10, 10)
    profile = dict(driver="GTiff", width=values.shape[1], height=values.shape[0], count=1)
    profile |= dict(dtype=values.dtype, crs="EPSG:32633", transform=transform, nodata=nodata)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(values, 1)
    return GeoBox(values.shape, transform, "EPSG:32633")


def _as_ndvicube_reads(pix: np.ndarray, src_nodata, cfg) -> np.ndarray:
    """What ndvicube's range reader does with a pasted window (remote_window.settle_window)."""
    out = pix.astype(resolve_dst_dtype(pix.dtype.name, cfg))
    src = resolve_src_nodata(src_nodata, cfg)
    dst = resolve_dst_nodata(out.dtype, cfg, src)
    if dst is not None and not same_nodata(src, dst):
        np.copyto(out, dst, where=nodata_mask(out, src))
    return out


@pytest.mark.parametrize(
    ("dtype", "file_nodata", "cfg"),
    [
        ("uint16", 0, RasterLoadParams(dtype="float32")),  # 0 -> NaN
        ("uint16", 0, RasterLoadParams(dtype="uint16", fill_value=7)),  # 0 -> 7
        ("uint16", None, RasterLoadParams(dtype="uint16", src_nodata_fallback=3)),  # 3 kept
        ("uint16", 0, RasterLoadParams(dtype="uint16", src_nodata_override=5, fill_value=9)),
        ("float32", NAN, RasterLoadParams(dtype="float32", fill_value=-1)),  # NaN -> -1
        ("float32", -9999, RasterLoadParams(dtype="float32")),  # -9999 and NaN -> NaN
        ("int16", None, RasterLoadParams(dtype="int16")),  # no nodata at all: kept
    ],
)
def test_nodata_rules_match_odc_loaders_public_reader(tmp_path, dtype, file_nodata, cfg):
    values = (np.arange(20).reshape(4, 5) % 6).astype(dtype)
    if values.dtype.kind == "f":
        values[0, 0] = NAN
        values[1, 1] = -9999
    path = tmp_path / "band.tif"
    box = _geotiff(path, values, file_nodata)
    roi, theirs = RioReader(RasterSource(str(path)), None).read(cfg, box)
    ours = _as_ndvicube_reads(values, file_nodata, cfg)
    assert roi == (slice(0, 4), slice(0, 5))
    assert theirs.dtype == ours.dtype
    np.testing.assert_array_equal(theirs, ours)  # NaNs in the same places


def test_nodata_helpers_on_their_edge_values():
    assert same_nodata(None, None) and same_nodata(NAN, NAN) and same_nodata(0, 0.0)
    assert not same_nodata(None, 0) and not same_nodata(0, None) and not same_nodata(NAN, 0)
    pix = np.array([NAN, 0.0, 5.0], dtype="float32")
    assert nodata_mask(pix, None).tolist() == [True, False, False]
    assert nodata_mask(pix, 0).tolist() == [True, True, False]
    assert nodata_mask(np.array([0, 3], dtype="uint16"), None).tolist() == [False, False]
    assert nodata_mask(np.array([0, 3], dtype="uint16"), 3).tolist() == [False, True]
    assert math.isnan(dst_fill_value(np.dtype("float32"), RasterLoadParams()))
    assert dst_fill_value(np.dtype("uint16"), RasterLoadParams()) == 0  # no nodata anywhere
    assert dst_fill_value(np.dtype("uint16"), RasterLoadParams(), 65535) == 65535
    assert dst_fill_value(np.dtype("uint16"), RasterLoadParams(fill_value=7), 0) == 7


def test_vsi_path_is_the_file_gdal_opens(tmp_path):
    tif = tmp_path / "a.tif"
    _geotiff(tif, np.ones((2, 3), dtype="uint8"), None)
    with zipfile.ZipFile(tmp_path / "a.zip", "w") as archive:
        archive.write(tif, "in/a.tif")
    uris = [str(tif), f"file://{tif}", f"zip://{tmp_path}/a.zip!/in/a.tif"]
    uris.append(f"zip+file://{tmp_path}/a.zip!in/a.tif")
    for uri in uris:
        with rasterio.open(uri) as dataset:
            assert dataset.files[0] == vsi_path(uri), uri
    # Remote ones, as rasterio 1.4.4 maps them (the query string kept: a signed URL's token).
    assert vsi_path("https://h:8080/a.tif?se=2030&sig=a%2Fb") == (
        "/vsicurl/https://h:8080/a.tif?se=2030&sig=a%2Fb"
    )
    assert vsi_path("s3://bucket/k/a.tif") == "/vsis3/bucket/k/a.tif"
    assert vsi_path("zip+s3://b/a.zip!c.tif") == "/vsizip/vsis3/b/a.zip/c.tif"
    assert vsi_path("/vsicurl/https://h/a.tif") == "/vsicurl/https://h/a.tif"
    assert vsi_path("unknown://h/a.tif") == "unknown://h/a.tif"

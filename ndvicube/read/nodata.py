"""Nodata policy of a read, as odc-loader applies it to what GDAL read: which pixels are nodata,
whether a source's nodata differs from the cube's, and the value an empty block starts from.

Both readers (the remote one and GDAL's) and the fuser of a write block use these, so the three
agree pixel for pixel with odc-stac's own loads. odc-loader keeps ``same_nodata``,
``nodata_mask`` and ``resolve_dst_fill_value`` in a private module (``odc.loader._reader``), which
any release may rename or change; the few lines are owned here instead. They are copied from
odc-loader 0.6.5 (Copyright (c) 2015-2020 ODC Contributors, Apache-2.0,
https://github.com/opendatacube/odc-loader).

So are the three public functions they build on (``odc.loader.resolve_src_nodata``,
``resolve_dst_dtype`` and ``resolve_dst_nodata``, four lines each): importing ``odc.loader``
for them imports xarray, pandas, dask.array, rasterio and scipy (1.1 s of the cube job's 2 s of
imports, docs/performance.md "The cube job's imports"), which the remote reader never uses.
``tests/test_imports.py`` checks the copies against odc-loader's own.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def resolve_src_nodata(nodata: float | None, cfg: Any) -> float | None:
    """The nodata value of a source file's pixels under the load config ``cfg``: its override,
    else the file's own, else its fallback (odc-loader's ``resolve_src_nodata``)."""
    if cfg.src_nodata_override is not None:
        return cfg.src_nodata_override
    if nodata is not None:
        return nodata
    return cfg.src_nodata_fallback


def resolve_dst_dtype(src_dtype: str, cfg: Any) -> np.dtype:
    """The dtype a source is read into: the config's, else the file's (odc-loader's
    ``resolve_dst_dtype``)."""
    if cfg.dtype is None:
        return np.dtype(src_dtype)
    return np.dtype(cfg.dtype)


def resolve_dst_nodata(
    dst_dtype: np.dtype, cfg: Any, src_nodata: float | None = None
) -> float | None:
    """The nodata of what is read: the config's fill value, NaN for floats, else the source's
    (odc-loader's ``resolve_dst_nodata``)."""
    if cfg.fill_value is not None:
        return dst_dtype.type(cfg.fill_value)
    if dst_dtype.kind == "f":
        return np.nan
    if src_nodata is not None:
        return dst_dtype.type(src_nodata)
    return None


def same_nodata(a: float | None, b: float | None) -> bool:
    """Whether two nodata values mark the same pixels: both absent, both NaN or equal.

    (odc-loader's ``same_nodata``.) ``same_nodata(nan, nan)`` is True where ``nan == nan`` is not.
    """
    if a is None:
        return b is None
    if b is None:
        return False
    if math.isnan(a):
        return math.isnan(b)
    return a == b


def nodata_mask(pix: np.ndarray, nodata: float | None) -> np.ndarray:
    """Where ``pix`` is nodata: equal to ``nodata``, or NaN for a float array (whatever
    ``nodata`` is); nowhere for an integer array without a nodata value.

    (odc-loader's ``nodata_mask``.) For example, ``nodata_mask(np.array([0, 3]), 0)`` is
    ``[True, False]``.
    """
    if pix.dtype.kind == "f":
        if nodata is None or math.isnan(nodata):
            return np.isnan(pix)
        return np.bitwise_or(np.isnan(pix), pix == nodata)
    if nodata is None:
        return np.zeros_like(pix, dtype="bool")
    return pix == nodata


def dst_fill_value(dst_dtype: np.dtype, cfg: Any, src_nodata: float | None = None) -> Any:
    """The value a block of ``dst_dtype`` starts from before sources are pasted in: the
    destination nodata of the load config ``cfg`` (an ``odc.loader.RasterLoadParams``), NaN for
    floats, else 0 when there is no nodata at all.

    (odc-loader's ``resolve_dst_fill_value``.)
    """
    nodata = resolve_dst_nodata(dst_dtype, cfg, src_nodata)
    if nodata is None:
        return dst_dtype.type(0)
    return nodata

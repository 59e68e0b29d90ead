"""Nodata policy of a read, as odc-loader applies it to what GDAL read: which pixels are nodata,
whether a source's nodata differs from the cube's, and the value an empty block starts from.

Both readers (the remote one and GDAL's) and the fuser of a write block use these, so the three
agree pixel for pixel with odc-stac's own loads. odc-loader keeps ``same_nodata``,
``nodata_mask`` and ``resolve_dst_fill_value`` in a private module (``odc.loader._reader``), which
any release may rename or change; the few lines are owned here instead. They are copied from
odc-loader 0.6.5 (Copyright (c) 2015-2020 ODC Contributors, Apache-2.0,
https://github.com/opendatacube/odc-loader), and what they build on,
:func:`odc.loader.resolve_dst_nodata`, is odc-loader's public API.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from odc.loader import resolve_dst_nodata


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

"""The cloud and nodata mask: which pixels of a scene are clear observations.

A pixel is kept only if its red and nir digital numbers are not the asset's nodata value (0 on
Earth Search), its scene classification (SCL) is not nodata, and its SCL class is not one of the
masked classes - by default the origin notebook's 3 (cloud shadow), 8 (cloud, medium
probability), 9 (cloud, high probability) and 10 (thin cirrus).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import numpy as np
import xarray as xr

#: The origin notebook's masked SCL classes: shadow, medium/high-probability cloud, cirrus.
DEFAULT_SCL_CLASSES: tuple[int, ...] = (3, 8, 9, 10)

#: SCL value for "no data".
SCL_NODATA = 0

ArrayT = TypeVar("ArrayT", np.ndarray, xr.DataArray)


def clear_mask(
    red_dn: ArrayT,
    nir_dn: ArrayT,
    scl: ArrayT,
    *,
    red_nodata: float | None = 0,
    nir_nodata: float | None = 0,
    scl_classes: Sequence[int] = DEFAULT_SCL_CLASSES,
) -> ArrayT:
    """True where the pixel is a clear, valid observation (works on numpy and xarray alike)."""
    valid = scl != SCL_NODATA
    if red_nodata is not None:
        valid = valid & (red_dn != red_nodata)
    if nir_nodata is not None:
        valid = valid & (nir_dn != nir_nodata)
    for cls in scl_classes:
        valid = valid & (scl != cls)
    return valid

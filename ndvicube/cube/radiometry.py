"""Digital numbers to reflectance (the indices are computed from it: :mod:`.indices`).

Kept as plain array functions so the same code serves the cube (xarray/dask) and the tests
(numpy), and so the property tests can probe them directly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

import numpy as np

if TYPE_CHECKING:  # the cube engine's blocks pass numpy arrays: xarray is not imported for them
    import xarray as xr

ArrayT = TypeVar("ArrayT", np.ndarray, "xr.DataArray")


def to_reflectance(dn: ArrayT, scale: float | ArrayT, offset: float | ArrayT) -> ArrayT:
    """Surface reflectance ``dn * scale + offset`` in float32.

    ``scale``/``offset`` come from the item's ``raster:bands`` (0.0001 and -0.1 for Earth
    Search baseline >= 04.00); they may be arrays along time when items differ.
    """
    return dn.astype("float32") * _as_float32(scale) + _as_float32(offset)


def _as_float32(value: float | ArrayT) -> np.float32 | ArrayT:
    """Keep arithmetic in float32 (half the memory of float64, error ~1e-7 on NDVI)."""
    if isinstance(value, np.ndarray) or hasattr(value, "dims"):  # numpy or xarray
        return value.astype("float32")
    return np.float32(value)

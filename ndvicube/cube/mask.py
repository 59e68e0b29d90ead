"""The cloud and nodata mask: which pixels of a scene are clear observations.

A pixel is kept only if the digital numbers of every band read are not their asset's nodata
value (0 on Earth Search), its scene classification (SCL) is not nodata, and its SCL class is
not one of the masked classes - by default the origin notebook's 3 (cloud shadow), 8 (cloud,
medium probability), 9 (cloud, high probability) and 10 (thin cirrus).

Optionally the masked classes are grown by a buffer (``cloud_mask.buffer_m``): SCL misses the
thin, bright rims of clouds and the edges of their shadows, so pixels within a few tens of metres
of a masked pixel are masked too. The dilation is a disk of ``buffer_px`` pixels per scene,
computed across Dask chunk borders (``map_overlap``), so a tiled cube is masked exactly as a
whole one; only clouds outside the area's box are not seen.

Optionally, too, the ``cloud`` asset of Earth Search's collection 1 items (the L2A cloud
probability, %, 20 m) masks pixels above ``cloud_mask.max_probability``: it catches the thin rims
and haze that SCL leaves clear.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, TypeVar

import numpy as np

if TYPE_CHECKING:  # the cube engine's blocks pass numpy arrays: xarray is not imported for them
    import xarray as xr

from ndvicube.cube.spec import DEFAULT_SCL_CLASSES

#: SCL value for "no data".
SCL_NODATA = 0

ArrayT = TypeVar("ArrayT", np.ndarray, "xr.DataArray")


def clear_mask(
    scl: ArrayT,
    bands: Sequence[tuple[ArrayT, float | None]] = (),
    *,
    scl_classes: Sequence[int] = DEFAULT_SCL_CLASSES,
    buffer_px: int = 0,
    cloud: ArrayT | None = None,
    max_cloud_probability: float | None = None,
) -> ArrayT:
    """True where the pixel is a clear, valid observation (works on numpy and xarray alike).

    ``bands`` are the digital numbers of every reflectance asset read, each with its nodata
    value (None: it has none): a pixel where any of them is nodata is no observation, so every
    index of the cube shares one mask and one count of valid pixels. With ``buffer_px``, pixels
    within that many pixels of a masked SCL class are masked too; ``scl`` must then be
    (time, y, x) or (y, x). With ``max_cloud_probability``, pixels whose ``cloud`` probability
    (%) is above it are masked as well.
    """
    valid = scl != SCL_NODATA
    for dn, nodata in bands:
        if nodata is not None:
            valid = valid & (dn != nodata)
    masked = _masked_classes(scl, scl_classes)
    if buffer_px > 0:
        masked = dilate(masked, buffer_px)
    valid = valid & ~masked
    if max_cloud_probability is not None and cloud is not None:
        valid = valid & ~(cloud > max_cloud_probability)
    return valid


def _masked_classes(scl: ArrayT, scl_classes: Sequence[int]) -> ArrayT:
    """True where ``scl`` is one of ``scl_classes``: one table lookup for a numpy array of
    8-bit classes (the cube engine's blocks), comparisons otherwise."""
    if isinstance(scl, np.ndarray) and scl.dtype == np.uint8:
        table = np.zeros(256, dtype=bool)
        table[[c for c in scl_classes if 0 <= c < 256]] = True
        return table[scl]
    masked = scl == scl_classes[0] if scl_classes else scl != scl
    for cls in scl_classes[1:]:
        masked = masked | (scl == cls)
    return masked


def disk(radius: int) -> np.ndarray:
    """Boolean disk of ``radius`` pixels (the dilation's footprint)."""
    yy, xx = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    return yy**2 + xx**2 <= radius**2


def dilate(masked: ArrayT, radius: int) -> ArrayT:
    """Grow True pixels by a disk of ``radius`` in the last two (y, x) axes of each slice."""
    from scipy.ndimage import binary_dilation

    footprint = disk(radius).reshape((1,) * (masked.ndim - 2) + (2 * radius + 1,) * 2)

    def grow(block: np.ndarray) -> np.ndarray:
        return binary_dilation(block, structure=footprint)

    if isinstance(masked, np.ndarray):
        return grow(masked)
    data = masked.data
    if hasattr(data, "map_overlap"):  # dask: borrow `radius` pixels from the neighbour chunks
        depth = {masked.ndim - 2: radius, masked.ndim - 1: radius}
        grown = data.map_overlap(grow, depth=depth, boundary=False, dtype=bool)
    else:
        grown = grow(np.asarray(data))
    return masked.copy(data=grown)

"""Masking, scaling and NDVI on arrays: examples and properties (Hypothesis)."""

from __future__ import annotations

import numpy as np
import xarray as xr
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ndvicube.cube.indices import compute_indices
from ndvicube.cube.mask import clear_mask
from ndvicube.cube.radiometry import to_reflectance

dn = hnp.arrays(np.uint16, (4, 5), elements=st.integers(0, 20000))
scl = hnp.arrays(np.uint8, (4, 5), elements=st.integers(0, 11))


def test_mask_examples():
    red = np.array([0, 1200, 1300, 1400, 1500], dtype=np.uint16)
    nir = np.array([3000, 0, 3000, 3000, 3000], dtype=np.uint16)
    cls = np.array([4, 4, 0, 9, 5], dtype=np.uint8)
    assert clear_mask(cls, [(red, 0), (nir, 0)]).tolist() == [False, False, False, False, True]


@given(dn, dn, scl, st.sets(st.integers(1, 11), max_size=5))
def test_mask_property(red, nir, cls, classes):
    mask = clear_mask(cls, [(red, 0), (nir, 0)], scl_classes=sorted(classes))
    expected = (red != 0) & (nir != 0) & (cls != 0) & ~np.isin(cls, sorted(classes))
    np.testing.assert_array_equal(mask, expected)


def test_mask_on_xarray_keeps_dims():
    red = xr.DataArray(np.array([[1000, 0]], dtype=np.uint16), dims=("y", "x"))
    cls = xr.DataArray(np.array([[8, 4]], dtype=np.uint8), dims=("y", "x"))
    out = clear_mask(cls, [(red, 0), (red, 0)])
    assert out.dims == ("y", "x") and out.values.tolist() == [[False, False]]


def test_scale_and_offset_of_earth_search():
    # DN 1000 is reflectance 0 with offset -0.1; DN 3000 is 0.2.
    refl = to_reflectance(np.array([1000, 3000], dtype=np.uint16), 0.0001, -0.1)
    assert refl.dtype == np.float32
    np.testing.assert_allclose(refl, [0.0, 0.2], atol=1e-7)


@given(dn, dn)
def test_ndvi_property(red_dn, nir_dn):
    red = to_reflectance(red_dn, 0.0001, -0.1)
    nir = to_reflectance(nir_dn, 0.0001, -0.1)
    got = ndvi(red, nir).values
    r64, n64 = red_dn * 0.0001 - 0.1, nir_dn * 0.0001 - 0.1
    with np.errstate(divide="ignore", invalid="ignore"):
        want = np.where(n64 + r64 != 0, (n64 - r64) / (n64 + r64), np.nan)
    ok = np.abs(n64 + r64) > 0.01  # away from the singular denominator
    np.testing.assert_allclose(got[ok], want[ok], rtol=2e-5, atol=2e-5)
    assert not np.isinf(got).any()


def ndvi(red, nir):
    """The cube's NDVI (the catalogue's formula through spyndex) of two reflectance arrays."""
    bands = {"red": xr.DataArray(red), "nir": xr.DataArray(nir)}
    return compute_indices(bands, ["NDVI"])["ndvi"]


def test_ndvi_zero_denominator_is_nan_not_inf():
    da = ndvi(np.float32([0.1, 0.1, 0.0]), np.float32([-0.1, 0.3, 0.0]))
    assert da.dtype == np.float32
    assert np.isnan(da.values[[0, 2]]).all() and abs(float(da.values[1]) - 0.5) < 1e-6


def test_buffer_dilation_crosses_dask_chunk_borders():
    import dask.array as da
    from scipy.ndimage import binary_dilation

    from ndvicube.cube.mask import clear_mask, disk

    rng = np.random.default_rng(7)
    scl = rng.choice([4, 4, 4, 4, 4, 4, 4, 4, 4, 9], size=(3, 20, 20)).astype("uint8")
    scl[0, 7, 7] = 8  # a cloud pixel in the corner of a 8 x 8 chunk: its buffer spills over
    dn = np.full(scl.shape, 1000, "uint16")
    lazy = xr.DataArray(da.from_array(scl, chunks=(1, 8, 8)), dims=("time", "y", "x"))
    got = clear_mask(lazy, [(dn, 0)], buffer_px=2).compute().values
    cloudy = np.isin(scl, [3, 8, 9, 10])
    want = ~np.stack([binary_dilation(c, structure=disk(2)) for c in cloudy])
    np.testing.assert_array_equal(got, want)
    assert got.sum() < (~cloudy).sum()  # the buffer masked more than SCL alone
    np.testing.assert_array_equal(clear_mask(scl, [(dn, 0)], buffer_px=2), want)  # numpy too

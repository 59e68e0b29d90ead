"""Smoothing equals the origin notebook's xarray recipe."""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from ndvicube.smoothing import smooth_series


def notebook_recipe(times, values) -> xr.DataArray:
    """The notebook, verbatim: resample 5D mean, linear interpolate_na, centred rolling 3."""
    ts = xr.DataArray(values, dims="time", coords={"time": times})
    ts = ts.resample(time="5D").mean()
    ts = ts.interpolate_na(dim="time", method="linear")
    return ts.rolling(time=3, center=True, min_periods=1).mean()


def test_smoothing_matches_the_notebook_with_gaps():
    times = pd.date_range("2023-01-03", periods=40, freq="3D")
    rng = np.random.default_rng(1)
    values = 0.5 + 0.3 * np.sin(np.arange(40) / 6) + rng.normal(0, 0.02, 40)
    values[[0, 5, 6, 7, 20, 21, 39]] = np.nan
    raw = pd.DataFrame({"point": "p", "time": times, "ndvi": values})
    got = smooth_series(raw, resample="5D", window=3)
    want = notebook_recipe(times, values)
    np.testing.assert_array_equal(got["time"].to_numpy(), want["time"].values)
    np.testing.assert_allclose(got["ndvi"].to_numpy(), want.values, equal_nan=True)
    assert got["ndvi"].notna().sum() == len(want) - int(np.isnan(want.values).sum())


def test_smoothing_is_per_point():
    times = pd.date_range("2023-01-01", periods=10, freq="5D")
    raw = pd.concat(
        [
            pd.DataFrame({"point": "a", "time": times, "ndvi": np.linspace(0, 0.9, 10)}),
            pd.DataFrame({"point": "b", "time": times, "ndvi": np.full(10, 0.3)}),
        ]
    )
    got = smooth_series(raw)
    assert list(got["point"].unique()) == ["a", "b"]
    np.testing.assert_allclose(got[got.point == "b"]["ndvi"], 0.3)
    a = got[got.point == "a"]["ndvi"].to_numpy()
    np.testing.assert_allclose(a[1:-1], np.linspace(0, 0.9, 10)[1:-1], atol=1e-12)


def test_all_masked_point_stays_nan():
    times = pd.date_range("2023-01-01", periods=6, freq="5D")
    raw = pd.DataFrame({"point": "cloudy", "time": times, "ndvi": np.nan})
    got = smooth_series(raw)
    assert len(got) == 6 and got["ndvi"].isna().all()

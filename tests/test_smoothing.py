"""Smoothing: the notebook's recipe exactly; Savitzky-Golay and Whittaker against closed forms."""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from ndvicube.timeseries.smoothing import savgol, smooth_series, whittaker


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


# --- Savitzky-Golay and Whittaker: closed-form cases ------------------------------------------


def test_savgol_uses_the_published_5_point_quadratic_coefficients():
    # Savitzky & Golay (1964), table I: the 5-point quadratic smoothing filter is
    # (-3, 12, 17, 12, -3) / 35 at interior points.
    values = np.array([0.2, 0.5, 0.3, 0.9, 0.4, 0.6, 0.1, 0.7])
    got = savgol(xr.DataArray(values, dims="time"), 5, 2)
    kernel = np.array([-3, 12, 17, 12, -3]) / 35
    want = np.convolve(values, kernel[::-1], mode="valid")
    np.testing.assert_allclose(got[2:-2], want, atol=1e-12)


def test_savgol_reproduces_a_quadratic_and_keeps_a_peak_the_rolling_mean_flattens():
    times = pd.date_range("2023-01-01", periods=30, freq="5D")
    t = np.arange(30.0)
    parabola = 0.8 - 0.002 * (t - 14) ** 2
    raw = pd.DataFrame({"point": "p", "time": times, "ndvi": parabola})
    sg = smooth_series(raw, method="savgol", window=7, polyorder=2)["ndvi"].to_numpy()
    np.testing.assert_allclose(sg, parabola, atol=1e-12)
    rolling = smooth_series(raw, method="notebook", window=7)["ndvi"].to_numpy()
    assert rolling.max() < parabola.max() - 0.003  # the mean lowers the peak


def whittaker_closed_form(y: np.ndarray, w: np.ndarray, lam: float) -> np.ndarray:
    """Eilers (2003): z solves (W + lam D'D) z = W y, D the second-difference matrix."""
    n = len(y)
    d = np.diff(np.eye(n), n=2, axis=0)
    return np.linalg.solve(np.diag(w) + lam * d.T @ d, w * np.nan_to_num(y))


def test_whittaker_solves_the_penalised_least_squares_system():
    rng = np.random.default_rng(3)
    y = 0.5 + 0.3 * np.sin(np.arange(25) / 4) + rng.normal(0, 0.05, 25)
    w = rng.uniform(0.2, 1.0, 25)
    w[[4, 5, 12]] = 0.0  # gaps: filled by the smoother
    y[[4, 5, 12]] = np.nan
    for lam in (1.0, 50.0, 2000.0):
        np.testing.assert_allclose(
            whittaker(y, w, lam), whittaker_closed_form(y, w, lam), atol=1e-9
        )


def test_whittaker_keeps_a_line_and_tends_to_the_weighted_line_fit():
    t = np.arange(20.0)
    line = 0.1 + 0.03 * t
    np.testing.assert_allclose(whittaker(line, np.ones(20), 1e3), line, atol=1e-9)
    rng = np.random.default_rng(4)
    y, w = line + rng.normal(0, 0.05, 20), rng.uniform(0.5, 1, 20)
    fit = np.polyval(np.polyfit(t, y, 1, w=np.sqrt(w)), t)
    np.testing.assert_allclose(whittaker(y, w, 1e9), fit, atol=1e-5)


def test_whittaker_weights_come_from_the_clear_fraction():
    times = pd.date_range("2023-01-01", periods=12, freq="5D")
    values = np.linspace(0.2, 0.8, 12)
    values[6] = 0.1  # an outlier seen through mostly cloud
    clear = np.ones(12)
    clear[6] = 0.05
    raw = pd.DataFrame({"point": "p", "time": times, "ndvi": values, "clear_fraction": clear})
    got = smooth_series(raw, method="whittaker", lam=10.0)["ndvi"].to_numpy()
    np.testing.assert_allclose(got, whittaker_closed_form(values, clear, 10.0), atol=1e-9)
    unweighted = smooth_series(raw.drop(columns="clear_fraction"), method="whittaker", lam=10.0)
    assert abs(got[6] - 0.527) < abs(unweighted["ndvi"].to_numpy()[6] - 0.527)


def test_each_index_is_weighted_by_its_own_observations():
    """Without clear fractions, an index's Whittaker weights are its own observed bins, not the
    first index's: two indices cloudy on different dates each smooth as if alone."""
    times = pd.date_range("2023-01-01", periods=30, freq="5D")
    ndvi = 0.5 + 0.3 * np.sin(np.arange(30) / 5)
    raw = pd.DataFrame({"point": "p", "time": times, "ndvi": ndvi, "evi": ndvi * 0.8})
    raw.loc[::4, "ndvi"] = np.nan  # ndvi undefined where evi is not
    both = smooth_series(raw, method="whittaker", lam=10)
    alone = smooth_series(raw.drop(columns="ndvi"), method="whittaker", lam=10)
    np.testing.assert_array_equal(both["evi"].values, alone["evi"].values)
    assert both["evi"].notna().all()

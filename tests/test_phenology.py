"""Phenology: exact on a closed-form season, and the demo catalog's true crop calendar."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from ndvicube.timeseries.phenology import phenology


def trapezoid(days: np.ndarray) -> np.ndarray:
    """0.2 to day 100, linear rise to 0.8 at day 150, flat to 160, linear fall to 0.2 at 220."""
    return np.interp(days, [0, 100, 150, 160, 220, 365], [0.2, 0.2, 0.8, 0.8, 0.2, 0.2])


def test_fraction_of_amplitude_on_a_closed_form_season():
    days = np.arange(0, 365, 5)
    start = pd.Timestamp("2023-01-01")
    smoothed = pd.DataFrame(
        {"point": "p", "time": start + pd.to_timedelta(days, "D"), "ndvi": trapezoid(days)}
    )
    [row] = phenology(smoothed, fraction=0.5).itertuples()
    assert row.sos == start + pd.Timedelta(days=125)  # 0.5 = halfway up 100 -> 150
    assert row.eos == start + pd.Timedelta(days=190)  # halfway down 160 -> 220
    assert row.pos == start + pd.Timedelta(days=155)  # the middle of the flat top
    assert (row.base_start, row.peak_value, row.base_end) == (0.2, 0.8, 0.2)
    np.testing.assert_allclose(row.amplitude, 0.6)
    [row] = phenology(smoothed, fraction=0.2).itertuples()
    assert row.sos == start + pd.Timedelta(days=110) and row.eos == start + pd.Timedelta(days=208)


def test_two_seasons_and_a_season_cut_by_the_series_start():
    days = np.arange(0, 365, 5)
    values = trapezoid(days) + trapezoid(days - 150) - 0.2  # second season 150 days later
    values[:10] = np.linspace(0.6, 0.2, 10)  # the series starts in a falling season
    smoothed = pd.DataFrame(
        {
            "point": "p",
            "time": pd.Timestamp("2023-01-01") + pd.to_timedelta(days, "D"),
            "ndvi": values,
        }
    )
    table = phenology(smoothed, min_amplitude=0.3)
    assert list(table["season"]) == [1, 2]  # a series starting on a falling limb has no peak
    assert table["sos"].notna().all()  # both troughs are observed
    # Starting mid-rise (day 130 of the first season): no SOS and no base, the amplitude from
    # the observed base after the peak.
    cut = smoothed[smoothed["time"] >= pd.Timestamp("2023-01-01") + pd.Timedelta(days=130)]
    first = phenology(cut, min_amplitude=0.2).iloc[0]  # prominence 0.8 - 0.56 = 0.24
    assert pd.isna(first["sos"]) and np.isnan(first["base_start"])
    np.testing.assert_allclose(first["amplitude"], 0.6)
    assert first["eos"] == pd.Timestamp("2023-01-01") + pd.Timedelta(days=190)


def test_no_season_in_a_flat_or_empty_series():
    times = pd.date_range("2023-01-01", periods=40, freq="5D")
    flat = pd.DataFrame({"point": "pond", "time": times, "ndvi": -0.2})
    assert phenology(flat).empty
    assert phenology(flat.assign(ndvi=np.nan)).empty


def test_seasons_of_the_demo_catalog_match_its_crop_calendar(tmp_path):
    """A year of the demo catalog through the rules' functions; the truth is its calendar."""
    from ndvicube.demo import demo_phenology, demo_series, true_seasons

    catalog, raw = demo_series(tmp_path)
    found, errors = demo_phenology(catalog, raw, tmp_path)
    assert len(found) == true_seasons(catalog) == 9  # every season found, no extra one
    missing = errors[errors["found"].isna()]
    assert missing["cut"].all(), missing  # empty only where the season is cut by the data
    worst = errors.groupby("metric")["error_days"].agg(["max", "mean", "count"])
    print(worst)
    assert worst.loc["sos", "max"] <= 7 and worst.loc["eos", "max"] <= 7
    assert worst.loc["pos", "max"] <= 10
    assert worst.loc["sos", "count"] >= 5 and worst.loc["eos", "count"] >= 8


@settings(max_examples=300, deadline=None)
@given(
    values=st.lists(
        st.sampled_from([0.0, 0.1, 0.2, 0.25, 0.3, 0.5, 0.55, 0.7, 0.9]), min_size=3, max_size=40
    ),
    prominence=st.sampled_from([0.0, 0.05, 0.1, 0.2, 0.4]),
)
def test_find_peaks_is_scipys(values, prominence):
    """The tables job's peak finder (no scipy.signal import) gives scipy's peaks: few distinct
    values, so plateaus, ties and equal bases occur often."""
    from scipy.signal import find_peaks as scipy_find_peaks

    from ndvicube.timeseries.phenology import find_peaks

    series = np.array(values)
    expected = scipy_find_peaks(series, prominence=prominence)[0]
    np.testing.assert_array_equal(find_peaks(series, min_prominence=prominence), expected)


def test_find_peaks_on_a_smoothed_season_is_scipys():
    """Real-valued series: two seasons with noise, at the default amplitude."""
    from scipy.signal import find_peaks as scipy_find_peaks

    from ndvicube.timeseries.phenology import find_peaks

    rng = np.random.default_rng(7)
    t = np.arange(146)
    series = 0.2 + 0.5 * np.exp(-(((t - 40) / 12) ** 2)) + 0.4 * np.exp(-(((t - 110) / 10) ** 2))
    series += rng.normal(0, 0.03, t.size)
    expected = scipy_find_peaks(series, prominence=0.1)[0]
    assert len(expected) == 2
    np.testing.assert_array_equal(find_peaks(series, min_prominence=0.1), expected)

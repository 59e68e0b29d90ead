"""Smoothing of point series: the origin notebook's recipe, per point.

For each point: mean-resample to a regular step (``5D``), fill gaps by linear interpolation in
time, then a centred rolling mean of ``window`` steps with ``min_periods=1``. Implemented with
the very xarray calls the notebook used, so results match it exactly (leading/trailing gaps are
not extrapolated and stay NaN; a point with no clear observation stays all NaN).
"""

from __future__ import annotations

import pandas as pd
import xarray as xr

from ndvicube.tables import SERIES_COLUMNS


def smooth_series(raw: pd.DataFrame, *, resample: str = "5D", window: int = 3) -> pd.DataFrame:
    """Smoothed series with columns ``point,time,ndvi`` (time = start of each resample bin)."""
    parts = [
        _smooth_one(group, resample=resample, window=window).assign(point=point)
        for point, group in raw.groupby("point", sort=False)
    ]
    if not parts:
        return pd.DataFrame(columns=SERIES_COLUMNS)
    return pd.concat(parts, ignore_index=True)[SERIES_COLUMNS]


def _smooth_one(series: pd.DataFrame, *, resample: str, window: int) -> pd.DataFrame:
    """The notebook's three steps on one point's series."""
    da = xr.DataArray(
        series["ndvi"].to_numpy(dtype="float64"),
        dims="time",
        coords={"time": pd.to_datetime(series["time"]).to_numpy()},
    ).sortby("time")
    resampled = da.resample(time=resample).mean()
    if int(resampled.notnull().sum()) >= 2:
        resampled = resampled.interpolate_na(dim="time", method="linear")
    smoothed = resampled.rolling(time=window, center=True, min_periods=1).mean()
    return pd.DataFrame({"time": smoothed["time"].values, "ndvi": smoothed.values})

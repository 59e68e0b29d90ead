"""Smoothing of point series: the origin notebook's recipe, Savitzky-Golay, or Whittaker.

Every index column is smoothed on its own. Every method first mean-resamples each point's series
to a regular step (``5D``), then:

* ``notebook`` (default): linear interpolation of gaps in time, then a centred rolling mean of
  ``window`` steps with ``min_periods=1`` - the very xarray calls of the origin notebook, so
  results match it exactly (leading/trailing gaps stay NaN);
* ``savgol``: linear interpolation of gaps, then a Savitzky-Golay filter (scipy) of ``window``
  steps and polynomial order ``polyorder``, which keeps peak heights and timing that a rolling
  mean flattens and shifts;
* ``whittaker``: the Whittaker-Eilers smoother (the ``whittaker-eilers`` package) with penalty
  ``lam`` on second differences; gaps need no interpolation - a bin without observation gets
  weight 0 and is filled by the smoother. Weights are each bin's clear fraction when the raw
  series has a ``clear_fraction`` column, else 1 for observed bins.

A point with no clear observation stays all NaN with every method.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ndvicube.timeseries.tables import KEY_COLUMNS, index_columns

if TYPE_CHECKING:  # imported where used: the config builds Smoothing without xarray
    import xarray as xr

METHODS = ("notebook", "savgol", "whittaker")


@dataclass(frozen=True)
class Smoothing:
    """The ``smoothing`` section, field by field like its YAML keys (``lambda`` is a Python
    keyword, so its field is ``lambda_``)."""

    method: str = "notebook"
    """``notebook``, ``savgol`` or ``whittaker`` (see above)."""
    resample: str = "5D"
    """The regular step every series is mean-resampled to (a pandas frequency)."""
    window: int = 3
    """Steps of the rolling mean or of the Savitzky-Golay filter."""
    polyorder: int = 2
    """Savitzky-Golay polynomial order."""
    lambda_: float = 10.0
    """Whittaker penalty on second differences."""

    @classmethod
    def from_section(cls, section: dict) -> Smoothing:
        """The section as the config holds it (the key ``lambda``)."""
        values = dict(section)
        values["lambda_"] = values.pop("lambda")
        return cls(**values)

    def options(self) -> dict:
        """Keyword arguments of :func:`smooth_series`."""
        return {"method": self.method, "resample": self.resample, "window": self.window,
                "polyorder": self.polyorder, "lam": self.lambda_}  # fmt: skip


def smooth_series(
    raw: pd.DataFrame,
    *,
    method: str = "notebook",
    resample: str = "5D",
    window: int = 3,
    polyorder: int = 2,
    lam: float = 10.0,
) -> pd.DataFrame:
    """Smoothed series: ``point,time`` and each index column (time = start of each bin).

    All points are smoothed at once, as one (point, time) array per column: the notebook's
    xarray calls work along ``time`` for every point together, where a loop over points paid
    milliseconds of xarray overhead per point (37 s for 1,000 points, measured).
    """
    if method not in METHODS:
        raise ValueError(f"unknown smoothing method {method!r}; use one of {METHODS}")
    columns = index_columns(raw)
    if raw.empty:
        return pd.DataFrame(columns=KEY_COLUMNS + columns)
    binned = _resampled(raw, columns, resample)
    clear = binned["clear_fraction"].fillna(0).values if "clear_fraction" in binned else 1.0
    smoothed = {
        name: _smoothed(binned[name], clear, method, window, polyorder, lam) for name in columns
    }
    points, times = binned["point"].values, binned["time"].values
    frame = pd.DataFrame(
        {"point": np.repeat(points, len(times)), "time": np.tile(times, len(points))}
        | {name: values.ravel() for name, values in smoothed.items()}
    )
    return frame[KEY_COLUMNS + columns]


def _smoothed(
    binned: xr.DataArray,
    clear: np.ndarray | float,
    method: str,
    window: int,
    polyorder: int,
    lam: float,
) -> np.ndarray:
    """A (point, time) array of binned series smoothed by ``method``; whittaker weighs each
    observed bin by its mean clear fraction (``clear``, or 1 when the series has none)."""
    if method == "notebook":
        return _rolling_mean(binned, window)
    if method == "savgol":
        return savgol_rows(_interpolated(binned).values, window, polyorder)
    weights = clear * binned.notnull().values
    return np.stack([whittaker(v, w, lam) for v, w in zip(binned.values, weights, strict=True)])


def _resampled(series: pd.DataFrame, columns: list[str], resample: str) -> xr.Dataset:
    """Bin means of the index columns (and of ``clear_fraction``, if any) on the regular step,
    for every point at once: a (point, time) dataset, points in their order of appearance,
    in one xarray resample - the notebook's."""
    names = columns + (["clear_fraction"] if "clear_fraction" in series else [])
    frame = series.assign(time=pd.to_datetime(series["time"]))[["point", "time", *names]]
    order = pd.unique(frame["point"])
    grid = frame.astype({n: "float64" for n in names}).set_index(["point", "time"]).to_xarray()
    binned = grid.sel(point=order).sortby("time").resample(time=resample).mean()
    return binned.transpose("point", "time")


def _interpolated(binned: xr.DataArray) -> xr.DataArray:
    """Gaps filled linearly in time (the notebook's ``interpolate_na``), for the points that
    have a line to draw (two observations or more); the others are left as they are."""
    enough = binned.notnull().sum("time") >= 2
    if not bool(enough.any()):
        return binned
    import xarray as xr

    return xr.where(enough, binned.interpolate_na(dim="time", method="linear"), binned)


def _rolling_mean(binned: xr.DataArray, window: int) -> np.ndarray:
    """The notebook's centred rolling mean of the interpolated series."""
    return _interpolated(binned).rolling(time=window, center=True, min_periods=1).mean().values


def savgol(series: xr.DataArray | np.ndarray, window: int, polyorder: int) -> np.ndarray:
    """Savitzky-Golay over the finite run of ``series`` (edges left NaN, as interpolation does).

    A run shorter than ``window`` is returned unfiltered: there is no polynomial fit to make.
    """
    from scipy.signal import savgol_filter

    values = np.array(series, dtype="float64")
    finite = np.flatnonzero(np.isfinite(values))
    if len(finite) == 0:
        return values
    run = slice(finite[0], finite[-1] + 1)
    if run.stop - run.start >= window:
        values[run] = savgol_filter(values[run], window, polyorder, mode="interp")
    return values


def savgol_rows(values: np.ndarray, window: int, polyorder: int) -> np.ndarray:
    """:func:`savgol` of every row of a (point, time) array, one scipy call per finite run.

    Rows whose finite runs span the same dates (after interpolation, nearly all of them) are
    filtered together along ``time``: one call per row cost 0.7 ms, 6.9 s for 10,000 fields
    (bench/bench_fields_tables.py).
    """
    from scipy.signal import savgol_filter

    out = np.array(values, dtype="float64")
    finite = np.isfinite(out)
    found = finite.any(axis=1)
    first = finite.argmax(axis=1)
    last = out.shape[1] - 1 - finite[:, ::-1].argmax(axis=1)
    runs = np.stack([first, last + 1], axis=1)[found]
    for start, stop in np.unique(runs, axis=0):
        if stop - start < window:
            continue  # no polynomial fit to make: left unfiltered, as by savgol
        rows = np.flatnonzero(found)[(runs[:, 0] == start) & (runs[:, 1] == stop)]
        out[rows, start:stop] = savgol_filter(
            out[rows, start:stop], window, polyorder, mode="interp", axis=1
        )
    return out


def whittaker(values: np.ndarray, weights: np.ndarray, lam: float) -> np.ndarray:
    """Whittaker-Eilers smoothing (second-order penalty) of a regular series with weights.

    Bins with weight 0 are interpolated by the smoother; bins before the first and after the
    last observation stay NaN (nothing constrains them but the penalty's straight line).
    """
    from whittaker_eilers import WhittakerSmoother

    values = np.asarray(values, dtype="float64")
    weights = np.where(np.isfinite(values), np.asarray(weights, dtype="float64"), 0.0)
    observed = np.flatnonzero(weights > 0)
    out = np.full(values.shape, np.nan)
    if len(observed) < 3:
        out[observed] = values[observed]
        return out
    run = slice(observed[0], observed[-1] + 1)
    smoother = WhittakerSmoother(
        lmbda=lam, order=2, data_length=run.stop - run.start, weights=list(weights[run])
    )
    out[run] = smoother.smooth(list(np.nan_to_num(values[run])))
    return out

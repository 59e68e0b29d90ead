"""Season metrics per point: start, peak and end of season, and amplitude.

They are computed on one index column of the smoothed series (``phenology.index``, by default
the first index of the config: NDVI unless changed). Method (fraction of amplitude, as
TIMESAT's "seasonal amplitude" option): on each point's smoothed series, a season is a peak
standing at least ``min_amplitude`` above the lower of its two neighbouring troughs (scipy's
peak prominence). Between the trough before the peak and the peak, the start of season (SOS) is
where the index rises through ``base + fraction x (peak - base)`` with ``base`` that trough (the
crossing nearest the peak, so an early bump does not count); the end of season (EOS) is where
it falls through the same level measured from the trough after the peak. On a flat base the
trough is where the season leaves it. Crossings are interpolated linearly between samples. The
peak of season (POS) is the date of the maximum (the middle of a flat top); the amplitude is the
peak minus the mean of the two bases (of the observed one when the season is cut, see below).

The trough on each side is where the series first comes within 10 % of the amplitude of that
side's minimum (on a flat, noisy base: where the season leaves it). A trough within two samples
of the start (or end) of the series is not a base but the edge of what was observed: the season
may have begun earlier (or ended later), so its SOS and base (or EOS and base) are left empty
rather than guessed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Phenology:
    """The ``phenology`` section, field by field like its YAML keys."""

    fraction: float = 0.5
    """Share of the amplitude above the base where a season starts and ends."""
    min_amplitude: float = 0.1
    """Least prominence of a peak that counts as a season."""
    index: str = "NDVI"
    """Catalogue name of the index whose seasons are found (the config's first by default)."""


#: A trough is where the series comes within this share of the amplitude of its minimum.
BASE_TOLERANCE = 0.1

#: A trough this few samples from the start or end of the series is its edge, not a base.
EDGE_SAMPLES = 2

#: Columns of ``phenology.csv``.
PHENOLOGY_COLUMNS = [
    "point",
    "index",
    "season",
    "sos",
    "pos",
    "eos",
    "base_start",
    "peak_value",
    "base_end",
    "amplitude",
]


def phenology(
    smoothed: pd.DataFrame,
    *,
    fraction: float = 0.5,
    min_amplitude: float = 0.1,
    index: str = "ndvi",
) -> pd.DataFrame:
    """One row per point and season found in column ``index`` of a smoothed series.

    Points come in their order of appearance. The table is sorted once and cut into each
    point's series by numpy: a pandas ``groupby`` handing each point a frame cost about 3 ms
    a point, 29 s for 10,000 fields against 1.4 s now (bench/bench_fields_tables.py).
    """
    if index not in smoothed:
        raise ValueError(f"the series has no column {index!r} (columns: {list(smoothed.columns)})")
    codes, points = pd.factorize(smoothed["point"], sort=False)
    times = pd.to_datetime(smoothed["time"]).to_numpy().astype("datetime64[ns]")
    values = smoothed[index].to_numpy(dtype="float64")
    order = np.lexsort((times, codes))
    codes, times, values = codes[order], times[order], values[order]
    kept = ~np.isnan(values)
    codes, times, values = codes[kept], times[kept], values[kept]
    bounds = np.searchsorted(codes, np.arange(len(points) + 1))
    rows = []
    for k, point in enumerate(points):
        run = slice(bounds[k], bounds[k + 1])
        for number, season in enumerate(
            seasons(times[run], values[run], fraction, min_amplitude), 1
        ):
            rows.append({"point": point, "index": index, "season": number, **season})
    return pd.DataFrame(rows, columns=PHENOLOGY_COLUMNS)


def seasons(
    times: np.ndarray, values: np.ndarray, fraction: float, min_amplitude: float
) -> list[dict]:
    """The seasons of one regular, gap-free series (see the module docstring)."""
    if len(values) < 3:
        return []
    peaks = find_peaks(values, min_prominence=min_amplitude)
    found = []
    for i, peak in enumerate(peaks):
        start = peaks[i - 1] if i > 0 else 0
        stop = peaks[i + 1] if i + 1 < len(peaks) else len(values) - 1
        found.append(_season(times, values, (start, peak, stop), fraction))
    return found


def find_peaks(values: np.ndarray, *, min_prominence: float) -> np.ndarray:
    """Indices of the peaks of ``values`` standing at least ``min_prominence`` above their
    bases: exactly ``scipy.signal.find_peaks(values, prominence=min_prominence)[0]``.

    Written out because importing ``scipy.signal`` costs 0.9 s, a third of the tables job of
    a small area, for a loop this short (docs/performance.md, "The default job"); the tests
    compare it with scipy's on random and plateaued series.
    """
    listed = np.asarray(values, dtype="float64").tolist()  # a list indexes 10x faster in loops
    peaks = _local_maxima(listed)
    return np.array([p for p in peaks if _prominence(listed, p) >= min_prominence], dtype=int)


def _local_maxima(values: list[float]) -> list[int]:
    """Samples above their left neighbour and then above the first differing sample to their
    right; a plateau's peak is its middle (scipy's ``_local_maxima_1d``). Edges never count."""
    found, i, last = [], 1, len(values) - 1
    while i < last:
        if values[i - 1] < values[i]:
            ahead = i + 1
            while ahead < last and values[ahead] == values[i]:
                ahead += 1
            if values[ahead] < values[i]:
                found.append((i + ahead - 1) // 2)
                i = ahead
        i += 1
    return found


def _prominence(values: list[float], peak: int) -> float:
    """The peak's height above the higher of its two bases: the lowest sample on each side
    before the series rises above the peak (or ends)."""
    top = values[peak]
    bases = []
    for step in (-1, 1):
        i, lowest = peak, top
        while 0 <= i < len(values) and values[i] <= top:
            lowest = min(lowest, values[i])
            i += step
        bases.append(lowest)
    return float(top - max(bases))


def _trough(values: np.ndarray, peak: int, end: int) -> int:
    """Where the season meets its base between ``peak`` and ``end`` (either side).

    The base is the segment's minimum; the trough is the sample nearest the peak that comes
    within ``BASE_TOLERANCE`` of the amplitude of it - on a flat, noisy base that is where the
    season leaves it, not wherever noise put the lowest value (possibly the series' edge).
    """
    step = 1 if end > peak else -1
    segment = values[peak : end + step if end + step >= 0 else None : step]
    level = segment.min() + BASE_TOLERANCE * (values[peak] - segment.min())
    return peak + step * int(np.flatnonzero(segment <= level)[0])


def _season(
    times: np.ndarray, values: np.ndarray, span: tuple[int, int, int], fraction: float
) -> dict:
    """Metrics of the season peaking at ``span[1]`` between the neighbouring peaks (or edges)."""
    start, peak, stop = span
    base_start, base_end = values[start : peak + 1].min(), values[peak : stop + 1].min()
    rise = base_start + fraction * (values[peak] - base_start)
    fall = base_end + fraction * (values[peak] - base_end)
    at_first = _trough(values, peak, start) < EDGE_SAMPLES
    at_last = _trough(values, peak, stop) > len(values) - 1 - EDGE_SAMPLES
    observed = [b for b, cut in ((base_start, at_first), (base_end, at_last)) if not cut]
    return {
        "sos": None if at_first else _crossing(times, values, start, peak, rise),
        "pos": pd.Timestamp(times[peak]),
        "eos": None if at_last else _crossing(times, values, stop, peak, fall),
        "base_start": np.nan if at_first else base_start,
        "peak_value": values[peak],
        "base_end": np.nan if at_last else base_end,
        "amplitude": values[peak] - np.mean(observed or [min(base_start, base_end)]),
    }


def _crossing(
    times: np.ndarray, values: np.ndarray, end: int, peak: int, level: float
) -> pd.Timestamp:
    """When the series crosses ``level`` between ``end`` and ``peak`` - the crossing nearest the
    peak, so a brief early bump does not count as the season's start or end."""
    step = 1 if peak > end else -1
    index = np.arange(peak, end - step, -step)  # from the peak back to the end of its span
    first_below = index[values[index] < level][0]  # the span's minimum is below the level
    last_above = first_below + step
    v0, v1 = values[first_below], values[last_above]
    share = (level - v0) / (v1 - v0) if v1 != v0 else 0.0
    t0, t1 = times[first_below].astype("int64"), times[last_above].astype("int64")
    return pd.Timestamp(round(float(t0 + share * (t1 - t0))))

"""Figures of the series: raw vs smoothed series per point, an overview of all points.

Raw clear observations are drawn as dots, the smoothed series as a line, dates on the x axis
as in the origin notebook; with several indices, one panel per index. Figures are matplotlib's
objects drawn on their own Agg canvas (no display on HPC), never pyplot's global state: two jobs
in threads of one process draw side by side (ndvicube.figures.new_figure).
"""

from __future__ import annotations

import threading
from pathlib import Path

import matplotlib.dates as mdates
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ndvicube.figures import PARALLEL_FROM_POINTS, new_figure
from ndvicube.timeseries.tables import index_columns


class PointFigures:
    """Draws the figure of one point after another on one reused matplotlib figure.

    Building a figure (axes, ticks, legend) costs several times its drawing; an area's point
    figures share everything but their data, so each point only updates its lines, title and
    limits before the PNG is written.
    """

    def __init__(self, names: list[str]) -> None:
        self.names = names
        self.fig = new_figure(figsize=(10, 4 * len(names)))
        axes = self.fig.subplots(len(names), 1, squeeze=False)
        self.axes = list(axes[:, 0])
        self.lines = []
        self.laid_out = False
        for ax, name in zip(self.axes, names, strict=True):
            dots = ax.plot([], [], "o", ms=4, color="tab:green", alpha=0.6, label="raw (clear)")[0]
            line = ax.plot([], [], "-", lw=2, color="tab:blue", label="smoothed")[0]
            note = ax.text(0.5, 0.5, "no clear observations", transform=ax.transAxes, ha="center")
            self.lines.append((dots, line, note))
            _decorate(ax, "", name.upper(), (-0.2, 1.0))  # labels, ticks, legend: once

    def draw(self, raw: pd.DataFrame, smoothed: pd.DataFrame, point: str, path: str | Path):
        """Write ``point``'s figure (``raw`` and ``smoothed`` hold that point's rows only)."""
        for ax, name, (dots, line, note) in zip(self.axes, self.names, self.lines, strict=True):
            dots.set_data(raw["time"], raw[name])
            line.set_data(smoothed["time"], smoothed[name])
            note.set_visible(not raw[name].notna().any())
            ax.set_title(f"{name.upper()} at {point}")
            ax.set_ylim(*_limits(raw[name], smoothed[name]))
            ax.set_xlim(*_time_limits(raw["time"], smoothed["time"]))
        if not self.laid_out:  # the layout of the first point fits all: same axes and labels
            self.fig.tight_layout()
            self.laid_out = True
        self.fig.savefig(path, dpi=100)
        return self.fig

    def close(self) -> None:
        """Done drawing. Nothing to release: no pyplot registry holds the figure, which is
        freed with its last reference (it stays readable for tests until then)."""


def plot_point(raw: pd.DataFrame, smoothed: pd.DataFrame, point: str, path: str | Path) -> Figure:
    """Raw (dots) and smoothed (line) series of one point, a panel per index; says so when
    nothing is clear.

    Returns the (closed) figure, so callers and tests can inspect what was drawn.
    """
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    figures = PointFigures(index_columns(smoothed))
    try:
        return figures.draw(
            raw[raw["point"] == point], smoothed[smoothed["point"] == point], point, path
        )
    finally:
        figures.close()


def plot_points(
    raw: pd.DataFrame,
    smoothed: pd.DataFrame,
    points: list[str],
    folder: str | Path,
    *,
    processes: int = 1,
) -> list[Path]:
    """``folder/{point}.png`` for each of ``points``, drawn on one reused figure per process.

    With ``processes`` > 1 and enough points, the points are shared out among that many forked
    processes (a figure is about 90 ms of CPU, most of it matplotlib's text and PNG encoding).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    shares = (
        [points[k::processes] for k in range(processes)]
        if len(points) >= PARALLEL_FROM_POINTS
        else [points]
    )
    shares = [share for share in shares if share]
    if len(shares) <= 1:
        return _plot_share(raw, smoothed, points, folder)
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(len(shares), mp_context=_drawing_processes()) as pool:
        futures = [
            pool.submit(_plot_share, *_rows_of(raw, smoothed, share), share, folder)
            for share in shares
        ]
        drawn = {path.stem: path for future in futures for path in future.result()}
    return [drawn[point] for point in points]


def _rows_of(raw: pd.DataFrame, smoothed: pd.DataFrame, points: list[str]):
    """The rows of ``points`` only (what a drawing process is sent)."""
    return raw[raw["point"].isin(points)], smoothed[smoothed["point"].isin(points)]


def _plot_share(
    raw: pd.DataFrame, smoothed: pd.DataFrame, points: list[str], folder: Path
) -> list[Path]:
    """Draw ``points`` one after another on one :class:`PointFigures`."""
    raw_by, smooth_by = dict(tuple(raw.groupby("point"))), dict(tuple(smoothed.groupby("point")))
    empty_raw, empty_smooth = raw.iloc[:0], smoothed.iloc[:0]
    figures = PointFigures(index_columns(smoothed))
    written = []
    try:
        for point in points:
            path = folder / f"{point}.png"
            figures.draw(
                raw_by.get(point, empty_raw), smooth_by.get(point, empty_smooth), point, path
            )
            written.append(path)
    finally:
        figures.close()
    return written


#: Quantiles of the overview's band: most points lie between them, outliers do not widen it.
BAND = (0.1, 0.9)


def plot_overview(
    raw: pd.DataFrame, smoothed: pd.DataFrame, area: str, path: str | Path, *, what: str = "point"
):
    """The area at a glance, readable for 1 point or 10,000: per index, the median of all
    points' smoothed series and the band from their 10th to 90th percentile; below, how many
    points had a clear observation on each solar day.

    ``what`` names the series' places in the labels: ``point``, or ``field`` for the polygon
    tables (a field is clear on a day when its mean is, i.e. some of it was). 10,000 fields
    draw in 0.7 s (bench/bench_fields_tables.py). Returns the (closed) figure, so tests can
    inspect what was drawn.
    """
    names = index_columns(smoothed)
    count = smoothed["point"].nunique()
    heights = [4] * len(names) + [1.6]
    fig = new_figure(figsize=(10, sum(heights) + 1))
    axes = fig.subplots(len(names) + 1, 1, sharex=True, gridspec_kw={"height_ratios": heights})
    by_time = smoothed.groupby("time")
    for ax, name in zip(axes[:-1], names, strict=True):
        low, mid, high = (by_time[name].quantile(q) for q in (BAND[0], 0.5, BAND[1]))
        ax.fill_between(
            low.index,
            low.values,
            high.values,
            color="tab:blue",
            alpha=0.25,
            lw=0,
            label=f"{BAND[0]:.0%}-{BAND[1]:.0%} of {what}s",
        )
        ax.plot(mid.index, mid.values, "-", lw=2, color="tab:blue", label=f"median of {what}s")
        title = f"Smoothed {name.upper()}, area {area}: {count:,} {what}(s)"
        _decorate(ax, title, name.upper(), _limits(low, high))
    clear = raw[raw[names[0]].notna()].groupby("time").size()
    bottom = axes[-1]
    bottom.bar(clear.index, clear.values, width=2.0, color="tab:green")
    bottom.set_ylabel(f"{what}s clear")
    bottom.set_xlabel("Date")
    bottom.set_ylim(0, max(count, 1))
    bottom.grid(True, alpha=0.3)
    bottom.set_title(
        f"{what.capitalize()}s with a clear {names[0].upper()} observation, per solar day",
        fontsize="small",
    )
    for ax in axes[:-1]:
        ax.set_xlabel("")
    _save(fig, path)
    return fig


def _limits(*series: pd.Series) -> tuple[float, float]:
    """The value axis: -0.2 to 1 (NDVI's usual range), widened to what the data reach."""
    finite = [s for s in series if s.notna().any()]
    low = min((float(s.min()) for s in finite), default=0.0)
    high = max((float(s.max()) for s in finite), default=0.0)
    return min(-0.2, low - 0.05), max(1.0, high + 0.05)


def _time_limits(*times: pd.Series) -> tuple:
    """The date axis: the span of the data (a point without any still gets the period)."""
    parts = [pd.to_datetime(pd.Series(t)) for t in times if len(t)]
    if not parts:  # matplotlib's default date range; nothing to show anyway
        return pd.Timestamp("1970-01-01"), pd.Timestamp("1970-01-02")
    stamps = pd.concat(parts)
    return stamps.min() - pd.Timedelta(days=5), stamps.max() + pd.Timedelta(days=5)


def _decorate(ax: Axes, title: str, label: str, limits: tuple[float, float]) -> None:
    """Shared axes style: value range, month ticks, grid, legend."""
    ax.set_title(title)
    ax.set_ylabel(label)
    ax.set_xlabel("Date")
    ax.set_ylim(*limits)
    ax.xaxis.set_major_locator(mdates.AutoDateLocator())
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(ax.xaxis.get_major_locator()))
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper left", fontsize="small")


def _save(fig: Figure, path: str | Path) -> None:
    """Write the PNG."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def _drawing_processes():
    """How the drawing processes start: forked from a process running this thread alone (a job
    process: a fork costs milliseconds); where other threads run (a job in Snakemake's process),
    forked from a fork server that has imported this module and nothing else, since a fork there
    would copy locks the other threads may hold."""
    import multiprocessing

    if threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])  # not __main__: Snakemake's command line
    return context

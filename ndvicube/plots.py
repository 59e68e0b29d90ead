"""Figures: raw vs smoothed series per point, an overview of all points, a monthly quick-look.

Raw clear observations are drawn as dots, the smoothed series as a line, dates on the x axis
as in the origin notebook; with several indices, one panel per index. Uses matplotlib's
non-interactive Agg backend (no display on HPC).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import pandas as pd

from ndvicube.tables import index_columns


def plot_point(
    raw: pd.DataFrame, smoothed: pd.DataFrame, point: str, path: str | Path
) -> plt.Figure:
    """Raw (dots) and smoothed (line) series of one point, a panel per index; says so when
    nothing is clear.

    Returns the (closed) figure, so callers and tests can inspect what was drawn.
    """
    names = index_columns(smoothed)
    fig, axes = plt.subplots(len(names), 1, figsize=(10, 4 * len(names)), squeeze=False)
    r, s = raw[raw["point"] == point], smoothed[smoothed["point"] == point]
    for ax, name in zip(axes[:, 0], names, strict=True):
        ax.plot(r["time"], r[name], "o", ms=4, color="tab:green", alpha=0.6, label="raw (clear)")
        ax.plot(s["time"], s[name], "-", lw=2, color="tab:blue", label="smoothed")
        if r[name].notna().sum() == 0:
            ax.text(0.5, 0.5, "no clear observations", transform=ax.transAxes, ha="center")
        _decorate(ax, f"{name.upper()} at {point}", name.upper(), _limits(r[name], s[name]))
    _save(fig, path)
    return fig


def plot_overview(smoothed: pd.DataFrame, area: str, path: str | Path) -> None:
    """Smoothed series of every point of an area on one set of axes per index."""
    names = index_columns(smoothed)
    fig, axes = plt.subplots(len(names), 1, figsize=(10, 5 * len(names)), squeeze=False)
    for ax, name in zip(axes[:, 0], names, strict=True):
        for point, group in smoothed.groupby("point", sort=False):
            ax.plot(group["time"], group[name], "-", lw=1.5, label=str(point))
        title = f"Smoothed {name.upper()}, area {area}"
        _decorate(ax, title, name.upper(), _limits(smoothed[name]))
    _save(fig, path)


def plot_quicklook(cube, points, area: str, path: str | Path) -> plt.Figure:
    """Median index of each month as a grid of maps, with the area's points drawn on them.

    ``cube`` is one (time, y, x) index array of the cube (NDVI by default) with its CRS;
    ``points`` have ``id``, ``lon`` and ``lat``. Months without any clear pixel are drawn
    empty and say so.
    """
    import numpy as np

    from ndvicube.geo import lonlat_to_crs

    monthly = cube.resample(time="1MS").median(skipna=True)
    n = monthly.sizes["time"]
    cols = min(n, 4)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.2 * rows), squeeze=False)
    xs, ys = lonlat_to_crs([p.lon for p in points], [p.lat for p in points], cube.rio.crs)
    extent = [float(cube.x.min()), float(cube.x.max()), float(cube.y.min()), float(cube.y.max())]
    image = None
    for ax, month in zip(axes.ravel(), monthly["time"].values, strict=False):
        data = monthly.sel(time=month).values
        image = ax.imshow(data, extent=extent, vmin=-0.2, vmax=1.0, cmap="RdYlGn")
        ax.plot(xs, ys, "k^", ms=5)
        ax.set_title(pd.Timestamp(month).strftime("%Y-%m"), fontsize="small")
        if not np.isfinite(data).any():
            ax.text(0.5, 0.5, "no clear pixel", transform=ax.transAxes, ha="center")
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    label = str(cube.name).upper()
    fig.suptitle(f"Monthly median {label}, area {area} (triangles: points)")
    if image is not None:
        fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.8, label=label)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return fig


def _limits(*series: pd.Series) -> tuple[float, float]:
    """The value axis: -0.2 to 1 (NDVI's usual range), widened to what the data reach."""
    finite = [s for s in series if s.notna().any()]
    low = min((float(s.min()) for s in finite), default=0.0)
    high = max((float(s.max()) for s in finite), default=0.0)
    return min(-0.2, low - 0.05), max(1.0, high + 0.05)


def _decorate(ax: plt.Axes, title: str, label: str, limits: tuple[float, float]) -> None:
    """Shared axes style: value range, month ticks, grid, legend."""
    ax.set_title(title)
    ax.set_ylabel(label)
    ax.set_xlabel("Date")
    ax.set_ylim(*limits)
    ax.xaxis.set_major_locator(mdates.AutoDateLocator())
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(ax.xaxis.get_major_locator()))
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper left", fontsize="small")


def _save(fig: plt.Figure, path: str | Path) -> None:
    """Write the PNG and free the figure (many points, one process)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)

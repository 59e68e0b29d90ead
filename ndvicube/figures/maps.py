"""Quick-look maps: a grid of maps, one per month or composite period, with the area's points.

Figures are matplotlib's objects on their own Agg canvas, never pyplot's global state
(:func:`ndvicube.figures.new_figure`).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from ndvicube.figures import new_figure

#: The colour map and value range of every map of an index: the quick-look's and the viewer's
#: tiles (ndvicube.viewer.tiles), so a colour means the same value in both.
CMAP = "RdYlGn"
VALUE_RANGE = (-0.2, 1.0)


def plot_quicklook(
    maps, points, area: str, path: str | Path, *, what: str = "Monthly median", fields=None
) -> Figure:
    """A grid of maps, one per time step of ``maps``, with the area's points drawn on them.

    ``maps`` is one (time, y, x) index array with its CRS: a composite (one map per period)
    or :func:`monthly_medians` of the cube; ``what`` names them in the title. ``points`` have
    ``id``, ``lon`` and ``lat``; ``fields`` (a GeoSeries of lines in the maps' CRS), the
    outlines of an area's fields. Periods without any clear pixel are drawn empty and say so.
    """
    import numpy as np

    from ndvicube.cube.store import cube_crs
    from ndvicube.geo import lonlat_to_crs

    n = maps.sizes["time"]
    cols = min(n, 4)
    rows = -(-n // cols)
    fig = new_figure(figsize=(3.2 * cols, 3.2 * rows))
    axes = fig.subplots(rows, cols, squeeze=False)
    xs, ys = lonlat_to_crs([p.lon for p in points], [p.lat for p in points], cube_crs(maps))
    extent = [float(maps.x.min()), float(maps.x.max()), float(maps.y.min()), float(maps.y.max())]
    image = None
    for ax, start in zip(axes.ravel(), maps["time"].values, strict=False):
        data = maps.sel(time=start).values
        image = ax.imshow(data, extent=extent, vmin=VALUE_RANGE[0], vmax=VALUE_RANGE[1], cmap=CMAP)
        if fields is not None:
            _draw_outlines(ax, fields)
        ax.plot(xs, ys, "k^", ms=5)
        ax.set_title(_period_label(pd.Timestamp(start), maps["time"]), fontsize="small")
        if not np.isfinite(data).any():
            ax.text(0.5, 0.5, "no clear pixel", transform=ax.transAxes, ha="center")
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    label = str(maps.name).upper()
    legend = "triangles: points" + (", lines: fields" if fields is not None else "")
    fig.suptitle(f"{what} {label}, area {area} ({legend})")
    if image is not None:
        fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.8, label=label)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    return fig


def _draw_outlines(ax, lines) -> None:
    """Field outlines as one collection (10,000 fields draw as fast as one), keeping the map's
    extent."""
    from matplotlib.collections import LineCollection
    from shapely import get_coordinates, get_parts

    parts = get_parts(lines.values)
    ax.add_collection(
        LineCollection([get_coordinates(p) for p in parts], colors="k", linewidths=0.4),
        autolim=False,
    )


def monthly_medians(cube):
    """Each month's median of a (time, y, x) index array of the cube (NaN where never clear)."""
    return cube.resample(time="1MS").median(skipna=True)


def _period_label(start: pd.Timestamp, starts) -> str:
    """``2023-01`` when every map starts a month, else the first day ``2023-01-17``."""
    monthly = all(pd.Timestamp(t).day == 1 for t in starts.values)
    return start.strftime("%Y-%m" if monthly else "%Y-%m-%d")


def rgba(values):
    """``values`` of an index as RGBA bytes of the maps' colour map and range (matplotlib's,
    so the viewer's tiles and the quick-look agree); NaN fully transparent."""
    import numpy as np
    from matplotlib import colormaps
    from matplotlib.colors import Normalize

    colours = colormaps[CMAP](Normalize(*VALUE_RANGE)(values), bytes=True)
    colours[..., 3] = np.where(np.isfinite(values), 255, 0)
    return colours


def palette_indices(values):
    """``values`` as indices into matplotlib's 256-colour table of :data:`CMAP` over
    :data:`VALUE_RANGE`, computed as ``Colormap.__call__`` does (float32, below and above the
    range the end colours), and where they are NaN. The viewer's tiles are palette PNGs of these
    (ndvicube.viewer.tiles)."""
    import numpy as np
    from matplotlib import colormaps

    n = colormaps[CMAP].N
    scaled = np.array(values, dtype=np.float32)
    nan = np.isnan(scaled)
    low, high = np.float32(VALUE_RANGE[0]), np.float32(VALUE_RANGE[1])
    scaled -= low  # Normalize's float32 steps, then Colormap's
    scaled /= high - low
    scaled *= np.float32(n)
    np.clip(scaled, 0, n - 1, out=scaled)  # truncation below is then floor; NaN stays NaN
    with np.errstate(invalid="ignore"):
        index = scaled.astype(np.uint8)
    return index, nan


def colour_table():
    """The RGB bytes of :data:`CMAP`'s 256 colours, as matplotlib draws them."""
    import numpy as np
    from matplotlib import colormaps

    cmap = colormaps[CMAP]
    return cmap(np.arange(cmap.N), bytes=True)[:, :3]

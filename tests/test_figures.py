"""Figures that scale: point figures drawn in one process, capped; an overview for any count."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from ndvicube.config import validate_config
from ndvicube.errors import ConfigError
from ndvicube.figures.series import BAND, plot_overview, plot_points
from ndvicube.timeseries.smoothing import smooth_series
from tests.workflow_helpers import ROOT


def series(points: int, days: int = 30, seed: int = 1) -> pd.DataFrame:
    """A raw series of ``points`` points: a seasonal curve per point plus noise, a third of the
    observations cloudy (NaN)."""
    rng = np.random.default_rng(seed)
    times = pd.date_range("2023-01-03", periods=days, freq="5D")
    phase = rng.uniform(0, 2 * np.pi, points)[:, None]
    values = 0.5 + 0.3 * np.sin(np.arange(days)[None, :] / 8 + phase)
    values += rng.normal(0, 0.02, values.shape)
    values[rng.random(values.shape) < 1 / 3] = np.nan
    return pd.DataFrame(
        {
            "point": np.repeat([f"p{i}" for i in range(points)], days),
            "time": np.tile(times, points),
            "ndvi": values.ravel(),
        }
    )


@pytest.mark.parametrize("points", [9, 10_000])
def test_overview_draws_median_and_band_of_every_point(points, tmp_path):
    raw = series(points)
    smoothed = smooth_series(raw)
    fig = plot_overview(raw, smoothed, "seed", tmp_path / "overview.png")
    top, bottom = fig.axes
    by_time = smoothed.groupby("time")["ndvi"]
    (median,) = top.get_lines()
    np.testing.assert_allclose(median.get_ydata(), by_time.median().values)
    (band,) = top.collections
    low, high = by_time.quantile(BAND[0]).values, by_time.quantile(BAND[1]).values
    ys = band.get_paths()[0].vertices[:, 1]
    assert np.isclose(ys.min(), low.min()) and np.isclose(ys.max(), high.max())
    # A handful of named artists, whatever the number of points.
    labels = [t.get_text() for t in top.get_legend().get_texts()]
    assert labels == ["10%-90% of points", "median of points"]
    clear = raw[raw["ndvi"].notna()].groupby("time").size()
    assert [p.get_height() for p in bottom.patches] == clear.tolist()
    assert f"{points:,} point(s)" in top.get_title()
    assert (tmp_path / "overview.png").stat().st_size > 20_000


def test_overview_of_fields_names_them_fields(tmp_path):
    """The polygon tables' overview (10,000 fields of bench/bench_fields_tables.py: one band
    and one line, drawn in 0.7 s) says fields where the points' says points."""
    raw = series(30)
    fig = plot_overview(raw, smooth_series(raw), "set", tmp_path / "o.png", what="field")
    top, bottom = fig.axes
    labels = [t.get_text() for t in top.get_legend().get_texts()]
    assert labels == ["10%-90% of fields", "median of fields"]
    assert "30 field(s)" in top.get_title() and bottom.get_ylabel() == "fields clear"


def test_point_figures_are_drawn_for_the_selected_points_only(tmp_path):
    raw = series(5)
    raw.loc[raw["point"] == "p3", "ndvi"] = np.nan  # never clear
    smoothed = smooth_series(raw)
    written = plot_points(raw, smoothed, ["p0", "p3", "p4"], tmp_path / "plots")
    assert [p.name for p in written] == ["p0.png", "p3.png", "p4.png"]
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == ["p0.png", "p3.png", "p4.png"]
    sizes = {p.name: p.stat().st_size for p in written}
    assert sizes["p0.png"] > 10_000 and sizes["p3.png"] < sizes["p0.png"]  # no dots, no line


def test_reused_figure_shows_each_points_own_values(tmp_path):
    """Nothing of the point drawn before is left: lines, note, title and limits are each
    point's own."""
    from ndvicube.figures.series import PointFigures

    raw = series(3)
    raw.loc[raw["point"] == "p1", "ndvi"] = np.nan  # p1 never clear
    smoothed = smooth_series(raw)
    figures = PointFigures(["ndvi"])
    for point in ("p0", "p1", "p2"):
        mine_raw, mine_smooth = raw[raw["point"] == point], smoothed[smoothed["point"] == point]
        fig = figures.draw(mine_raw, mine_smooth, point, tmp_path / f"{point}.png")
        (ax,) = fig.axes
        dots, line = ax.get_lines()
        np.testing.assert_array_equal(dots.get_ydata(), mine_raw["ndvi"])
        np.testing.assert_array_equal(line.get_ydata(), mine_smooth["ndvi"])
        visible = [t.get_text() for t in ax.texts if t.get_visible()]
        assert visible == (["no clear observations"] if point == "p1" else [])
        assert ax.get_title() == f"NDVI at {point}"
    figures.close()


def config_with(count: int, **figures) -> dict:
    """The shipped config with two areas: `a` with ``count`` points, `b` with one."""
    with open(ROOT / "config.yaml") as f:
        config = yaml.safe_load(f)
    return config | {
        "areas": {
            "a": {
                "bbox": [82.599, 27.154, 82.617, 27.172],
                "points": [{"id": f"p{i}", "lon": 82.608, "lat": 27.163} for i in range(count)],
            },
            "b": {
                "bbox": [82.599, 27.154, 82.617, 27.172],
                "points": [{"id": "q0", "lon": 82.608, "lat": 27.163}],
            },
        },
        "figures": figures,
    }


def test_figures_are_capped_by_default_and_on_request():
    settings = validate_config(config_with(60))
    assert settings.areas["a"].plotted_points == tuple(f"p{i}" for i in range(50))
    assert settings.areas["b"].plotted_points == ("q0",)
    assert len(validate_config(config_with(60, max_points="all")).areas["a"].plotted_points) == 60
    assert validate_config(config_with(60, max_points=0)).areas["a"].plotted_points == ()
    chosen = validate_config(config_with(60, points=["q0", "p59", "p7"])).areas
    assert chosen["a"].plotted_points == ("p7", "p59") and chosen["b"].plotted_points == ("q0",)


def test_unknown_figure_points_and_bad_limits_are_refused():
    with pytest.raises(ConfigError, match=r"figures.points: \['nope'\] is not the id of any"):
        validate_config(config_with(3, points=["p1", "nope"]))
    with pytest.raises(ConfigError, match=r"figures\.max_points"):
        validate_config(config_with(3, max_points="most"))


def test_quicklook_draws_every_fields_outline_in_one_collection(tmp_path):
    """10,000 field outlines (two-part fields included) on each map, as one line collection."""
    import geopandas as gpd
    import rioxarray  # noqa: F401  (.rio)
    import shapely
    import xarray as xr
    from matplotlib.collections import LineCollection

    from ndvicube.figures.maps import plot_quicklook

    x = 500_000 + 10 * np.arange(400)
    y = 3_000_000 - 10 * np.arange(300)
    maps = xr.DataArray(
        np.full((2, 300, 400), 0.5, dtype="float32"),
        dims=("time", "y", "x"),
        coords={"time": pd.date_range("2023-01-01", periods=2, freq="MS"), "y": y, "x": x},
        name="ndvi",
    ).rio.write_crs("EPSG:32644")
    rng = np.random.default_rng(0)
    corners = rng.uniform((x[0], y[-1]), (x[-1] - 30, y[0] - 30), (10_000, 2))
    boxes = shapely.box(corners[:, 0], corners[:, 1], corners[:, 0] + 20, corners[:, 1] + 20)
    boxes[0] = shapely.MultiPolygon([boxes[0], boxes[1]])
    outlines = gpd.GeoSeries(boxes, crs="EPSG:32644").boundary
    fig = plot_quicklook(maps, [], "fields", tmp_path / "q.png", fields=outlines)
    drawn = [c for ax in fig.axes[:2] for c in ax.collections if isinstance(c, LineCollection)]
    assert [len(c.get_segments()) for c in drawn] == [10_001, 10_001]
    assert "lines: fields" in fig._suptitle.get_text() and (tmp_path / "q.png").stat().st_size


def test_quicklook_maps_are_thinned_to_the_cubes_own_pixels():
    """A 40 km area's maps are drawn from every 8th pixel (no side above 512); a 1 km area's
    from all of them."""
    import xarray as xr

    from ndvicube.jobs.quicklook import DISPLAY_PX, for_display

    big = xr.DataArray(np.arange(4000 * 3000.0).reshape(1, 4000, 3000), dims=("time", "y", "x"))
    thin = for_display(big)
    assert thin.shape == (1, 500, 375) and max(thin.shape) <= DISPLAY_PX
    assert thin.values[0, 7, 5] == big.values[0, 56, 40]  # the cube's pixel, not a mean
    small = big.isel(y=slice(0, 100), x=slice(0, 100))
    assert for_display(small) is small

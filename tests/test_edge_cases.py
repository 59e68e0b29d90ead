"""Edge cases a long-running workflow must handle with a clear outcome, not a crash."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ndvicube.figures.series import plot_point
from ndvicube.timeseries.smoothing import smooth_series
from tests.workflow_helpers import POINTS, demo_config, snakemake, write_config

pytestmark = pytest.mark.workflow


def test_search_that_finds_nothing_names_area_dates_and_cloud_limit(catalog, tmp_path):
    config = demo_config(str(catalog.items), str(catalog.points))
    config |= {"start": "2022-02-01", "end": "2022-03-31"}  # the catalog starts in 2023
    config["stac"]["max_cloud_cover"] = 20
    result = snakemake(tmp_path, write_config(tmp_path / "c.yaml", config), "--cores", "2")
    assert result.returncode != 0
    text = result.stdout + result.stderr
    assert "No scene found for area 'seed'" in text
    assert "from 2022-02-01 to 2022-03-31 with eo:cloud_cover < 20" in text
    assert not (tmp_path / "results/seed/items.json").exists()


def test_points_with_no_clear_observation(catalog, tmp_path):
    # Masking every SCL class leaves no clear pixel anywhere: rows stay, NaN; smoothing and
    # figures still complete.
    config = demo_config(str(catalog.items), str(catalog.points))
    config |= {"start": "2023-02-01", "end": "2023-02-28"}
    config["cloud_mask"]["scl_classes"] = list(range(1, 12))
    result = snakemake(tmp_path, write_config(tmp_path / "c.yaml", config), "--cores", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    raw = pd.read_csv(tmp_path / "results/seed/series_raw.csv")
    smoothed = pd.read_csv(tmp_path / "results/seed/series_smoothed.csv")
    assert len(raw) > 0 and raw["ndvi"].isna().all()
    assert set(raw["point"]) == set(POINTS)
    assert len(smoothed) > 0 and smoothed["ndvi"].isna().all()
    assert all((tmp_path / f"results/seed/plots/{p}.png").stat().st_size > 0 for p in POINTS)


def test_plot_says_there_are_no_clear_observations(tmp_path):
    times = pd.date_range("2023-01-01", periods=6, freq="5D")
    raw = pd.DataFrame({"point": "cloudy", "time": times, "ndvi": np.nan})
    fig = plot_point(raw, smooth_series(raw), "cloudy", tmp_path / "cloudy.png")
    assert [t.get_text() for t in fig.axes[0].texts if t.get_visible()] == ["no clear observations"]
    assert (tmp_path / "cloudy.png").stat().st_size > 0
    clear = raw.assign(ndvi=0.5)
    fig = plot_point(clear, smooth_series(clear), "cloudy", tmp_path / "clear.png")
    assert [t.get_text() for t in fig.axes[0].texts if t.get_visible()] == []

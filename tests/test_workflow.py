"""The real workflow, end to end, on the synthetic catalog read from a local JSON file.

Snakemake runs in a subprocess from ``/`` with ``--directory`` (so relative paths resolve against
the working directory, not the checkout). Values are checked against the catalog's ground truth.
"""

from __future__ import annotations

import json
import shutil
import time

import numpy as np
import pandas as pd
import pytest
import rasterio
import rioxarray  # noqa: F401  (.rio on opened cubes: open_cube leaves that import to callers)

from ndvicube.cube.store import open_cube, read_attrs
from ndvicube.demo import expected_series, read_truth
from tests.workflow_helpers import (
    ONE_AREA_JOBS,
    POINTS,
    ROOT,
    demo_config,
    kept_items,
    notebook_smoothing,
    planned_jobs,
    records,
    repeated,
    snakemake,
    truth_on_cube_days,
    write_config,
)

pytestmark = pytest.mark.workflow


@pytest.fixture(scope="module")
def local_run(catalog, tmp_path_factory):
    """Dry run, then the real run, of the workflow on the catalog's items.json."""
    work = tmp_path_factory.mktemp("work-local")
    (work / "pts.csv").write_text(catalog.points.read_text())
    cfg = write_config(work / "config.yaml", demo_config(str(catalog.items), "pts.csv"))
    dry = snakemake(work, cfg, "--dry-run")
    real = snakemake(work, cfg, "--cores", "2")
    assert real.returncode == 0, real.stderr[-3000:]
    return {"work": work, "dry": dry, "real": real, "config": cfg}


def test_dry_run_plans_one_job_per_stage_and_area(local_run):
    """Six months and six points: still one search, one cube, one tables and one figures job."""
    assert local_run["dry"].returncode == 0, local_run["dry"].stderr[-2000:]
    assert planned_jobs(local_run["dry"]) == ONE_AREA_JOBS


def test_search_stores_the_filtered_items_sorted(local_run, catalog):
    stored = json.loads((local_run["work"] / "results/seed/items.json").read_text())
    assert [f["id"] for f in stored["features"]] == [f["id"] for f in kept_items(catalog)]
    assert all("self" not in [link["rel"] for link in f["links"]] for f in stored["features"])


def test_raw_series_equals_ground_truth(local_run, catalog):
    raw = pd.read_csv(local_run["work"] / "results/seed/series_raw.csv", parse_dates=["time"])
    assert list(raw.columns) == ["point", "time", "ndvi", "valid_pixels", "clear_fraction"]
    assert raw["valid_pixels"].between(0, 9).all()  # the 3 x 3 window, all inside the cube
    assert (raw.loc[raw["ndvi"].notna(), "valid_pixels"] >= 1).all()
    np.testing.assert_allclose(raw["clear_fraction"], raw["valid_pixels"] / 9, atol=1e-6)
    assert ((raw["clear_fraction"] > 0) & (raw["clear_fraction"] < 1)).any()  # cloud edges
    days = sorted(raw["time"].unique())
    assert len(raw) == len(POINTS) * len(days)  # one row per point and solar day, NaN kept
    want = truth_on_cube_days(catalog, days)
    merged = raw.merge(want, on=["point", "time"], suffixes=("", "_truth"), validate="1:1")
    assert len(merged) == len(raw)
    np.testing.assert_array_equal(merged["ndvi"].isna(), merged["ndvi_truth"].isna())
    np.testing.assert_allclose(merged["ndvi"], merged["ndvi_truth"], atol=1e-5, equal_nan=True)
    # The catalog's traps are really exercised: clouds mask some dates, the pond is water.
    assert merged["ndvi"].isna().sum() > 10
    assert merged[merged.point == "pond"]["ndvi"].max() < 0


def test_smoothed_series_equals_notebook_recipe_on_truth(local_run, catalog):
    work = local_run["work"]
    raw = pd.read_csv(work / "results/seed/series_raw.csv", parse_dates=["time"])
    smoothed = pd.read_csv(work / "results/seed/series_smoothed.csv", parse_dates=["time"])
    truth = truth_on_cube_days(catalog, sorted(raw["time"].unique()))
    for point in POINTS:
        t = truth[truth.point == point]
        want = notebook_smoothing(t["time"].to_numpy(), t["ndvi"].to_numpy())
        got = smoothed[smoothed.point == point]
        np.testing.assert_array_equal(got["time"].to_numpy(), want["time"].values)
        np.testing.assert_allclose(got["ndvi"], want.values, atol=1e-5, equal_nan=True)


def test_cube_is_georeferenced_chunked_and_documented(local_run, catalog):
    path = local_run["work"] / "results/seed/ndvi.zarr"
    cube = open_cube(path)["ndvi"]
    assert cube.dims == ("time", "y", "x") and cube.dtype == np.float32
    assert cube.rio.crs.to_epsg() == 32644 and cube.rio.resolution() == (10.0, -10.0)
    assert cube.indexes["time"].is_unique and cube.indexes["time"].is_monotonic_increasing
    assert cube.encoding["chunks"] == (8, 256, 256)
    days = {f["properties"]["datetime"][:10] for f in kept_items(catalog)}
    assert [str(t)[:10] for t in cube["time"].values] == sorted(days)
    attrs = read_attrs(path)
    assert [i["id"] for i in attrs["ndvicube:items"]] == [f["id"] for f in kept_items(catalog)]
    assert attrs["ndvicube:config"]["cloud_mask"] == {
        "scl_classes": [3, 8, 9, 10],
        "buffer_m": 0.0,
        "max_probability": None,
    }
    assert attrs["ndvicube:versions"]["odc-stac"] != "unknown"
    with rasterio.open(f'ZARR:"{path}":/ndvi') as src:
        assert src.crs.to_epsg() == 32644
        assert src.transform == cube.rio.transform()
        assert src.count == cube.sizes["time"]
        np.testing.assert_array_equal(src.read(3), cube.isel(time=2).values)


def test_every_rule_logs_and_the_cube_logs_progress(local_run):
    logs = local_run["work"] / "results/seed/logs"
    names = sorted(p.name for p in logs.iterdir())
    assert names == ["cube.log", "figures.log", "quicklook.log", "search.log", "tables.log"]
    cube_log = (logs / "cube.log").read_text()
    lines = [line for line in cube_log.splitlines() if "solar days" in line]
    assert len(lines) == -(-31 // 8)  # one line per block of 8 days: 31 days -> 4 lines
    final = "cube progress: 4/4 blocks (100%), 31/31 solar days (50/50 scenes) written in "
    assert final in lines[-1]
    assert "6 of 6 steps (100%) done" in local_run["real"].stdout + local_run["real"].stderr
    # The progress lines reach Snakemake's output too, not only the job's log.
    assert f"[cube] INFO: {final}" in local_run["real"].stderr


def test_every_job_log_holds_each_record_once(local_run):
    logs = sorted((local_run["work"] / "results/seed/logs").glob("*.log"))
    assert len(logs) == 5
    assert all(records(logs[0].with_name(n)) for n in ("search.log", "cube.log", "tables.log"))
    assert {log.name: repeated(log) for log in logs} == {log.name: [] for log in logs}
    tables = records(local_run["work"] / "results/seed/logs/tables.log")
    assert sum("phenology:" in r for r in tables) == 1


def test_plots_exist_for_every_point(local_run):
    plots = local_run["work"] / "results/seed/plots"
    assert sorted(p.stem for p in plots.glob("*.png")) == sorted(POINTS)
    assert (local_run["work"] / "results/seed/overview.png").stat().st_size > 10_000


def test_default_config_without_network_stops_at_once_with_the_demo_command(tmp_path):
    start = time.monotonic()
    result = snakemake(tmp_path, ROOT / "config.yaml", "--cores", "1")
    elapsed = time.monotonic() - start
    assert result.returncode != 0
    text = result.stdout + result.stderr
    assert "Cannot reach the STAC source https://earth-search.aws.element84.com/v1" in text
    assert "snakemake --cores all --configfile config/demo.yaml" in text
    assert elapsed < 60
    assert not (tmp_path / "results/seed/items.json").exists()


def test_invalid_config_fails_before_any_job(tmp_path, catalog):
    cfg = demo_config(str(catalog.items), [{"id": "p", "lon": 27.163, "lat": 82.608}])
    result = snakemake(tmp_path, write_config(tmp_path / "bad.yaml", cfg), "--cores", "1")
    assert result.returncode != 0
    assert "point 'p' (lon 27.163, lat 82.608) lies outside" in result.stdout + result.stderr
    assert "swapped" in result.stdout + result.stderr
    assert not (tmp_path / "results").exists()


def test_readme_demo_command_reproduces_the_full_year_truth(tmp_path):
    # The README's offline demo, as a user runs it (the default profile included), but from
    # another working directory: generate the catalog, then the whole pipeline. The field set's
    # polygons are a file of the repository (config/demo_fields.geojson), relative to it.
    (tmp_path / "config").mkdir()
    shutil.copy(ROOT / "config" / "demo_fields.geojson", tmp_path / "config")
    result = snakemake(tmp_path, ROOT / "config" / "demo.yaml", "--cores", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    catalog = tmp_path / "results" / "_demo_catalog"
    truth = expected_series(read_truth(catalog / "truth.csv"), max_cloud_cover=30)
    raw = pd.read_csv(tmp_path / "results/seed/series_raw.csv", parse_dates=["time"])
    assert raw["time"].min().year == 2023 and raw["time"].max().year == 2023
    merged = raw.merge(truth, on=["point", "time"], suffixes=("", "_truth"), how="left")
    np.testing.assert_array_equal(merged["ndvi"].isna(), merged["ndvi_truth"].isna())
    np.testing.assert_allclose(merged["ndvi"], merged["ndvi_truth"], atol=1e-5, equal_nan=True)
    assert len(truth) > 300 and set(truth["point"]) == set(POINTS)
    assert sorted(p.stem for p in (tmp_path / "results/seed/plots").glob("*.png")) == sorted(POINTS)
    # The shipped demo config turns on monthly NDVI medians: a COG per month of the year.
    months = [f"NDVI_2023-{m:02d}-01.tif" for m in range(1, 13)]
    assert sorted(p.name for p in (tmp_path / "results/seed/composites").glob("*.tif")) == months


def test_phenology_finds_each_wheat_season_of_the_half_year(local_run, catalog):
    found = pd.read_csv(
        local_run["work"] / "results/seed/phenology.csv", parse_dates=["sos", "pos", "eos"]
    )
    assert list(found.columns) == [
        "point", "index", "season", "sos", "pos", "eos", "base_start", "peak_value", "base_end",
        "amplitude",
    ]  # fmt: skip
    calendar = json.loads(catalog.calendar.read_text())
    peaks = {
        p["point"]: pd.Timestamp(s["peak"])
        for p in calendar["points"]
        for s in p["seasons"]
        if "2023-01-01" <= s["peak"] <= "2023-06-30"
    }
    assert sorted(found["point"]) == sorted(peaks)  # the four wheat fields; not pond, sugarcane
    for row in found.itertuples():
        assert abs((row.pos - peaks[row.point]).days) <= 10
        assert pd.isna(row.sos)  # sown in November: the rise is before the data
        assert row.eos.month == 3 and 0.4 < row.amplitude < 0.7


def test_snakemake_exits_when_its_last_job_ends(catalog, tmp_path):
    """Snakemake's scheduler leaves a 1 s timer behind after its last pass (non-daemon: the
    interpreter waits for it); the workflow's hooks cancel it (ndvicube/jobs/snakemake_exit.py), so
    the process ends well within that second of its last job's end (before: 1.5 s later)."""
    (tmp_path / "pts.csv").write_text(catalog.points.read_text())
    cfg = write_config(tmp_path / "config.yaml", demo_config(str(catalog.items), "pts.csv"))
    started = time.time()
    run = snakemake(tmp_path, cfg, "--cores", "1", "--verbose", "results/seed/items.json")
    ended = time.time()
    assert run.returncode == 0, run.stderr[-2000:]
    assert "ndvicube: cancelled 1 re-scheduling timer(s)" in run.stdout + run.stderr
    metadata = tmp_path / ".snakemake" / "metadata"
    job_end = max(json.loads(record.read_text())["endtime"] for record in metadata.iterdir())
    assert started < job_end < ended
    assert ended - job_end < 1.0, f"snakemake exited {ended - job_end:.2f} s after its last job"

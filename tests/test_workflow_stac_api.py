"""The real workflow through a real STAC API (rustac serve) and COGs served over HTTP with Range.

rustac's server does not conform to the Query extension, so the cloud filter runs client-side;
GDAL reads the COGs with HTTP range requests from a loopback server that logs every request.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tests.workflow_helpers import (
    ONE_AREA_JOBS,
    POINTS,
    demo_behind_api,
    demo_config,
    inline_points,
    kept_items,
    planned_jobs,
    records,
    repeated,
    snakemake,
    truth_on_cube_days,
    write_config,
)

pytestmark = pytest.mark.workflow


@pytest.fixture(scope="module")
def api_run(catalog, tmp_path_factory):
    """Serve COGs over HTTP and items through a STAC API, then run the workflow against them."""
    work = tmp_path_factory.mktemp("work-api")
    with demo_behind_api(catalog, work) as (api, cogs):
        cfg = write_config(work / "config.yaml", demo_config(api.url, inline_points(catalog)))
        dry = snakemake(work, cfg, "--dry-run")
        real = snakemake(work, cfg, "--cores", "2")
        requests = cogs.requests
    assert real.returncode == 0, real.stderr[-3000:]
    return {"work": work, "dry": dry, "requests": requests}


def test_api_dry_run_plans_the_same_jobs(api_run):
    assert planned_jobs(api_run["dry"]) == ONE_AREA_JOBS
    assert sorted(p.stem for p in (api_run["work"] / "results/seed/plots").glob("*.png")) == sorted(
        POINTS
    )


def test_api_run_logs_each_record_once(api_run):
    logs = sorted((api_run["work"] / "results/seed/logs").glob("*.log"))
    assert {log.name: repeated(log) for log in logs} == {log.name: [] for log in logs}
    search = records(api_run["work"] / "results/seed/logs/search.log")
    assert sum("before client-side filtering" in r for r in search) == 1


def test_api_search_falls_back_to_client_side_cloud_filter(api_run, catalog):
    log = (api_run["work"] / "results/seed/logs/search.log").read_text()
    assert "does not conform to the STAC Query extension" in log
    stored = json.loads((api_run["work"] / "results/seed/items.json").read_text())
    assert [f["id"] for f in stored["features"]] == [f["id"] for f in kept_items(catalog)]
    assert all(
        a["href"].startswith("http://127.0.0.1:")
        for f in stored["features"]
        for a in f["assets"].values()
    )


def test_api_raw_series_equals_ground_truth(api_run, catalog):
    raw = pd.read_csv(api_run["work"] / "results/seed/series_raw.csv", parse_dates=["time"])
    want = truth_on_cube_days(catalog, sorted(raw["time"].unique()))
    merged = raw.merge(want, on=["point", "time"], suffixes=("", "_truth"), validate="1:1")
    assert len(merged) == len(raw) == len(POINTS) * raw["time"].nunique()
    np.testing.assert_array_equal(merged["ndvi"].isna(), merged["ndvi_truth"].isna())
    np.testing.assert_allclose(merged["ndvi"], merged["ndvi_truth"], atol=1e-5, equal_nan=True)


def test_api_reads_only_red_nir_scl_with_range_requests(api_run, catalog):
    cog_requests = [r for r in api_run["requests"] if r.path.endswith(".tif")]
    files = {r.path.rsplit("/", 1)[-1] for r in cog_requests}
    assert files == {"B04.tif", "B08.tif", "SCL.tif"}  # never B03 (green) or B02 (blue)
    gets = [r for r in cog_requests if r.method == "GET"]
    assert all(r.range and r.status == 206 for r in gets)  # never a whole-file download
    assert {r.method for r in cog_requests} <= {"GET", "HEAD"}
    # Only scenes that passed the cloud filter are opened: each of their three COGs, no other.
    kept = {f["id"] for f in kept_items(catalog)}
    opened = {r.path.split("/")[-2] for r in cog_requests}
    assert opened == kept
    assert sum(r.bytes_sent for r in cog_requests) > 0

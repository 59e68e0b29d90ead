"""The demo's field set (config/demo.yaml, area ``fields``) run by Snakemake end to end (issue 26):
the jobs it runs, the fields it rejects and why, and its polygon series against the demo
catalog's exact field truth (coverage weights computed by the generator with shapely, not by
exactextract), on a sparse cube whose point series are the points' truth too. The run is
``demo_run`` (tests/conftest.py), shared with tests/test_viewer.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ndvicube.cube.store import CHUNKS_ATTR, read_attrs
from ndvicube.demo import expected_series, read_fields_truth, read_truth

ROOT = Path(__file__).resolve().parent.parent
#: Everything a run of the field set from scratch makes: one job per stage.
JOBS = {
    "demo_catalog": 1, "search": 1, "fields": 1, "cube": 1, "tables": 1, "figures": 1,
    "polygon_tables": 1, "composites": 1, "quicklook": 1, "all": 1,
}  # fmt: skip
REJECTED = [
    ["empty", 16, "empty"],
    ["west_rice", 17, "duplicated"],
    ["sliver", 18, "invalid"],
    ["far_away", 19, "outside every scene"],
]


def test_the_demo_field_set_runs_one_job_per_stage(demo_run):
    _, planned, ran = demo_run
    assert planned == JOBS
    assert ran == JOBS


def test_the_bad_fields_are_rejected_with_their_reasons(demo_run):
    work, *_ = demo_run
    rejected = pd.read_csv(work / "results/fields/fields_rejected.csv")
    assert list(rejected.columns) == ["id", "row", "reason"]
    assert rejected.values.tolist() == REJECTED
    log = (work / "results/fields/logs/fields.log").read_text()
    assert "'bowtie'" in log and "make_valid" in log  # the repair is logged, with the field


def test_polygon_means_equal_the_field_truth(demo_run):
    """Every kept field on every day of the cube: mean, clear coverage and clear fraction."""
    work, *_ = demo_run
    truth = read_fields_truth(work / "results/_demo_catalog/fields_truth.csv")
    raw = pd.read_csv(work / "results/fields/polygons_raw.csv", parse_dates=["time"])
    raw = raw.astype({"polygon": str})
    assert list(raw["polygon"].drop_duplicates()) == list(truth["field"].drop_duplicates())
    assert len(set(truth["field"])) == 15
    got = raw.set_index(["polygon", "time"]).sort_index()
    want = truth.rename(columns={"field": "polygon"}).set_index(["polygon", "time"]).sort_index()
    assert got.index.equals(want.index)
    np.testing.assert_array_equal(got["ndvi_mean"].isna(), want["ndvi_mean"].isna())
    np.testing.assert_allclose(got["ndvi_mean"], want["ndvi_mean"], atol=1e-5, equal_nan=True)
    np.testing.assert_allclose(got["count"], want["count"], rtol=1e-6)  # 7 digits in CSV
    np.testing.assert_allclose(got["clear_fraction"], want["clear_fraction"], atol=1e-6)
    assert want["ndvi_mean"].notna().sum() > 500 and (want["clear_fraction"] == 0).any()


def test_the_sparse_cube_holds_the_points_truth(demo_run):
    work, *_ = demo_run
    attrs = read_attrs(work / "results/fields/ndvi.zarr")
    assert 0 < len(attrs[CHUNKS_ATTR]) < 10
    catalog = work / "results/_demo_catalog"
    truth = expected_series(read_truth(catalog / "truth.csv"), max_cloud_cover=30)
    raw = pd.read_csv(work / "results/fields/series_raw.csv", parse_dates=["time"])
    merged = raw.merge(truth, on=["point", "time"], suffixes=("", "_truth"), how="left")
    np.testing.assert_array_equal(merged["ndvi"].isna(), merged["ndvi_truth"].isna())
    np.testing.assert_allclose(merged["ndvi"], merged["ndvi_truth"], atol=1e-5, equal_nan=True)

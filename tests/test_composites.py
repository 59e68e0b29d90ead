"""Regular composites and their Cloud-Optimized GeoTIFFs (issue 17).

The workflow runs on the demo catalog (February to May, COGs on a loopback Range server) with
monthly NDVI medians. Values are checked against the truth: at every truth point and period,
the statistic of that point's clear observations in the period (NaN, and a clear count of 0,
where there were none). Other periods and statistics are composited from the same cube by the
job's function. Reruns give exact job lists, and show which periods and COGs were redone.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
import xarray as xr
import yaml
from rio_cogeo.cogeo import cog_validate

from ndvicube.composites.periods import COUNT, PERIODS_ATTR, period_starts
from ndvicube.config import validate_config
from ndvicube.cube.store import open_cube, read_attrs
from ndvicube.errors import ConfigError
from ndvicube.geo import lonlat_to_crs
from ndvicube.jobs import build_composites
from tests.test_reruns import logged_span
from tests.workflow_helpers import (
    ONE_AREA_JOBS,
    copy_of,
    demo_config,
    edit_config,
    inline_points,
    planned_jobs,
    run,
    served_workdir,
    snakemake,
    truth_on_cube_days,
)

FIRST = {"start": "2023-02-01", "end": "2023-04-30"}
MONTHLY = {"period": "1MS", "statistic": "median", "indices": ["NDVI"]}
WITH_COMPOSITES = ONE_AREA_JOBS | {"composites": 1}


@pytest.fixture(scope="module")
def built(catalog, cogs, tmp_path_factory):
    """A working directory after a first run with monthly NDVI medians (February to April)."""
    config = demo_config("catalog.json", inline_points(catalog)) | FIRST | {"composites": MONTHLY}
    work = served_workdir(catalog, cogs, tmp_path_factory.mktemp("composited"), config)
    planned, _ = run(work, cogs)
    assert planned == WITH_COMPOSITES
    return work


def results(work: Path) -> Path:
    return work / "results/seed"


# --- values against the truth ----------------------------------------------------------------


def expected(catalog, cube: Path, period: str, statistic: str, start: str, end: str):
    """Per point and period: the statistic of the truth's clear values, and how many there were
    (computed with pandas from the truth, not with ndvicube's code)."""
    days = open_cube(cube)["time"].values
    truth = truth_on_cube_days(catalog, days)[["point", "time", "ndvi"]]
    starts = pd.date_range(pd.Timestamp(start).to_period("M").start_time, end, freq=period)
    if not period.endswith("MS"):
        starts = pd.date_range(start, end, freq=period)
    truth["period"] = starts[np.searchsorted(starts, truth["time"], side="right") - 1]
    grouped = truth.groupby(["point", "period"])["ndvi"]
    table = pd.DataFrame({"value": grouped.agg(statistic), "count": grouped.count()})
    grid = pd.MultiIndex.from_product([truth["point"].unique(), starts], names=["point", "period"])
    return table.reindex(grid).fillna({"count": 0}).reset_index()


def at_points(store: Path, catalog, variable: str) -> pd.DataFrame:
    """A composite variable at each truth point's pixel, per period."""
    data = xr.open_zarr(store, consolidated=True)[variable]
    points = inline_points(catalog)
    xs, ys = lonlat_to_crs([p["lon"] for p in points], [p["lat"] for p in points], "EPSG:32644")
    rows = []
    for point, x, y in zip(points, xs, ys, strict=True):
        values = data.sel(x=x, y=y, method="nearest").values
        for when, value in zip(data["time"].values, values, strict=True):
            rows.append({"point": point["id"], "period": pd.Timestamp(when), variable: value})
    return pd.DataFrame(rows)


def check_against_truth(store: Path, catalog, cube: Path, period, statistic, start, end) -> None:
    want = expected(catalog, cube, period, statistic, start, end)
    got = at_points(store, catalog, "ndvi").merge(at_points(store, catalog, COUNT))
    merged = got.merge(want, on=["point", "period"], validate="1:1")
    assert len(merged) == len(got) == len(want)
    np.testing.assert_array_equal(merged[COUNT], merged["count"])
    np.testing.assert_array_equal(np.isnan(merged["ndvi"]), merged["value"].isna())
    np.testing.assert_allclose(merged["ndvi"], merged["value"], atol=1e-5, equal_nan=True)
    assert (merged["count"] > 0).sum() >= len(merged) // 2  # mostly real values, not NaN


@pytest.mark.workflow
def test_monthly_medians_equal_the_truth(built, catalog):
    out = results(built)
    check_against_truth(out / "composites.zarr", catalog, out / "ndvi.zarr", "1MS", "median",
                        **FIRST)  # fmt: skip


@pytest.mark.workflow
@pytest.mark.parametrize(
    ("period", "statistic"), [("16D", "mean"), ("1MS", "max"), ("W", "median")]
)
def test_other_periods_and_statistics_equal_the_truth(built, catalog, tmp_path, period, statistic):
    cube = results(built) / "ndvi.zarr"
    build_composites(cube_path=cube, out=tmp_path / "c.zarr", cogs_out=tmp_path / "cogs",
                     period=period, statistic=statistic, indices=["NDVI"], **FIRST)  # fmt: skip
    if period == "W":  # weeks end on Sunday: the truth's grid starts on the Sunday before
        first = pd.Timestamp(FIRST["start"]) - pd.offsets.Week(weekday=6)
        start = {"start": str(first.date()), "end": FIRST["end"]}
    else:
        start = FIRST
    check_against_truth(tmp_path / "c.zarr", catalog, cube, period, statistic, **start)


# --- the store and the COGs -------------------------------------------------------------------


@pytest.mark.workflow
def test_the_store_is_a_regular_georeferenced_grid_with_provenance(built):
    out = results(built)
    store, cube = xr.open_zarr(out / "composites.zarr"), open_cube(out / "ndvi.zarr")
    assert dict(store.sizes) == {"time": 3, "y": cube.sizes["y"], "x": cube.sizes["x"]}
    assert list(store["time"].values) == list(pd.date_range("2023-02-01", periods=3, freq="MS"))
    assert store["ndvi"].dtype == np.float32 and store[COUNT].dtype == np.uint16
    np.testing.assert_array_equal(store["x"], cube["x"])
    np.testing.assert_array_equal(store["y"], cube["y"])
    assert store["ndvi"].encoding["chunks"] == cube["ndvi"].encoding["chunks"] == (8, 256, 256)
    with (
        rasterio.open(f'ZARR:"{out}/composites.zarr":/ndvi') as composite,
        rasterio.open(f'ZARR:"{out}/ndvi.zarr":/ndvi') as daily,
    ):
        assert composite.crs == daily.crs == "EPSG:32644"
        assert composite.transform == daily.transform and composite.count == 3
    periods = read_attrs(out / "composites.zarr")[PERIODS_ATTR]
    days = read_attrs(out / "ndvi.zarr")["ndvicube:days"]
    assert sorted(periods) == ["2023-02-01", "2023-03-01", "2023-04-01"]
    assert {d: ids for p in periods.values() for d, ids in p.items()} == days
    assert all(d.startswith(p[:7]) for p, fed in periods.items() for d in fed)


@pytest.mark.workflow
def test_every_period_and_index_has_a_valid_cog_with_the_composite_values(built):
    out = results(built)
    store = open_cube(out / "composites.zarr")
    names = sorted(p.name for p in (out / "composites").glob("*.tif"))
    assert names == ["NDVI_2023-02-01.tif", "NDVI_2023-03-01.tif", "NDVI_2023-04-01.tif"]
    with rasterio.open(f'ZARR:"{out}/ndvi.zarr":/ndvi') as daily:
        transform, crs = daily.transform, daily.crs
    for name in names:
        path = out / "composites" / name
        valid, errors, warnings = cog_validate(str(path))
        assert valid and not errors and not warnings, (name, errors, warnings)
        with rasterio.open(path) as cog:
            assert cog.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
            assert cog.compression.name == "deflate"
            assert cog.tags(ns="IMAGE_STRUCTURE")["PREDICTOR"] == "3"
            assert cog.dtypes == ("float32",) and np.isnan(cog.nodata)
            assert cog.overviews(1) == [2] and cog.block_shapes == [(256, 256)]
            assert cog.crs == crs and cog.transform == transform
            values = cog.read(1)
        want = store["ndvi"].sel(time=name.removeprefix("NDVI_").removesuffix(".tif")).values
        np.testing.assert_array_equal(values, want)
        assert np.isfinite(values).sum() > values.size // 2


# --- reruns -----------------------------------------------------------------------------------


def composite_log(work: Path) -> str:
    return (results(work) / "logs/composites.log").read_text()


def inodes(folder: Path) -> dict[str, int]:
    """The inode of each COG in the job's own folder (a rewritten file gets a new one)."""
    return {
        p.name: p.stat().st_ino for p in sorted((folder.parent / ".work/composites").glob("*.tif"))
    }


@pytest.mark.workflow
def test_nothing_changed_recomputes_nothing(built, cogs, tmp_path):
    work = copy_of(built, tmp_path)
    planned, read = run(work, cogs)
    assert planned == {} and read == set()


class Reader(threading.Thread):
    """Opens ``path`` afresh, resolved as the README tells readers to, and reads it whole, in a
    loop, until stopped: what each read got (a digest of its time axis and values, or the
    error) and when."""

    def __init__(self, path: Path) -> None:
        super().__init__(daemon=True)
        self.path, self.rows, self.stop = path, [], threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            started = time.time()
            try:
                store = xr.open_zarr(os.path.realpath(self.path)).load()
                got = store["time"].values.tobytes() + store["ndvi"].values.tobytes()
                self.rows.append((started, time.time(), hashlib.sha256(got).hexdigest()))
            except Exception as error:  # any failure of a read is the finding
                self.rows.append((started, time.time(), repr(error)))


def digest(store: xr.Dataset) -> str:
    return hashlib.sha256(
        store["time"].values.tobytes() + store["ndvi"].values.tobytes()
    ).hexdigest()


@pytest.mark.workflow
def test_end_extended_computes_only_the_new_periods(built, cogs, tmp_path):
    work = copy_of(built, tmp_path)
    before = inodes(results(work) / "composites")
    old = xr.open_zarr(results(work) / "composites.zarr").load()
    held = open_cube(results(work) / "composites.zarr")  # a handle kept across the rerun
    edit_config(work, end="2023-06-30")
    reader = Reader(results(work) / "composites.zarr")  # fresh opens during the rerun
    reader.start()
    try:
        planned, _ = run(work, cogs)
    finally:
        reader.stop.set()
        reader.join(timeout=60)
    assert planned == WITH_COMPOSITES
    log = composite_log(work)
    assert "5 period(s) of 1MS median; 3 copied from the existing store, 2 to compute" in log
    assert "2 COG(s) written for 2 period(s), 3 kept" in log
    after = inodes(results(work) / "composites")
    assert {n: after[n] for n in before} == before  # February to April: the same files
    assert sorted(set(after) - set(before)) == ["NDVI_2023-05-01.tif", "NDVI_2023-06-01.tif"]
    new = xr.open_zarr(results(work) / "composites.zarr").load()
    kept = new.sel(time=old["time"])
    assert kept["ndvi"].values.tobytes() == old["ndvi"].values.tobytes()
    assert kept[COUNT].values.tobytes() == old[COUNT].values.tobytes()
    # Every fresh open during the rerun found the old store or the new one, whole (the rule's
    # output, deleted when the job starts, is not what readers open), old then new; reads
    # went on while the composites job ran.
    digests = [row[2] for row in reader.rows]
    assert set(digests) == {digest(old), digest(new)}, set(digests) - {digest(old), digest(new)}
    assert digests == sorted(digests, key=[digest(old), digest(new)].index)
    began, ended = logged_span(results(work) / "logs/composites.log")
    assert any(began < row[0] and row[1] < ended for row in reader.rows)
    # A handle opened before the rerun reads the old values, not NaN, after it.
    assert held["ndvi"].values.tobytes() == old["ndvi"].values.tobytes()
    assert os.readlink(results(work) / "composites.zarr") == "composites.versions/v2.zarr"


@pytest.mark.workflow
def test_end_moved_within_a_month_recomputes_that_month_only(built, cogs, tmp_path):
    work = copy_of(built, tmp_path)
    edit_config(work, end="2023-04-15")
    planned, _ = run(work, cogs)
    assert planned == WITH_COMPOSITES
    assert "3 period(s) of 1MS median; 2 copied from the existing store, 1 to compute" in (
        composite_log(work)
    )
    april = read_attrs(results(work) / "composites.zarr")[PERIODS_ATTR]["2023-04-01"]
    assert april and max(april) <= "2023-04-15"


@pytest.mark.workflow
def test_end_moved_earlier_drops_the_last_period_and_its_cog(built, cogs, tmp_path):
    work = copy_of(built, tmp_path)
    edit_config(work, end="2023-03-31")
    planned, _ = run(work, cogs)
    assert planned == WITH_COMPOSITES
    log = composite_log(work)
    assert "2 period(s) of 1MS median; 2 copied from the existing store, 0 to compute" in log
    assert "0 COG(s) written for 0 period(s), 2 kept" in log
    store = xr.open_zarr(results(work) / "composites.zarr")
    assert list(store["time"].values) == list(pd.date_range("2023-02-01", periods=2, freq="MS"))
    assert sorted(read_attrs(results(work) / "composites.zarr")[PERIODS_ATTR]) == [
        "2023-02-01", "2023-03-01"
    ]  # fmt: skip
    names = sorted(p.name for p in (results(work) / "composites").glob("*.tif"))
    assert names == ["NDVI_2023-02-01.tif", "NDVI_2023-03-01.tif"]


@pytest.mark.workflow
def test_the_statistic_changed_recomputes_every_period_from_the_local_cube(built, cogs, tmp_path):
    work = copy_of(built, tmp_path)
    edit_config(work, composites__statistic="max")
    planned, read = run(work, cogs)
    assert planned == {"composites": 1, "quicklook": 1, "all": 1}  # the quick-look draws them
    assert read == set()  # the COG archive was not read again
    assert "0 copied from the existing store, 3 to compute" in composite_log(work)
    assert "3 COG(s) written for 3 period(s), 0 kept" in composite_log(work)


@pytest.mark.workflow
def test_composites_removed_from_the_config_leave_the_quicklook_to_the_cube(built, cogs, tmp_path):
    work = copy_of(built, tmp_path)
    config = yaml.safe_load((work / "config.yaml").read_text())
    del config["composites"]
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    planned, read = run(work, cogs)
    assert planned == {"quicklook": 1, "all": 1} and read == set()


# --- the quick-look and the report ------------------------------------------------------------


@pytest.mark.workflow
def test_the_quicklook_is_drawn_from_the_composites_and_is_in_the_report(built, tmp_path):
    work = copy_of(built, tmp_path)
    forced = snakemake(work, work / "config.yaml", "--dry-run", "--forcerun", "composites")
    assert planned_jobs(forced) == {"composites": 1, "quicklook": 1, "all": 1}
    report = snakemake(work, work / "config.yaml", "--report", "report.html")
    assert report.returncode == 0, report.stderr[-3000:]
    html = (work / "report.html").read_text()
    assert "quicklook.png" in html and "median NDVI per 1MS" in html  # its label says what it is


# --- configuration ----------------------------------------------------------------------------


def composites_config(catalog, **section) -> dict:
    return demo_config(str(catalog.items), inline_points(catalog)) | {"composites": section}


def test_the_section_defaults_to_monthly_medians_of_every_index(catalog):
    config = composites_config(catalog) | {"indices": ["NDVI", "EVI"]}
    settings = validate_config(config).composites
    assert (settings.period, settings.statistic, settings.indices) == (
        "1MS",
        "median",
        ("NDVI", "EVI"),
    )
    assert (
        validate_config(demo_config(str(catalog.items), inline_points(catalog))).composites is None
    )


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"period": "monthly"}, "composites.period: value 'monthly' is not a pandas frequency"),
        ({"indices": ["EVI"]}, "composites.indices: EVI is not among the indices computed (NDVI)"),
        ({"indices": ["NOPE"]}, "NOPE"),
        ({"statistic": "mode"}, "mode"),
    ],
)
def test_a_bad_section_is_named(catalog, section, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        validate_config(composites_config(catalog, **section))


def test_period_grids_are_anchored_so_a_later_end_only_appends():
    short = period_starts(
        "16D", pd.Timestamp("2023-01-05").date(), pd.Timestamp("2023-03-01").date()
    )
    long = period_starts(
        "16D", pd.Timestamp("2023-01-05").date(), pd.Timestamp("2023-06-01").date()
    )
    assert list(long[: len(short)]) == list(short) and short[0] == pd.Timestamp("2023-01-05")
    months = period_starts(
        "1MS", pd.Timestamp("2023-01-15").date(), pd.Timestamp("2023-03-02").date()
    )
    assert [str(m.date()) for m in months] == ["2023-01-01", "2023-02-01", "2023-03-01"]


@pytest.mark.workflow
def test_a_cog_manifest_lists_what_fed_each_file(built):
    manifest = json.loads((results(built) / "composites/.periods.json").read_text())
    periods = read_attrs(results(built) / "composites.zarr")[PERIODS_ATTR]
    assert manifest["files"] == {f"NDVI_{p}.tif": days for p, days in periods.items()}

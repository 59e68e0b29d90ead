"""The demo's ground truth, read back and turned into what the workflow must produce.

Why: tests and benchmarks compare the workflow's output with the exact answer: the index series
per point (:func:`expected_series`, from ``truth.csv``), the fields' means
(:func:`read_fields_truth`, from ``fields_truth.csv``) and the crop seasons (from
``calendar.json``). :func:`demo_series` and :func:`demo_phenology` run a generated catalog
through the workflow's functions in this process, for the steps after the series.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from ndvicube.demo.catalog import DemoCatalog, _write_json, generate_demo_catalog
from ndvicube.demo.world import _BANDS, EPSG, MASK_CLASSES, OFFSET, SCALE, DemoCatalogSpec

if TYPE_CHECKING:
    from ndvicube.cube.spec import CubeSpec
    from ndvicube.timeseries.smoothing import Smoothing


def read_truth(path: str | Path) -> pd.DataFrame:
    """Read truth.csv with exact dtypes: DN/SCL as int64, datetime tz-aware UTC, solar_day naive."""
    df = pd.read_csv(
        path,
        dtype={"point": str, "item_id": str, "scl": "int64", "cloud": "int64"}
        | {f"{band}_dn": "int64" for band in _BANDS},
    )
    df["datetime"] = pd.to_datetime(df["datetime"], utc=True).astype("datetime64[ns, UTC]")
    df["solar_day"] = pd.to_datetime(df["solar_day"]).astype("datetime64[ns]")
    return df


def read_fields_truth(path: str | Path) -> pd.DataFrame:
    """Read fields_truth.csv: ``field`` (str), ``time`` (midnight of the solar day, as the
    polygon series' ``time``), ``ndvi_mean``, ``count`` and ``clear_fraction`` (float64).

    The exact answer of ``polygons_raw.csv`` for the demo's kept fields on every day of the
    cube, under config/demo.yaml's settings (:mod:`ndvicube.demo.field_truth`).
    """
    df = pd.read_csv(path, dtype={"field": str}, parse_dates=["solar_day"])
    df = df.rename(columns={"solar_day": "time"})
    return df.astype({"time": "datetime64[ns]", "count": "float64"})


def expected_series(
    truth: pd.DataFrame,
    *,
    max_cloud_cover: float = 30,
    scl_classes: Sequence[int] = MASK_CLASSES,
    max_cloud_probability: int | None = None,
    indices: Sequence[str] = ("NDVI",),
) -> pd.DataFrame:
    """The index series the workflow must produce per point and solar day, from truth alone.

    Items with ``cloud_cover >= max_cloud_cover`` are dropped; the indices (catalogue names) are
    the catalogue's formulas on float64 reflectances, NaN on nodata (DN 0 in any band they
    read, SCL 0), masked SCL classes, or a cloud probability above ``max_cloud_probability``
    (when given); items of one solar day are fused in (datetime, item_id) order, first
    observation wins. Returns ``point, time`` and one column per index (time = midnight of the
    solar day).
    """
    from ndvicube.cube.indices import assets_needed, column, evaluate

    df = truth[truth["cloud_cover"] < max_cloud_cover]
    bands = assets_needed(indices)
    reflectance = {
        band: df[f"{band}_dn"].astype("float64") * df.get(f"{band}_scale", SCALE)
        + df.get(f"{band}_offset", OFFSET)
        for band in bands
    }
    bad = (df["scl"] == 0) | df["scl"].isin(list(scl_classes))
    for band in bands:
        bad = bad | (df[f"{band}_dn"] == 0)
    if max_cloud_probability is not None:
        bad = bad | (df["cloud"] > max_cloud_probability)
    values = {column(name): evaluate(name, reflectance).mask(bad) for name in indices}
    df = df.assign(
        **values,
        time=pd.to_datetime(df["solar_day"]).astype("datetime64[ns]"),
        _t=pd.to_datetime(df["datetime"], utc=True),
        _bad=bad,
    ).sort_values(["_t", "item_id"], kind="stable")
    # First observation of the day: the first clear item's values (all indices from one item).
    first = df[~df["_bad"]].groupby(["point", "time"], sort=True).head(1)
    keys = df[["point", "time"]].drop_duplicates().sort_values(["point", "time"])
    out = keys.merge(first[["point", "time", *values]], on=["point", "time"], how="left")
    return out.reset_index(drop=True)[["point", "time", *values]]


def cube_spec(spec: DemoCatalogSpec | None = None, **changes: Any) -> CubeSpec:
    """The demo area's cube (its box, UTM zone, 10 m, the notebook's mask), with ``changes``
    to :class:`~ndvicube.cube.spec.CubeSpec`'s fields (``cloud_mask=CloudMask(buffer_m=30)``)."""
    from ndvicube.cube.spec import CloudMask, CubeSpec

    bbox = (spec or DemoCatalogSpec()).bbox
    demo = CubeSpec(bbox, f"EPSG:{EPSG}", 10.0, cloud_mask=CloudMask(MASK_CLASSES))
    return dataclasses.replace(demo, **changes)


def demo_series(root: str | Path, spec: DemoCatalogSpec | None = None) -> tuple[DemoCatalog, Path]:
    """Generate a demo catalog under ``root`` and run it through the workflow's functions up to
    ``raw.csv`` (the cube of the whole box, series at the catalog's points), in this process.

    For tests and benchmarks of the steps after the series, which need real series with a known
    truth behind them.
    """
    from ndvicube.geo import Point
    from ndvicube.jobs import build_cube, extract_series

    root = Path(root)
    catalog = generate_demo_catalog(root / "catalog", spec or DemoCatalogSpec())
    doc = json.loads(catalog.items.read_text())
    doc["features"] = [f for f in doc["features"] if f["properties"]["eo:cloud_cover"] < 30]
    _write_json(root / "items.json", doc)
    build_cube(cube_spec(spec), items_path=root / "items.json", out=root / "ndvi.zarr")
    points = [Point(r.id, r.lon, r.lat) for r in pd.read_csv(catalog.points).itertuples()]
    extract_series(cube_path=root / "ndvi.zarr", points=points, out=root / "raw.csv")
    return catalog, root / "raw.csv"


def demo_phenology(
    catalog: DemoCatalog, raw: Path, work: str | Path, smoothing: Smoothing | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Smooth ``raw`` (the notebook's recipe unless ``smoothing`` says otherwise), find the
    seasons (fraction 0.5, minimum amplitude 0.1), and compare them with the catalog's calendar
    over its period: the seasons found, and :func:`phenology_errors`."""
    from ndvicube.timeseries.steps import season_metrics, smooth

    work = Path(work)
    smooth(raw_path=raw, out=work / "smoothed.csv", smoothing=smoothing)
    season_metrics(smoothed_path=work / "smoothed.csv", out=work / "phenology.csv")
    found = pd.read_csv(work / "phenology.csv", parse_dates=["sos", "pos", "eos"])
    calendar = json.loads(catalog.calendar.read_text())
    errors = phenology_errors(catalog.calendar, found, calendar["start"], calendar["end"])
    return found, errors


def true_seasons(catalog: DemoCatalog) -> int:
    """How many seasons of the calendar peak within the catalog's period."""
    calendar = json.loads(catalog.calendar.read_text())
    start, end = calendar["start"], calendar["end"]
    return sum(1 for p in calendar["points"] for s in p["seasons"] if start <= s["peak"] <= end)


def phenology_errors(
    calendar_path: str | Path, found: pd.DataFrame, start: str, end: str
) -> pd.DataFrame:
    """Each true season peaking in [start, end] against the found season nearest its peak.

    Rows: ``point, crop, metric (sos/pos/eos), truth, found, error_days, cut`` where ``cut``
    says the true season began before ``start`` (for sos) or ended after ``end`` (for eos), so
    an empty ``found`` is the right answer there. ``found`` has no row for a point where no
    season was found at all.
    """
    calendar = json.loads(Path(calendar_path).read_text())
    pairs = {"sos": "green_up", "pos": "peak", "eos": "senescence"}
    rows = []
    for entry in calendar["points"]:
        mine = found[found["point"] == entry["point"]]
        for truth in (s for s in entry["seasons"] if start <= s["peak"] <= end):
            if mine.empty:
                continue
            row = mine.iloc[(mine["pos"] - pd.Timestamp(truth["peak"])).abs().argmin()]
            for metric, name in pairs.items():
                got = row[metric]
                cut = truth["sowing"] < start if metric == "sos" else truth["harvest"] > end
                error = abs((got - pd.Timestamp(truth[name])).days) if pd.notna(got) else None
                rows.append(
                    {
                        "point": entry["point"],
                        "crop": truth["crop"],
                        "metric": metric,
                        "truth": truth[name],
                        "found": got,
                        "error_days": error,
                        "cut": cut and metric != "pos",
                    }
                )
    return pd.DataFrame(rows)

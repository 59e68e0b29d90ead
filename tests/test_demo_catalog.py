"""The synthetic demo catalog: shaped like real Earth Search items, and its truth is exact."""

from __future__ import annotations

import itertools
import json
import math
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pystac
import pytest
import rasterio
import yaml
from pyproj import Transformer

import ndvicube.demo.catalog as demo_catalog
from ndvicube.demo import (
    DemoCatalog,
    DemoCatalogSpec,
    expected_series,
    generate_demo_catalog,
    read_truth,
    rewrite_hrefs,
)

ROOT = Path(__file__).resolve().parent.parent
SHORT = DemoCatalogSpec(start="2023-06-01", end="2023-07-31")  # monsoon: clouds of every kind
TINY = DemoCatalogSpec(start="2023-06-01", end="2023-06-20")
TO_UTM = Transformer.from_crs("EPSG:4326", "EPSG:32644", always_xy=True)
BANDS = {"red": "B04.tif", "green": "B03.tif", "blue": "B02.tif", "nir": "B08.tif"}


@pytest.fixture(scope="module")
def catalog(tmp_path_factory) -> DemoCatalog:
    return generate_demo_catalog(tmp_path_factory.mktemp("demo") / "short", SHORT)


@pytest.fixture(scope="module")
def year(tmp_path_factory) -> tuple[DemoCatalog, float]:
    """The default full-year catalog and how long it took to generate."""
    began = time.perf_counter()
    cat = generate_demo_catalog(tmp_path_factory.mktemp("demo") / "year")
    return cat, time.perf_counter() - began


@pytest.fixture(scope="module")
def features(catalog) -> list[dict]:
    return json.loads(catalog.items.read_text())["features"]


@pytest.fixture(scope="module")
def truth(catalog) -> pd.DataFrame:
    return read_truth(catalog.truth)


@pytest.fixture(scope="module")
def real_item(shared_fixtures) -> dict:
    path = shared_fixtures / "earth-search-v1" / "sentinel-2-c1-l2a_13TDE_2024-04.json"
    return json.loads(path.read_text())["features"][0]


def _read(href: str) -> np.ndarray:
    with rasterio.open(href) as src:
        return src.read(1)


def _by_day(features: list[dict]) -> dict[str, dict[str, dict]]:
    """{date: {tile code: feature}}."""
    out: dict[str, dict[str, dict]] = {}
    for f in features:
        out.setdefault(f["properties"]["datetime"][:10], {})[f["properties"]["grid:code"]] = f
    return out


def test_items_parse_with_pystac_sorted_and_complete(catalog, features):
    items = list(pystac.ItemCollection.from_file(str(catalog.items)))
    assert [i.id for i in items] == [f["id"] for f in features]
    keys = [(f["properties"]["datetime"], f["id"]) for f in features]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    days = _by_day(features)
    assert len(days) == 12  # 2023-06-05 .. 2023-07-30, every 5 days
    tiles_per_day = [len(v) for v in days.values()]
    assert tiles_per_day.count(1) == 3 and tiles_per_day.count(2) == 9  # every 4th pass: A only
    assert all("MGRS-44RPR" in v for v in days.values())
    for item in items:
        assert set(item.assets) == {
            "red", "green", "blue", "nir", "rededge1", "swir16", "swir22", "scl", "cloud"
        }  # fmt: skip
        assert item.collection_id == "sentinel-2-c1-l2a"
        assert Path(item.get_self_href()).is_file()
        for asset in item.assets.values():
            assert Path(asset.href).is_absolute() and Path(asset.href).is_file()


def test_item_fields_have_the_real_earth_search_shape(features, real_item):
    ours = features[0]
    assert list(ours) == list(real_item)
    real_props = {k for k in real_item["properties"] if not k.startswith("storage:")}
    assert set(ours["properties"]) == real_props
    for key, value in ours["properties"].items():
        real = real_item["properties"][key]
        assert isinstance(value, int | float) == isinstance(real, int | float), key
        if not isinstance(real, int | float):
            assert type(value) is type(real), key
    real_ext = [e for e in real_item["stac_extensions"] if "storage" not in e]
    assert ours["stac_extensions"] == real_ext
    for key, asset in ours["assets"].items():
        real = real_item["assets"][key]
        assert list(asset) == list(real), key
        for field in ("type", "title", "gsd", "raster:bands", "roles"):
            assert asset[field] == real[field], (key, field)
        assert asset.get("eo:bands") == real.get("eo:bands")
        gsd = asset["gsd"]
        a, b, x0, d, e, y0 = asset["proj:transform"]
        assert (a, b, d, e) == (gsd, 0, 0, -gsd) and x0 % 60 == 0 and y0 % 60 == 0
        assert asset["file:checksum"].startswith("1220") and len(asset["file:checksum"]) == 68
    assert ours["links"][0]["rel"] == "self"
    assert ours["geometry"]["type"] == "Polygon" and len(ours["bbox"]) == 4


def test_identifiers_and_times_look_like_earth_search(features):
    for f in features:
        p = f["properties"]
        assert re.fullmatch(r"S2[AB]_T44R[PQ]R_\d{8}T\d{6}_L2A", f["id"])
        assert f["id"][:3] == {"sentinel-2a": "S2A", "sentinel-2b": "S2B"}[p["platform"]]
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT05:1[0-2]:\d\d\.\d{3}000Z", p["datetime"])
        assert re.fullmatch(
            r"S2[AB]_MSIL2A_\d{8}T\d{6}_N0510_R019_T44R[PQ]R_\d{8}T\d{6}\.SAFE", p["s2:product_uri"]
        )
        assert re.fullmatch(r"GS2[AB]_\d{8}T\d{6}_\d{6}_N05\.10", p["s2:datatake_id"])
        assert p["s2:processing_baseline"] == "05.10" and p["proj:epsg"] == 32644
        assert p["grid:code"] == f"MGRS-44R{p['mgrs:grid_square']}"
    for tiles in _by_day(features).values():
        if len(tiles) == 2:
            a, b = (t["properties"] for t in tiles.values())
            assert a["s2:datatake_id"] == b["s2:datatake_id"]
            gap = pd.Timestamp(b["datetime"]) - pd.Timestamp(a["datetime"])
            assert pd.Timedelta(0) < abs(gap) < pd.Timedelta(seconds=5)
    platforms = [
        tiles["MGRS-44RPR"]["properties"]["platform"] for tiles in _by_day(features).values()
    ]
    assert all(a != b for a, b in itertools.pairwise(platforms))  # S2A/S2B alternate


def test_cogs_are_cloud_optimized_and_match_the_item_grid(features):
    item = features[0]
    for key, asset in item["assets"].items():
        with rasterio.open(asset["href"]) as src:
            tags = src.tags(ns="IMAGE_STRUCTURE")
            assert tags["LAYOUT"] == "COG" and tags["COMPRESSION"] == "DEFLATE"
            assert tags.get("PREDICTOR") == ("2" if key not in ("scl", "cloud") else None)
            assert src.block_shapes == [(256, 256)] and src.overviews(1)
            assert src.nodata == 0 and src.crs.to_epsg() == 32644
            assert list(src.shape) == asset["proj:shape"]
            assert list(src.transform)[:6] == asset["proj:transform"]
            assert src.dtypes[0] == asset["raster:bands"][0]["data_type"]


def test_cog_pixels_at_points_equal_truth(features, truth):
    hrefs = {f["id"]: f["assets"] for f in features}
    assert set(truth["item_id"]) == set(hrefs)
    for row in truth.itertuples():
        x, y = TO_UTM.transform(row.lon, row.lat)
        got, want = {}, {}
        for key in ("red", "green", "blue", "nir", "rededge1", "swir16", "swir22", "scl"):
            column = "scl" if key == "scl" else f"{key}_dn"
            with rasterio.open(hrefs[row.item_id][key]["href"]) as src:
                r, c = src.index(x, y)
                got[column] = int(src.read(1, window=((r, r + 1), (c, c + 1)))[0, 0])
            want[column] = getattr(row, column)
        assert got == want, row


def test_overlap_is_identical_and_the_wedge_is_nodata_filled_by_the_east_tile(features):
    wedges = []
    for tiles in _by_day(features).values():
        a = tiles["MGRS-44RPR"]
        wedges.append(_read(a["assets"]["scl"]["href"]) == 0)
        if len(tiles) < 2:
            continue
        b = tiles["MGRS-44RQR"]
        for key in (*BANDS, "scl"):
            res = 20 if key == "scl" else 10
            ax0, bx0 = a["assets"][key]["proj:transform"][2], b["assets"][key]["proj:transform"][2]
            ov = round((a["assets"][key]["proj:shape"][1] * res - (bx0 - ax0)) / res)
            a_ov = _read(a["assets"][key]["href"])[:, -ov:]
            b_ov = _read(b["assets"][key]["href"])[:, :ov]
            assert (a_ov == 0).any() and (b_ov != 0).all(), key
            np.testing.assert_array_equal(a_ov[a_ov != 0], b_ov[a_ov != 0])
    assert all((w == wedges[0]).all() for w in wedges)  # the swath edge does not move
    wedge = wedges[0]
    share = wedge.mean()
    assert 0.05 < share < 0.4
    west = next(f for f in features if "RPR" in f["id"])
    red = _read(west["assets"]["red"]["href"])
    np.testing.assert_array_equal(red == 0, wedge.repeat(2, 0).repeat(2, 1))
    # the wedge also reaches a little west of the overlap inside the box: those pixels stay NaN
    ax0, y1 = west["assets"]["scl"]["proj:transform"][2::3]
    east_x0 = next(f for f in features if "RQR" in f["id"])["assets"]["scl"]["proj:transform"][2]
    rows, cols = np.nonzero(wedge)
    xs, ys = ax0 + 10 + 20 * cols, y1 - 10 - 20 * rows
    lons, lats = Transformer.from_crs("EPSG:32644", "EPSG:4326", always_xy=True).transform(xs, ys)
    w, s, e, n = SHORT.bbox
    inside = (lons > w) & (lons < e) & (lats > s) & (lats < n)
    assert 0 < (inside & (xs < east_x0)).sum() < 0.02 * inside.sum()


def test_cloud_cover_is_the_scl_cloud_share_of_valid_pixels(features):
    for f in features:
        p = f["properties"]
        scl = _read(f["assets"]["scl"]["href"])
        valid = scl != 0
        pct = 100 * np.isin(scl, (8, 9, 10)).sum() / valid.sum()
        assert p["eo:cloud_cover"] == pytest.approx(pct, abs=1e-6)
        assert p["s2:nodata_pixel_percentage"] == pytest.approx(100 * (~valid).mean(), abs=1e-6)
        for cls, name in ((3, "cloud_shadow"), (4, "vegetation"), (6, "water")):
            share = 100 * (scl == cls).sum() / valid.sum()
            assert p[f"s2:{name}_percentage"] == pytest.approx(share, abs=1e-6)
        parts = ("medium_proba_clouds", "high_proba_clouds", "thin_cirrus")
        assert sum(p[f"s2:{n}_percentage"] for n in parts) == pytest.approx(pct, abs=1e-5)


def test_clouds_are_bright_shadows_dark_and_decided_at_20_m(features):
    seen = set()
    for f in features:
        scl10 = _read(f["assets"]["scl"]["href"]).repeat(2, 0).repeat(2, 1)
        red = _read(f["assets"]["red"]["href"]) * 1e-4 - 0.1
        nir = _read(f["assets"]["nir"]["href"]) * 1e-4 - 0.1
        ndvi = (nir - red) / (nir + red)
        cloud, clear_land = np.isin(scl10, (8, 9)), np.isin(scl10, (4, 5))
        if cloud.any():
            assert red[cloud].min() >= 0.24 and np.abs(ndvi[cloud]).max() < 0.05
            seen.add("cloud")
        assert red[clear_land].max() < 0.2
        if (scl10 == 3).any():
            assert np.median(nir[scl10 == 3]) < 0.6 * np.median(nir[clear_land])
            seen.add("shadow")
        seen |= {"cirrus"} if (scl10 == 10).any() else set()
        seen |= {"unclassified"} if (scl10 == 7).any() else set()
    assert seen == {"cloud", "shadow", "cirrus", "unclassified"}


def test_points_play_their_roles(catalog, truth):
    points = pd.read_csv(catalog.points)
    assert list(points.columns) == ["id", "lon", "lat"]
    assert 5 <= len(points) <= 8
    first = points.iloc[0]
    assert (first["id"], first["lon"], first["lat"]) == ("field1", 82.608, 27.163)
    w, s, e, n = SHORT.bbox
    for p in points.itertuples():
        assert re.fullmatch(r"[a-z][a-z0-9_]*", p.id)
        assert w <= p.lon <= e and s <= p.lat <= n
        x, y = TO_UTM.transform(p.lon, p.lat)
        edge = min(x % 10, 10 - x % 10, y % 10, 10 - y % 10)
        assert edge >= 1.0 or p.id == "field1", p.id
    tiles = truth.groupby("point")["item_id"].agg(lambda ids: {i.split("_")[1] for i in ids})
    assert tiles["field1"] == {"T44RPR", "T44RQR"}
    assert tiles["west_field"] == tiles["sugarcane"] == {"T44RPR"}
    assert tiles["east_field"] == tiles["pond"] == {"T44RQR"}
    gap = truth[truth["point"] == "swath_gap"]
    in_a = gap["item_id"].str.contains("T44RPR")
    assert (gap.loc[in_a, ["red_dn", "nir_dn", "scl"]] == 0).all().all()
    assert (gap.loc[~in_a, ["red_dn", "nir_dn", "scl"]] != 0).all().all()
    pond = truth[(truth["point"] == "pond") & (truth["scl"] == 6)]
    assert len(pond) and (pond["nir_dn"] < pond["red_dn"]).all()


def test_expected_series_masks_filters_and_fuses(truth):
    series = expected_series(truth)
    assert list(series.columns) == ["point", "time", "ndvi"]
    assert series["time"].dtype == "datetime64[ns]"
    assert (series["time"] == series["time"].dt.normalize()).all()
    assert series.equals(series.sort_values(["point", "time"]).reset_index(drop=True))
    kept = truth[truth["cloud_cover"] < 30]
    keys = kept[["point", "solar_day"]].drop_duplicates()
    assert len(series) == len(keys)
    masked = kept.groupby(["point", "solar_day"])["scl"].agg(
        lambda s: s.isin([0, 3, 8, 9, 10]).all()
    )
    masked_keys = set(masked[masked].index)
    assert any(point != "swath_gap" for point, _ in masked_keys)  # clouds over kept items
    by_key = series.set_index(["point", "time"])["ndvi"]
    for key, value in by_key.items():
        assert math.isnan(value) == (key in masked_keys), key
    unmasked = expected_series(truth, scl_classes=())
    assert unmasked["ndvi"].notna().sum() > series["ndvi"].notna().sum()
    everything = expected_series(truth, max_cloud_cover=101)
    assert len(everything) > len(series)


def test_expected_series_by_hand():
    rows = [  # two tiles of one day; first is cloudy, second clear; a third item is too cloudy
        ("p", "I1", "2023-06-05T05:10:00.000000Z", 10.0, 3000, 5000, 9),
        ("p", "I2", "2023-06-05T05:10:02.000000Z", 10.0, 2000, 4000, 4),
        ("p", "I3", "2023-06-10T05:10:00.000000Z", 30.0, 2000, 4000, 4),
        ("p", "I4", "2023-06-15T05:10:00.000000Z", 29.9, 0, 0, 0),
        ("q", "I2", "2023-06-05T05:10:02.000000Z", 10.0, 1500, 1600, 5),
        ("q", "I1", "2023-06-05T05:10:00.000000Z", 10.0, 1400, 1700, 5),
    ]
    cols = ["point", "item_id", "datetime", "cloud_cover", "red_dn", "nir_dn", "scl"]
    truth = pd.DataFrame(rows, columns=cols).assign(
        solar_day=lambda d: d["datetime"].str[:10], red_scale=1e-4, red_offset=-0.1
    )
    truth = truth.assign(nir_scale=1e-4, nir_offset=-0.1)
    got = expected_series(truth)
    assert got[["point", "time"]].astype(str).values.tolist() == [
        ["p", "2023-06-05"],
        ["p", "2023-06-15"],
        ["q", "2023-06-05"],
    ]
    assert got["ndvi"].iloc[0] == pytest.approx((0.3 - 0.1) / (0.3 + 0.1), abs=1e-12)
    assert math.isnan(got["ndvi"].iloc[1])
    assert got["ndvi"].iloc[2] == pytest.approx((0.07 - 0.04) / (0.07 + 0.04), abs=1e-12)


def test_odc_stac_default_grid_reproduces_the_truth(catalog, truth):
    """odc-stac on the box at 10 m (default anchor) reads the tiles without resampling."""
    odc_stac = pytest.importorskip("odc.stac")
    items = [i for i in pystac.ItemCollection.from_file(str(catalog.items))]
    kept = [i for i in items if i.properties["eo:cloud_cover"] < 30]
    ds = odc_stac.load(
        kept, bands=["red", "nir", "scl"], bbox=SHORT.bbox, crs="EPSG:32644", resolution=10,
        groupby="solar_day", resampling="nearest",
    )  # fmt: skip
    red = ds["red"].where(ds["red"] != 0) * 1e-4 - 0.1
    nir = ds["nir"].where(ds["nir"] != 0) * 1e-4 - 0.1
    ndvi = ((nir - red) / (nir + red)).where(~ds["scl"].isin([0, 3, 8, 9, 10]))
    expected = expected_series(truth).set_index(["point", "time"])["ndvi"]
    points = pd.read_csv(catalog.points)
    for p in points.itertuples():
        x, y = TO_UTM.transform(p.lon, p.lat)
        pixel = ndvi.sel(x=x, y=y, method="nearest")
        for t, value in zip(
            pd.DatetimeIndex(pixel["time"].values).normalize(), pixel.values, strict=True
        ):
            if (p.id, t) in expected.index:
                want = expected[(p.id, t)]
                assert (math.isnan(want) and math.isnan(value)) or abs(value - want) < 1e-5
            else:  # the day's kept items do not cover this point
                assert math.isnan(value)


def test_full_year_has_kept_and_dropped_items_and_a_real_calendar(year):
    cat, seconds = year
    assert seconds < 60
    features = json.loads(cat.items.read_text())["features"]
    assert len(features) == 73 * 2 - 18
    cover = np.array([f["properties"]["eo:cloud_cover"] for f in features])
    assert (cover >= 30).sum() >= 10 and (cover < 30).sum() >= 60
    calendar = json.loads(cat.calendar.read_text())
    field1 = next(p for p in calendar["points"] if p["point"] == "field1")
    assert field1["cover"] == "rice_wheat"
    crops = {s["crop"]: s for s in field1["seasons"] if s["peak"].startswith("2023")}
    assert set(crops) == {"wheat", "rice"}
    assert (
        crops["wheat"]["peak"][5:7] in ("02", "03") and 0.75 <= crops["wheat"]["max_ndvi"] <= 0.85
    )
    assert crops["rice"]["peak"][5:7] in ("08", "09")
    assert 0.15 <= field1["base_ndvi"] <= 0.25
    series = expected_series(read_truth(cat.truth))
    f1 = series[series["point"] == "field1"].set_index("time")["ndvi"]
    assert f1["2023-02-01":"2023-03-01"].max() > 0.7
    assert f1["2023-05-01":"2023-06-15"].max() < 0.3
    assert (series.loc[series["point"] == "pond", "ndvi"].dropna() < 0).all()


def test_same_seed_gives_identical_files(tmp_path):
    a = generate_demo_catalog(tmp_path / "a", TINY)
    names = ("items.json", "truth.csv", "fields.geojson", "fields_truth.csv")
    first = {name: (a.root / name).read_bytes() for name in names}
    calendar = a.calendar.read_bytes()
    a = generate_demo_catalog(tmp_path / "a", TINY)
    assert {name: (a.root / name).read_bytes() for name in first} == first
    assert a.calendar.read_bytes() == calendar
    b = generate_demo_catalog(tmp_path / "b", TINY)
    moved = b.items.read_text().replace(str(b.root), str(a.root))
    assert moved.encode() == first["items.json"]  # checksums of every COG included
    assert b.truth.read_bytes() == first["truth.csv"]
    other = generate_demo_catalog(
        tmp_path / "c", DemoCatalogSpec(seed=7, start=TINY.start, end=TINY.end)
    )
    assert other.truth.read_bytes() != first["truth.csv"]


def test_a_period_is_a_subset_of_a_longer_one(catalog, tmp_path):
    part = generate_demo_catalog(tmp_path / "part", TINY)
    long_truth = read_truth(catalog.truth)
    short = read_truth(part.truth)
    merged = short.merge(long_truth, on=["point", "item_id"], suffixes=("", "_long"))
    assert len(merged) == len(short)
    for col in ("red_dn", "nir_dn", "scl", "cloud_cover"):
        assert (merged[col] == merged[f"{col}_long"]).all()


def test_proj_code_variant(tmp_path):
    spec = DemoCatalogSpec(start=TINY.start, end=TINY.end, proj_key="proj:code")
    cat = generate_demo_catalog(tmp_path / "code", spec)
    features = json.loads(cat.items.read_text())["features"]
    for f in features:
        assert f["properties"]["proj:code"] == "EPSG:32644"
        assert "proj:epsg" not in f["properties"]
        assert any("projection/v2" in e for e in f["stac_extensions"])
    assert len(pystac.ItemCollection.from_file(str(cat.items))) == len(features)


def test_rewrite_hrefs_points_every_asset_at_the_server(catalog, tmp_path):
    base = "http://127.0.0.1:8123/demo"
    out = rewrite_hrefs(catalog.items, tmp_path / "http.json", base + "/", catalog.root)
    rewritten = json.loads(out.read_text())["features"]
    original = json.loads(catalog.items.read_text())["features"]
    assert len(rewritten) == len(original)
    for new, old in zip(rewritten, original, strict=True):
        for key, asset in new["assets"].items():
            rel = Path(old["assets"][key]["href"]).relative_to(catalog.root).as_posix()
            assert asset["href"] == f"{base}/{rel}"
            assert rel.startswith("cogs/")
        assert new["links"][0]["href"].startswith(base + "/cogs/")
        assert new["properties"] == old["properties"]


def test_interrupted_generation_leaves_no_items_json(tmp_path, monkeypatch):
    cat = generate_demo_catalog(tmp_path / "x", TINY)
    assert cat.items.is_file()
    calls = []

    def failing_scene(*args, **kwargs):
        calls.append(1)
        if len(calls) > 1:
            raise RuntimeError("disk full")
        return scene(*args, **kwargs)

    scene = demo_catalog._scene
    monkeypatch.setattr(demo_catalog, "_scene", failing_scene)
    with pytest.raises(RuntimeError):
        generate_demo_catalog(tmp_path / "x", TINY)
    assert not cat.items.exists()


def test_cli(tmp_path):
    out = tmp_path / "cli"
    args = [
        "--seed",
        "5",
        "--start",
        "2023-06-01",
        "--end",
        "2023-06-12",
        "--proj-key",
        "proj:code",
    ]
    done = subprocess.run(
        [sys.executable, "-m", "ndvicube.demo", str(out), *args],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    printed = dict(line.split(": ", 1) for line in done.stdout.splitlines())
    assert set(printed) == {
        "root", "items", "collection", "truth", "points", "calendar", "fields", "fields_truth"
    }  # fmt: skip
    assert all(Path(p).exists() for p in printed.values())
    features = json.loads(Path(printed["items"]).read_text())["features"]
    assert len(features) == 3 and features[0]["properties"]["proj:code"] == "EPSG:32644"
    collection = json.loads(Path(printed["collection"]).read_text())
    assert collection["id"] == "sentinel-2-c1-l2a"
    assert set(collection["item_assets"]) == set(features[0]["assets"])


#: The demo's kept fields, in file order; all but `rotated` and `bowtie` are rectangles or
#: unions/differences of rectangles, whose pixel weights are products of 1-D overlaps.
KEPT_FIELDS = [
    "west_rice", "overlap_rice", "east_orchard", "wedge_rice", "inset", "cross_edges", "rotated",
    "tiny", "overlap_a", "overlap_b", "pond", "swath_edge", "ring", "two_plots", "bowtie",
]  # fmt: skip
ALIGNED = ["west_rice", "overlap_rice", "east_orchard", "wedge_rice"]


@pytest.fixture(scope="module")
def fields(catalog):
    from ndvicube.fields import read_fields

    return read_fields(catalog.fields)


def test_fields_file_is_the_demo_configs_and_holds_what_the_docs_say(catalog, fields):
    from ndvicube.fields.checks import item_footprints, screen_fields

    assert catalog.fields.read_bytes() == (ROOT / "config/demo_fields.geojson").read_bytes()
    assert fields.crs.to_epsg() == 32644
    rejected = {"empty": "empty", "west_rice": "duplicated", "sliver": "invalid"}
    rejected |= {"far_away": "outside every scene"}
    assert list(fields["id"]) == KEPT_FIELDS + list(rejected)
    screened = screen_fields(fields, footprints=item_footprints(catalog.items))
    assert list(screened.accepted["id"]) == KEPT_FIELDS
    assert screened.rejected[["id", "reason"]].values.tolist() == [
        list(r) for r in rejected.items()
    ]
    assert list(screened.rejected["row"]) == [16, 17, 18, 19]  # after the 15 kept
    assert screened.repaired == ("bowtie",)
    w, s, e, n = SHORT.bbox
    lon_lat = fields.to_crs("EPSG:4326").geometry
    for fid, geometry in zip(fields["id"], lon_lat, strict=True):
        if fid == "far_away":
            assert geometry.bounds[0] > e + 0.01  # 500 m east of the tiles, 1.1 km of the box
        elif fid != "empty":
            x0, y0, x1, y1 = geometry.bounds
            assert w < x0 and x1 < e and s < y0 and y1 < n, fid


def test_fields_play_their_roles_over_the_parcels(catalog, fields):
    from shapely.geometry import box

    parcels = json.loads(catalog.calendar.read_text())["parcels"]
    kept = dict(zip(fields["id"][:15], fields.geometry[:15], strict=True))
    bounds = {tuple(p["bounds_utm"]): p for p in parcels}
    assert all(kept[fid].bounds in bounds for fid in ALIGNED)  # exactly one parcel each
    assert bounds[kept["east_orchard"].bounds]["cover"] == "orchard"

    def parcels_under(fid):
        return [p for p in parcels if box(*p["bounds_utm"]).intersection(kept[fid]).area > 0]

    assert len(parcels_under("inset")) == 1
    pond = [p for p in parcels if box(*p["bounds_utm"]).contains(kept["pond"])]
    assert [p["cover"] for p in pond] == ["water"]  # (drawn over the parcels it replaced)
    assert len(parcels_under("cross_edges")) == 3 and len(parcels_under("rotated")) == 2
    assert len(parcels_under("two_plots")) == 2
    assert kept["tiny"].area < 100 and kept["ring"].interiors
    shared = {
        (a, b)
        for a, b in itertools.combinations(KEPT_FIELDS, 2)
        if kept[a].intersection(kept[b]).area > 0
    }
    assert shared == {("overlap_a", "overlap_b")}


def _rectangles(geometry) -> list[tuple[tuple[float, ...], int]]:
    """An axis-aligned field as signed rectangles: +1 its parts, -1 their holes."""
    parts = getattr(geometry, "geoms", [geometry])
    return [(p.exterior.bounds, 1) for p in parts] + [
        (hole.bounds, -1) for p in parts for hole in p.interiors
    ]


def _rectangles_cover(geometry, x0: np.ndarray, y1: np.ndarray) -> np.ndarray:
    """Share of each 10 m pixel (west edge x0, north edge y1) inside an axis-aligned field."""
    cover = np.zeros(len(x0))
    for (a, b, c, d), sign in _rectangles(geometry):
        dx = np.clip(np.minimum(x0 + 10, c) - np.maximum(x0, a), 0, None)
        dy = np.clip(np.minimum(y1, d) - np.maximum(y1 - 10, b), 0, None)
        cover += sign * dx * dy / 100
    return cover


def test_field_weights_are_exact_coverage_on_the_field_sets_grid():
    from ndvicube.config import validate_config
    from ndvicube.demo.field_truth import field_weights, kept_fields
    from ndvicube.demo.fields import demo_fields
    from ndvicube.demo.world import _layout
    from ndvicube.geo import area_geobox

    lay = _layout(SHORT)
    fields = demo_fields(lay)
    weights = field_weights(fields, lay)
    assert weights.ids == tuple(KEPT_FIELDS)
    geometry = dict(kept_fields(fields))  # the bow tie repaired: two triangles
    assert geometry["bowtie"].area == 2 * 55 * 110 / 2
    for k, fid in enumerate(weights.ids):
        part = slice(weights.starts[k], weights.starts[k + 1])
        w = weights.weights[part]
        assert ((w > 0) & (w <= 1)).all()
        assert w.sum() == pytest.approx(geometry[fid].area / 100, rel=1e-12), fid
        if fid not in ("rotated", "bowtie"):  # rectangles: products of 1-D overlaps
            x0 = lay.x0 + 10 * weights.cols[weights.cells[part]]
            y1 = lay.y1 - 10 * weights.rows[weights.cells[part]]
            want = _rectangles_cover(geometry[fid], x0, y1)
            np.testing.assert_allclose(w, want, rtol=0, atol=1e-12)
    tiny = weights.weights[weights.starts[7] : weights.starts[8]]
    assert sorted(tiny.round(12)) == [0.05, 0.25]  # 6 m x 5 m across a pixel edge
    cells = [set(weights.cells[weights.starts[k] : weights.starts[k + 1]]) for k in (8, 9)]
    assert cells[0] & cells[1]  # overlapping fields each keep the pixels they share
    # The demo config's field set is on this very grid: same CRS, pixel edges on the tiles' grid.
    config = yaml.safe_load((ROOT / "config/demo.yaml").read_text())
    area = validate_config(config, base_dir=ROOT).areas["fields"]
    grid = area_geobox(area.bbox, area.crs, 10.0)
    assert area.field_set and area.crs == "EPSG:32644"
    assert (grid.affine.c - lay.x0) % 10 == 0 and (lay.y1 - grid.affine.f) % 10 == 0


def test_fields_truth_is_the_weighted_mean_of_the_cogs_pixels(catalog, fields, features):
    """Every rectangular field's truth, again from the COGs (odc-stac, one solar day per time)
    and weights from 1-D overlaps: the generator's pixels, fusion, mask and weights agree."""
    odc_stac = pytest.importorskip("odc.stac")
    from ndvicube.demo import read_fields_truth

    truth = read_fields_truth(catalog.fields_truth)
    assert list(truth.columns) == ["field", "time", "ndvi_mean", "count", "clear_fraction"]
    assert truth["time"].dtype == "datetime64[ns]"
    kept = [pystac.Item.from_dict(f) for f in features if f["properties"]["eo:cloud_cover"] < 30]
    ds = odc_stac.load(
        kept, bands=["red", "nir", "scl"], bbox=SHORT.bbox, crs="EPSG:32644", resolution=10,
        groupby="solar_day", resampling="nearest",
    )  # fmt: skip
    days = pd.DatetimeIndex(ds["time"].values).normalize()
    assert sorted(set(truth["time"])) == list(days)
    red, nir = (ds[b].astype("float64").where(ds[b] != 0) * 1e-4 - 0.1 for b in ("red", "nir"))
    ndvi = ((nir - red) / (nir + red)).where(~ds["scl"].isin([0, 3, 8, 9, 10])).values
    x0, y1 = ds["x"].values - 5, ds["y"].values + 5
    by_field = truth.set_index(["field", "time"])
    for fid, geometry in zip(fields["id"][:15], fields.geometry[:15], strict=True):
        if fid in ("rotated", "bowtie"):
            continue
        cover = _rectangles_cover(geometry, *(g.ravel() for g in np.meshgrid(x0, y1)))
        inside = cover > 0
        w = cover[inside]
        for t, day in enumerate(days):
            v = ndvi[t].ravel()[inside]
            clear = np.isfinite(v)
            want = by_field.loc[(fid, day)]
            assert want["count"] == pytest.approx(w[clear].sum(), abs=1e-9), (fid, day)
            assert want["clear_fraction"] == pytest.approx(w[clear].sum() / w.sum(), abs=1e-12)
            if clear.any():
                mean = (v[clear] * w[clear]).sum() / w[clear].sum()
                assert want["ndvi_mean"] == pytest.approx(mean, abs=1e-12), (fid, day)
            else:
                assert math.isnan(want["ndvi_mean"]), (fid, day)
    seen = truth.groupby("field")["clear_fraction"].agg(["min", "max"])
    assert seen.loc["swath_edge", "max"] < 0.6  # part of it is never observed
    assert seen.loc["east_orchard", "min"] == 0  # a pass without the east tile
    assert (truth.loc[truth["field"] == "pond", "ndvi_mean"].dropna() < 0).all()

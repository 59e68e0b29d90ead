"""Fields: read from any of four formats, screened (each rejection reason, the one repair), and
a field set's box computed from its fields - on the demo catalog's real footprints and files."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys

import geopandas as gpd
import pandas as pd
import pytest
import shapely
from shapely.geometry import Point, Polygon, box

from ndvicube.config import validate_config
from ndvicube.errors import ConfigError, NoFieldsError
from ndvicube.fields import item_footprints, read_fields, screen_fields
from ndvicube.jobs import fields as fields_job
from ndvicube.logs import job_logging
from tests.workflow_helpers import ROOT, demo_config, planned_jobs, snakemake, write_config

CRS = "EPSG:32644"
#: A demo parcel's lower-left corner (UTM 44N), inside the footprints of both demo tiles.
X0, Y0 = 659260.0, 3005440.0


def square(dx: float = 0, dy: float = 0, side: float = 100) -> Polygon:
    return box(X0 + dx, Y0 + dy, X0 + dx + side, Y0 + dy + side)


#: One row per outcome, in file order: id, geometry, what screening makes of it.
ROWS = [
    ("good", square(), None),
    # A bow tie: two triangles meeting at the centre; make_valid splits it into both.
    ("bowtie", Polygon([(X0, Y0), (X0 + 100, Y0 + 100), (X0 + 100, Y0), (X0, Y0 + 100)]), None),
    # A ring whose vertices lie on one line: make_valid leaves a line, no area.
    ("line", Polygon([(X0, Y0), (X0 + 50, Y0 + 50), (X0 + 100, Y0 + 100), (X0, Y0)]), "invalid"),
    ("point", Point(X0, Y0), "invalid"),
    ("empty", Polygon(), "empty"),
    ("missing", None, "empty"),
    ("good", square(200), "duplicated"),  # the first "good" is kept
    ("far", box(700_000, Y0, 700_100, Y0 + 100), "outside every scene"),  # 40 km east
    ("second", square(0, 200), None),
    ("huge", square(0, 400, side=2000), "too large"),  # 4 km² against max_field_km2=3
    ("", square(0, 600), "invalid"),  # no id: named by its row (11)
]


@pytest.fixture
def mixed(tmp_path):
    """A GeoPackage (UTM) holding every outcome."""
    frame = gpd.GeoDataFrame({"id": [r[0] for r in ROWS]}, geometry=[r[1] for r in ROWS], crs=CRS)
    frame.to_file(tmp_path / "mixed.gpkg")
    return tmp_path / "mixed.gpkg"


def test_each_rejection_reason_and_the_logged_repair(catalog, mixed, tmp_path):
    log = tmp_path / "fields.log"
    with job_logging(log, job="fields"):
        fields_job(
            polygons_path=mixed,
            items_path=catalog.items,
            crs=CRS,
            has_points=False,
            fields_out=tmp_path / "fields.parquet",
            rejected_out=tmp_path / "fields_rejected.csv",
            max_field_km2=3,
        )
    rejected = pd.read_csv(tmp_path / "fields_rejected.csv", keep_default_na=False)
    assert rejected.to_dict("list") == {
        "id": [r[0] for r in ROWS if r[2]],
        "row": [k for k, r in enumerate(ROWS, start=1) if r[2]],
        "reason": [r[2] for r in ROWS if r[2]],
    }
    kept = gpd.read_parquet(tmp_path / "fields.parquet")
    assert list(kept.columns) == ["id", "geometry"] and kept.crs == CRS
    assert list(kept["id"]) == ["good", "bowtie", "second"]
    assert kept.geometry[0].equals(square())
    bowtie = kept.geometry[1]  # repaired: both triangles, the whole bow tie's area
    assert bowtie.is_valid and bowtie.geom_type == "MultiPolygon" and bowtie.area == 5000
    text = log.read_text()
    assert "3 field(s) accepted (1 repaired), 8 rejected (3 invalid, 2 empty, 1 duplicated, " \
        "1 too large, 1 outside every scene)" in text  # fmt: skip
    assert "field 'bowtie': invalid (Self-intersection" in text and "repaired by make_valid" in text
    assert "field 'far' (row 8) rejected: outside every scene" in text
    assert "field 'huge' (row 10) rejected: too large" in text
    assert "field row 11 (no id) rejected: invalid" in text


def test_the_job_fails_only_when_no_field_is_left_and_there_are_no_points(catalog, tmp_path):
    bad = gpd.GeoDataFrame({"id": ["far", "line"]}, geometry=[ROWS[7][1], ROWS[2][1]], crs=CRS)
    bad.to_file(tmp_path / "bad.geojson")
    args = dict(
        polygons_path=tmp_path / "bad.geojson",
        items_path=catalog.items,
        crs=CRS,
        fields_out=tmp_path / "fields.parquet",
        rejected_out=tmp_path / "fields_rejected.csv",
    )
    with pytest.raises(NoFieldsError, match=r"0 field\(s\) accepted .* 2 rejected .*no points"):
        fields_job(**args, has_points=False)
    fields_job(**args, has_points=True)  # the points still make series: no field is fine
    assert gpd.read_parquet(tmp_path / "fields.parquet").empty
    assert len(pd.read_csv(tmp_path / "fields_rejected.csv")) == 2


def test_footprints_are_the_items_outlines(catalog):
    footprints = item_footprints(catalog.items)
    features = json.loads(catalog.items.read_text())["features"]
    assert len(footprints) == len(features)
    assert footprints[0].equals(shapely.geometry.shape(features[0]["geometry"]))


def test_rejected_file_has_its_header_when_nothing_is_rejected(catalog, tmp_path):
    good = gpd.GeoDataFrame({"id": [1, 2]}, geometry=[square(), square(200)], crs=CRS)
    good.to_file(tmp_path / "good.gpkg")  # integer ids: read as "1", "2"
    fields_job(
        polygons_path=tmp_path / "good.gpkg",
        items_path=catalog.items,
        crs="EPSG:4326",  # the cube's CRS, whatever the file's
        has_points=False,
        fields_out=tmp_path / "fields.parquet",
        rejected_out=tmp_path / "fields_rejected.csv",
    )
    assert (tmp_path / "fields_rejected.csv").read_text() == "id,row,reason\n"
    kept = gpd.read_parquet(tmp_path / "fields.parquet")
    assert list(kept["id"]) == ["1", "2"] and kept.crs == "EPSG:4326"


def test_every_format_reads_the_same_fields(tmp_path):
    """GeoJSON in degrees, GeoPackage in UTM, GeoParquet, Shapefile: the same ids and, back in
    UTM, the same polygons (to a millimetre: a round trip through degrees)."""
    frame = gpd.GeoDataFrame(
        {"id": ["a", "b", "c"], "crop": ["rice", "wheat", "cane"]},
        geometry=[square(), square(200), ROWS[1][1]],
        crs=CRS,
    )
    frame.to_crs("EPSG:4326").to_file(tmp_path / "f.geojson")
    frame.to_file(tmp_path / "f.gpkg")
    frame.to_crs("EPSG:3857").to_parquet(tmp_path / "f.parquet")
    frame.to_file(tmp_path / "f.shp")
    want = screen_fields(read_fields(tmp_path / "f.gpkg"))
    assert read_fields(tmp_path / "f.gpkg").crs == CRS
    assert read_fields(tmp_path / "f.geojson").crs == "EPSG:4326"
    for name in ("f.geojson", "f.parquet", "f.shp"):
        got = screen_fields(read_fields(tmp_path / name))
        assert list(got.accepted.columns) == ["id", "geometry"], name
        assert list(got.accepted["id"]) == ["a", "b", "c"] and got.repaired == ("c",), name
        utm = got.accepted.to_crs(CRS)
        for mine, theirs in zip(utm.geometry, want.accepted.geometry, strict=True):
            assert mine.hausdorff_distance(theirs) < 1e-3, name


def _field_set(catalog, polygons=None, points=None) -> dict:
    """The demo config whose area is a field set of ``polygons`` and/or ``points``."""
    config = demo_config(str(catalog.items), str(catalog.points))
    config["areas"] = {"parcels": {}}
    if polygons is not None:
        config["areas"]["parcels"]["polygons"] = str(polygons)
    if points is not None:
        config["areas"]["parcels"]["points"] = points
    return config


@pytest.fixture
def parcels(catalog, tmp_path):
    """Three demo parcels (the calendar's UTM bounds) as GeoJSON in degrees, plus junk rows."""
    calendar = json.loads(catalog.calendar.read_text())
    chosen = [p for p in calendar["points"] if p["cover"] != "water"][:3]
    frame = gpd.GeoDataFrame(
        {"id": [f"parcel_{p['parcel']}" for p in chosen] + ["empty", "parcel_dup"]},
        geometry=[box(*p["bounds_utm"]) for p in chosen] + [None, square(-5000, -5000)],
        crs=CRS,
    )
    frame.loc[4, "id"] = frame.loc[0, "id"]  # a duplicate far away: not in the box
    frame.to_crs("EPSG:4326").to_file(tmp_path / "parcels.geojson")
    return {"path": tmp_path / "parcels.geojson", "usable": frame.iloc[:3]}


def test_field_set_box_is_the_bounds_of_its_polygons_and_points(catalog, parcels, tmp_path):
    config = _field_set(catalog, parcels["path"])
    area = validate_config(config, base_dir=tmp_path).areas["parcels"]
    degrees = parcels["usable"].to_crs("EPSG:4326")
    assert area.field_set and area.points == () and area.crs == CRS
    assert area.bbox == pytest.approx(tuple(degrees.total_bounds), abs=1e-9)
    # Bounds of the polygons reprojected, not of their UTM box reprojected (a larger box).
    utm_box = gpd.GeoSeries([box(*parcels["usable"].total_bounds)], crs=CRS).to_crs(4326)
    assert utm_box.total_bounds[0] < area.bbox[0] and utm_box.total_bounds[2] > area.bbox[2]
    point = {"id": "west", "lon": area.bbox[0] - 0.01, "lat": area.bbox[1] + 0.001}
    with_point = validate_config(_field_set(catalog, parcels["path"], [point]), base_dir=tmp_path)
    assert with_point.areas["parcels"].bbox == (point["lon"], *area.bbox[1:])
    alone = validate_config(_field_set(catalog, points=[point]), base_dir=tmp_path)
    assert alone.areas["parcels"].bbox == (point["lon"], point["lat"]) * 2
    boxed = copy.deepcopy(config)
    boxed["areas"]["parcels"]["bbox"] = [82.599, 27.154, 82.617, 27.172]
    assert not validate_config(boxed, base_dir=tmp_path).areas["parcels"].field_set


def test_config_parsing_of_boxes_does_not_import_geopandas(tmp_path):
    """A config without field sets pays nothing for them (geopandas is imported by a job)."""
    code = (
        "import sys, yaml; from ndvicube.config import validate_config; "
        "validate_config(yaml.safe_load(open('config.yaml'))); "
        "print('geopandas' in sys.modules, 'shapely' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.stdout.split() == ["False", "False"], done.stderr


def _no_crs(path):
    gpd.GeoDataFrame({"id": ["a"]}, geometry=[square()]).to_parquet(path)


@pytest.mark.parametrize(
    ("name", "write", "expected"),
    [
        (
            "noid.gpkg",
            lambda p: gpd.GeoDataFrame({"name": ["a"]}, geometry=[square()], crs=CRS).to_file(p),
            [r"areas.parcels.polygons", r"has no `id` column \(its columns: name\)"],
        ),
        ("nocrs.parquet", _no_crs, [r"areas.parcels.polygons", "declares no CRS"]),
        (
            "junk.geojson",
            lambda p: gpd.GeoDataFrame(
                {"id": ["a", "b"]}, geometry=[None, Point(82.6, 27.16)], crs="EPSG:4326"
            ).to_file(p),
            ["no usable polygon", r"0 field\(s\) accepted", "1 invalid, 1 empty"],
        ),
        ("fields.kml", lambda p: p.write_text("<kml/>"), ["not a fields file", "GeoParquet"]),
        ("broken.gpkg", lambda p: p.write_text("not a geopackage"), ["cannot be read as"]),
    ],
)
def test_unusable_fields_files_are_named(catalog, tmp_path, name, write, expected):
    write(tmp_path / name)
    with pytest.raises(ConfigError) as err:
        validate_config(_field_set(catalog, tmp_path / name), base_dir=tmp_path)
    message = str(err.value)
    for pattern in expected:
        assert re.search(pattern, message), message
    assert "\n" not in message  # one paragraph


def test_an_area_needs_points_or_polygons(catalog, tmp_path):
    with pytest.raises(ConfigError, match=r"areas.parcels.*needs `points`.*`polygons`"):
        validate_config(_field_set(catalog), base_dir=tmp_path)


def test_a_field_set_of_polygons_alone_runs_end_to_end(catalog, parcels, tmp_path):
    """Planned: searched, screened, cubed, polygon tables and quick-look; no point series (it
    has no points). Run: the kept fields' tables, the rejected ones listed, the log's counts."""
    cfg = write_config(tmp_path / "c.yaml", _field_set(catalog, parcels["path"]))
    dry = snakemake(tmp_path, cfg, "--dry-run")
    assert dry.returncode == 0, dry.stderr[-3000:]
    jobs = planned_jobs(dry)
    assert {k: jobs.get(k) for k in ("fields", "polygon_tables", "quicklook")} == {
        "fields": 1, "polygon_tables": 1, "quicklook": 1,
    }  # fmt: skip
    assert "tables" not in jobs and "figures" not in jobs
    done = snakemake(tmp_path, cfg, "--cores", "2")
    assert done.returncode == 0, done.stderr[-3000:]
    results = tmp_path / "results/parcels"
    raw = pd.read_csv(results / "polygons_raw.csv")
    assert sorted(raw["polygon"].unique()) == sorted(parcels["usable"]["id"])
    assert raw["count"].max() > 0
    rejected = pd.read_csv(results / "fields_rejected.csv")
    assert rejected.values.tolist() == [
        ["empty", 4, "empty"],
        [parcels["usable"]["id"][0], 5, "duplicated"],
    ]
    assert (
        "3 field(s) accepted (0 repaired), 2 rejected (1 empty, 1 duplicated)"
        in (results / "logs/fields.log").read_text()
    )
    assert gpd.read_parquet(results / "fields.parquet").crs == CRS
    assert (results / "quicklook.png").is_file() and not (results / "series_raw.csv").exists()

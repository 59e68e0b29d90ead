"""Config validation: defaults filled, and every bad value named before any job runs."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import pytest
import yaml

from ndvicube.config import load_schema, validate_config
from ndvicube.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def base() -> dict:
    with open(ROOT / "config.yaml") as f:
        return yaml.safe_load(f)


def test_default_config_is_the_notebook_job(base):
    s = validate_config(base, base_dir=ROOT)
    assert s.stac.url == "https://earth-search.aws.element84.com/v1"
    assert s.stac.collection == "sentinel-2-c1-l2a"
    assert s.stac.max_cloud_cover == 30
    assert (str(s.start), str(s.end)) == ("2023-01-01", "2023-12-31")
    area = s.areas["seed"]
    assert area.bbox == (82.599, 27.154, 82.617, 27.172)
    assert area.crs == "EPSG:32644"
    assert [(p.id, p.lon, p.lat) for p in area.points] == [("field1", 82.608, 27.163)]
    assert s.cloud_mask.scl_classes == (3, 8, 9, 10)
    assert (s.smoothing.resample, s.smoothing.window) == ("5D", 3)


def test_defaults_are_filled_from_the_schema():
    minimal = {
        "start": "2023-01-01",
        "end": "2023-03-01",
        "areas": {
            "a": {"bbox": [10, 50, 10.1, 50.1], "points": [{"id": "p", "lon": 10.05, "lat": 50.05}]}
        },
    }
    s = validate_config(minimal, base_dir=ROOT)
    assert s.stac.collection == "sentinel-2-c1-l2a"
    assert s.resolution == 10
    assert s.cloud_mask.scl_classes == (3, 8, 9, 10)
    assert s.smoothing.window == 3


def test_center_and_buffer_make_a_box_of_that_size_on_the_ground(base):
    cfg = copy.deepcopy(base)
    cfg["areas"]["seed"] = {
        "center": [82.608, 27.163],
        "buffer_km": 1,
        "points": base["areas"]["seed"]["points"],
    }
    box = validate_config(cfg, base_dir=ROOT).areas["seed"].bbox
    # 1 km at 27.163 N is 0.009018 deg of latitude and 0.010105 deg of longitude; the square
    # is laid out in UTM 44N, rotated 0.73 deg from north there, so its envelope is ~1.3% wider.
    assert box[3] - box[1] == pytest.approx(2 * 0.009018 * 1.013, rel=0.005)
    assert box[2] - box[0] == pytest.approx(2 * 0.010105 * 1.013, rel=0.005)
    assert (box[0] + box[2]) / 2 == pytest.approx(82.608, abs=1e-4)


@pytest.mark.parametrize(
    ("lon", "lat", "crs"),
    [
        (5.3, 60.4, "EPSG:32632"),  # western Norway: zone 32 widened west to 3 E
        (2.999, 60.4, "EPSG:32631"),
        (3.0, 56.0, "EPSG:32632"),
        (3.0, 55.999, "EPSG:32631"),  # south of 56 N the plain formula
        (3.0, 64.0, "EPSG:32631"),  # 64 N and north of it too
        (11.999, 63.9, "EPSG:32632"),
        (12.0, 60.0, "EPSG:32633"),
        (8.999, 78.0, "EPSG:32631"),  # Svalbard: 31 (0-9 E), 33, 35, 37; no 32, 34, 36
        (9.0, 72.0, "EPSG:32633"),
        (20.999, 84.0, "EPSG:32633"),
        (21.0, 78.0, "EPSG:32635"),
        (33.0, 78.0, "EPSG:32637"),
        (41.999, 78.0, "EPSG:32637"),
        (42.0, 78.0, "EPSG:32638"),
        (9.0, 71.999, "EPSG:32632"),
        (-0.001, 78.0, "EPSG:32630"),
        (82.6, 27.2, "EPSG:32644"),
        (-70.6, -33.4, "EPSG:32719"),
        (180.0, 0.0, "EPSG:32660"),
    ],
)
def test_utm_zone_follows_the_norway_and_svalbard_exceptions(lon, lat, crs):
    from ndvicube.geo import utm_crs_for

    assert utm_crs_for(lon, lat) == crs


def test_yaml_dates_are_accepted(base):
    cfg = yaml.safe_load("start: 2023-01-01\nend: 2023-02-01\n")
    s = validate_config({**base, **cfg}, base_dir=ROOT)
    assert str(s.end) == "2023-02-01"


def _mutate(base, path: str, value):
    cfg = copy.deepcopy(base)
    node = cfg
    keys = path.split(".")
    for key in keys[:-1]:
        node = node[int(key)] if isinstance(node, list) else node[key]
    node[keys[-1]] = value
    return cfg


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (
            "areas.seed.bbox",
            [27.154, 82.599, 27.172, 82.617],
            ["areas.seed.bbox", "82.599", "swapped"],
        ),
        ("areas.seed.bbox", [82.617, 27.154, 82.599, 27.172], ["areas.seed.bbox", "empty box"]),
        ("areas.seed.bbox", [200, 27.154, 201, 27.172], ["areas.seed.bbox", "200", "out of range"]),
        ("end", "2022-12-31", ["end", "2022-12-31", "before start"]),
        ("start", "2023-13-01", ["start", "2023-13-01"]),
        ("stac.max_cloud_cover", 130, ["stac.max_cloud_cover", "130"]),
        ("smoothing.resample", "fortnight", ["smoothing.resample", "fortnight"]),
        ("smoothing.window", 0, ["smoothing.window", "0"]),
        ("cloud_mask.scl_classes", [3, 42], ["cloud_mask.scl_classes", "42"]),
        ("resolution", -10, ["resolution", "-10"]),
    ],
)
def test_bad_values_are_named(base, path, value, expected):
    with pytest.raises(ConfigError) as err:
        validate_config(_mutate(base, path, value), base_dir=ROOT)
    for text in expected:
        assert text in str(err.value)


def test_unknown_keys_are_named(base):
    with pytest.raises(ConfigError, match=r"'max_clouds'.*under stac"):
        validate_config(_mutate(base, "stac.max_clouds", 20), base_dir=ROOT)
    with pytest.raises(ConfigError, match=r"'smoothin'"):
        validate_config({**base, "smoothin": {}}, base_dir=ROOT)


def test_point_outside_its_area(base):
    cfg = _mutate(base, "areas.seed.points", [{"id": "far", "lon": 82.7, "lat": 27.163}])
    with pytest.raises(ConfigError, match=r"'far' \(lon 82.7, lat 27.163\) lies outside"):
        validate_config(cfg, base_dir=ROOT)


def test_point_with_swapped_lat_lon(base):
    cfg = _mutate(base, "areas.seed.points", [{"id": "p", "lon": 27.163, "lat": 82.608}])
    with pytest.raises(ConfigError, match="swapped"):
        validate_config(cfg, base_dir=ROOT)


def test_duplicate_point_ids(base):
    pts = [{"id": "a", "lon": 82.608, "lat": 27.163}, {"id": "a", "lon": 82.609, "lat": 27.163}]
    with pytest.raises(ConfigError, match="duplicate point id 'a'"):
        validate_config(_mutate(base, "areas.seed.points", pts), base_dir=ROOT)


def test_area_needs_exactly_one_of_bbox_or_center(base):
    cfg = _mutate(base, "areas.seed.center", [82.608, 27.163])
    with pytest.raises(ConfigError, match=r"areas.seed.*exactly one of"):
        validate_config(cfg, base_dir=ROOT)


def test_points_csv_relative_to_the_working_directory(base, tmp_path):
    (tmp_path / "pts.csv").write_text("id,lon,lat\nA,82.608,27.163\nB,82.61,27.16\n")
    s = validate_config(_mutate(base, "areas.seed.points", "pts.csv"), base_dir=tmp_path)
    area = s.areas["seed"]
    assert [(p.id, p.lon, p.lat) for p in area.points] == [
        ("A", 82.608, 27.163),
        ("B", 82.61, 27.16),
    ]
    assert area.points_file.resolve() == tmp_path / "pts.csv"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("id,lon,lat\nA,82.608,north\n", ["line 2", "'north'"]),
        ("name,lon,lat\nA,82.608,27.163\n", ["missing column", "id"]),
        ("id,lon,lat\n", ["no points"]),
        ("id,lon,lat\nA B,82.608,27.163\n", ["line 2", "'A B'"]),
        ("id,lon,lat\nA,82.608,27.163\nA,82.609,27.163\n", ["duplicate point id 'A'"]),
    ],
)
def test_malformed_points_csv(base, tmp_path, text, expected):
    (tmp_path / "pts.csv").write_text(text)
    with pytest.raises(ConfigError) as err:
        validate_config(_mutate(base, "areas.seed.points", "pts.csv"), base_dir=tmp_path)
    for fragment in expected:
        assert fragment in str(err.value)


def test_missing_points_csv_names_the_path(base, tmp_path):
    with pytest.raises(ConfigError, match=r"nope\.csv"):
        validate_config(_mutate(base, "areas.seed.points", "nope.csv"), base_dir=tmp_path)


def test_relative_stac_path_resolved_against_working_directory(base, tmp_path):
    s = validate_config(_mutate(base, "stac.url", "cat/items.json"), base_dir=tmp_path)
    assert s.stac.url == str(tmp_path / "cat" / "items.json")


def test_savgol_window_must_be_odd_and_longer_than_the_order():
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    config["smoothing"] |= {"method": "savgol", "window": 4, "polyorder": 2}
    with pytest.raises(ConfigError, match=r"method savgol with window 4 and polyorder 2"):
        validate_config(config)
    config["smoothing"] |= {"window": 7}
    settings = validate_config(config)
    assert (settings.smoothing.method, settings.smoothing.window, settings.smoothing.polyorder) == (
        "savgol",
        7,
        2,
    )


def _section_fields(section) -> set[str]:
    """A section dataclass's fields as config keys (``lambda_`` is the key ``lambda``)."""
    return {f.name.rstrip("_") for f in dataclasses.fields(section)}


def test_each_section_is_a_dataclass_whose_fields_are_its_yaml_keys(base):
    """Settings nests one frozen dataclass per config section, named field by field like the
    schema's keys, so a new setting is a schema key, a field, and the code that uses it."""
    schema = load_schema()["properties"]
    settings = validate_config(base | {"demo": {}}, base_dir=ROOT)
    sections = {
        f.name: getattr(settings, f.name)
        for f in dataclasses.fields(settings)
        if dataclasses.is_dataclass(getattr(settings, f.name))
    }
    assert set(sections) == {
        "stac", "cube", "cloud_mask", "smoothing", "phenology", "polygon_series", "fields",
        "figures", "compute", "composites", "demo",
    }  # fmt: skip
    runtime_only = {"compute": {"threads", "io_threads"}}  # the rule's, not the config's
    for name, section in sections.items():
        assert dataclasses.fields(section) and type(section).__dataclass_params__.frozen, name
        keys = set(schema[name]["properties"])
        assert _section_fields(section) - runtime_only.get(name, set()) == keys, name
    # The filled config a rule passes on is the same validation's (the schema applied once).
    assert settings.config["smoothing"]["lambda"] == settings.smoothing.lambda_ == 10
    assert settings.config["compute"] == {"scheduler": "threads", "reader": "range",
                                          "read_deadline_s": 120}  # fmt: skip


def test_a_new_section_key_reaches_its_dataclass_without_other_code(base, monkeypatch):
    """What the sentence above promises, tried: a key added to the schema and to CloudMask
    (nothing else) is filled, validated and carried by the cube job's parameters."""
    from ndvicube.config import schema as schema_module
    from ndvicube.cube import spec as spec_module

    real = schema_module.load_schema()
    real["properties"]["cloud_mask"]["properties"]["dilate_cirrus"] = {
        "type": "boolean", "default": False,
    }  # fmt: skip
    monkeypatch.setattr(schema_module, "load_schema", lambda: copy.deepcopy(real))
    extended = dataclasses.make_dataclass(
        "CloudMask", [("dilate_cirrus", bool, dataclasses.field(default=False))],
        bases=(spec_module.CloudMask,), frozen=True,
    )  # fmt: skip
    monkeypatch.setattr(spec_module, "CloudMask", extended)
    monkeypatch.setattr("ndvicube.config.settings.CloudMask", extended)
    settings = validate_config(_mutate(base, "cloud_mask.dilate_cirrus", True), base_dir=ROOT)
    assert settings.cloud_mask.dilate_cirrus is True
    area = settings.areas["seed"]
    spec = spec_module.CubeSpec(area.bbox, area.crs, cloud_mask=settings.cloud_mask)
    params = spec.to_params()
    assert params["cloud_mask"]["dilate_cirrus"] is True
    assert spec_module.CubeSpec.from_params(params) == spec

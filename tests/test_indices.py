"""Spectral indices by name (spyndex): config checks, band mapping, and the workflow's values
against the catalogue's formulas on the demo catalog's truth, read over HTTP band by band."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import rioxarray  # noqa: F401  (.rio on opened cubes: open_cube leaves that import to callers)

from ndvicube.config import validate_config
from ndvicube.cube.indices import SENTINEL2_ASSETS, assets_needed, evaluate
from ndvicube.cube.store import open_cube
from ndvicube.demo import read_truth, rewrite_hrefs
from ndvicube.errors import ConfigError
from ndvicube.testing.rangeserver import RangeHTTPServer
from tests.workflow_helpers import (
    POINTS,
    demo_config,
    snakemake,
    truth_on_cube_days,
    write_config,
)

#: The issue's examples (the catalogue calls NDRE "NDREI"), EVI first to show order is kept.
INDICES = ["EVI", "NDVI", "NDWI", "NBR", "SAVI", "NDREI"]
COLUMNS = [name.lower() for name in INDICES]


def config_with(**changes) -> dict:
    config = demo_config("items.json", [{"id": "p", "lon": 82.608, "lat": 27.163}])
    return config | changes


@pytest.mark.parametrize(
    ("indices", "message"),
    [
        (["NDRE"], r"'NDRE' is not an index .* Did you mean NDREI, "),
        (["evi2x"], r"'evi2x' is not an index .* Did you mean EVI2"),
        (["kNDVI"], r"index 'kNDVI' \(\(kNN-kNR\)/\(kNN\+kNR\)\) needs \['kNN', 'kNR'\]"),
        (["NDVI", "ndvi"], r"names the column\(s\) \['ndvi'\] more than once"),
        ([], r"the list is empty"),
    ],
)
def test_bad_index_names_fail_naming_the_value_and_the_fix(indices, message, tmp_path):
    with pytest.raises(ConfigError, match=message):
        validate_config(config_with(indices=indices), base_dir=tmp_path)


def test_names_match_case_insensitively_and_phenology_index_must_be_computed(tmp_path):
    settings = validate_config(config_with(indices=["evi", "ndvi"]), base_dir=tmp_path)
    assert settings.indices == ("EVI", "NDVI") and settings.phenology.index == "EVI"
    chosen = config_with(indices=["evi", "ndvi"], phenology={"index": "NDVI"})
    assert validate_config(chosen, base_dir=tmp_path).phenology.index == "NDVI"
    with pytest.raises(ConfigError, match=r"phenology.index: 'NBR' is not one of the indices"):
        validate_config(config_with(phenology={"index": "NBR"}), base_dir=tmp_path)


def test_only_the_bands_an_index_needs_are_listed():
    assert assets_needed(["NDVI"]) == ("red", "nir")
    assert assets_needed(["NDWI"]) == ("green", "nir")  # no red
    assert assets_needed(INDICES) == ("blue", "green", "red", "rededge1", "nir", "swir22")
    assert assets_needed(["NDMI", "NBR2"]) == ("nir", "swir16", "swir22")


def test_catalogue_formulas_map_to_the_right_sentinel2_bands(catalog):
    """Textbook formulas written by hand on the truth's reflectances (float64): a band mapped to
    the wrong asset (say S2 to swir16) would change every value."""
    truth = read_truth(catalog.truth)
    r = {
        band: truth[f"{band}_dn"] * 0.0001 - 0.1
        for band in ("blue", "green", "red", "rededge1", "nir", "swir16", "swir22")
    }
    b, g, red, re1, n, s1, s2 = (r[k] for k in r)
    textbook = {
        "NDVI": (n - red) / (n + red),
        "EVI": 2.5 * (n - red) / (n + 6 * red - 7.5 * b + 1),
        "NDWI": (g - n) / (g + n),
        "NBR": (n - s2) / (n + s2),
        "NDMI": (n - s1) / (n + s1),
        "SAVI": 2 * (n - red) / (n + red + 1),  # L = 1 (the catalogue's default)
        "NDREI": (n - re1) / (n + re1),
    }
    for name, want in textbook.items():
        np.testing.assert_allclose(evaluate(name, r), want, rtol=1e-12, err_msg=name)


def test_formulas_are_evaluated_without_the_catalogue_and_to_the_same_bits(monkeypatch):
    """The cube evaluates each formula per block: compiled once per process, not through
    ``spyndex.computeIndex`` (which reads its JSON catalogue on every call, issue 35), with
    the very values ``computeIndex`` gives (float32 blocks, zero sums and negatives)."""
    import spyndex

    rng = np.random.default_rng(35)
    bands = ("blue", "green", "red", "rededge1", "nir", "swir16", "swir22")
    r = {b: rng.uniform(-0.1, 0.8, (64, 64)).astype("float32") for b in bands}
    r["nir"][0, :8] = -r["red"][0, :8]  # N + R == 0: NDVI's division by zero
    calls = []
    original = spyndex.computeIndex

    def counted(*args, **kwargs):
        calls.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(spyndex, "computeIndex", counted)
    for name in [*INDICES, "NDMI"]:
        params = {p: r[SENTINEL2_ASSETS[p]] if p in SENTINEL2_ASSETS else
                  spyndex.constants[p].default for p in spyndex.indices[name].bands}  # fmt: skip
        with np.errstate(divide="ignore", invalid="ignore"):
            got, want = evaluate(name, r), original(name, params=params)
        assert got.dtype == want.dtype, name
        assert np.array_equal(got, want, equal_nan=True), name
    assert calls == []


@pytest.fixture(scope="module")
def indices_run(catalog, tmp_path_factory):
    """Two months of the workflow with six indices, COGs served over HTTP (logged)."""
    work = tmp_path_factory.mktemp("indices")
    with RangeHTTPServer(catalog.root) as cogs:
        served = rewrite_hrefs(catalog.items, work / "items_http.json", cogs.url, catalog.root)
        points = [
            {"id": row.id, "lon": float(row.lon), "lat": float(row.lat)}
            for row in pd.read_csv(catalog.points).itertuples()
        ]
        config = demo_config(str(served), points) | {
            "start": "2023-03-01",
            "end": "2023-04-30",
            "indices": INDICES,
            "phenology": {"index": "NDVI"},
        }
        result = snakemake(work, write_config(work / "config.yaml", config), "--cores", "2")
        requests = cogs.requests
    assert result.returncode == 0, result.stderr[-3000:]
    return {"results": work / "results/seed", "requests": requests}


def test_each_index_is_a_cube_variable_and_a_series_column(indices_run):
    results = indices_run["results"]
    cube = open_cube(results / "ndvi.zarr")
    assert list(cube.data_vars) == COLUMNS
    assert cube["evi"].attrs["long_name"] == "EVI: Enhanced Vegetation Index"
    assert all(cube[c].dtype == np.float32 and cube[c].dims == ("time", "y", "x") for c in COLUMNS)
    raw = pd.read_csv(results / "series_raw.csv")
    assert list(raw.columns) == ["point", "time", *COLUMNS, "valid_pixels", "clear_fraction"]
    smoothed = pd.read_csv(results / "series_smoothed.csv")
    assert list(smoothed.columns) == ["point", "time", *COLUMNS]
    missing = smoothed[COLUMNS].isna()
    # One mask for all indices: a bin is empty (before a point's first clear date) in all or none.
    assert (missing.all(axis=1) | ~missing.any(axis=1)).all() and missing.mean(axis=None) < 0.1
    phenology = pd.read_csv(results / "phenology.csv")
    assert set(phenology["index"]) <= {"ndvi"}


def test_index_values_equal_the_catalogue_formulas_on_the_truth(indices_run, catalog):
    raw = pd.read_csv(indices_run["results"] / "series_raw.csv", parse_dates=["time"])
    truth = truth_on_cube_days(catalog, sorted(raw["time"].unique()), indices=INDICES)
    merged = raw.merge(truth, on=["point", "time"], suffixes=("", "_truth"), validate="1:1")
    assert len(merged) == len(raw) == len(POINTS) * raw["time"].nunique()
    for column in COLUMNS:
        got, want = merged[column], merged[f"{column}_truth"]
        np.testing.assert_array_equal(got.isna(), want.isna(), err_msg=column)
        np.testing.assert_allclose(got, want, atol=2e-5, equal_nan=True, err_msg=column)
        assert got.notna().sum() > 40 and got.std() > 0.05, column  # real values, not a constant
    assert (merged["ndwi"] > 0).any() and (merged["ndwi"] < 0).any()  # the pond and the fields


def test_only_the_bands_the_indices_need_are_read(indices_run):
    files = {r.path.rsplit("/", 1)[-1] for r in indices_run["requests"] if r.path.endswith(".tif")}
    # blue, green, red, red edge 1, nir, swir 2.2 and SCL; never SWIR 1.6 (B11) or CLD.
    assert files == {"B02.tif", "B03.tif", "B04.tif", "B05.tif", "B08.tif", "B12.tif", "SCL.tif"}


def test_an_unknown_index_stops_the_run_before_any_job(catalog, tmp_path):
    config = demo_config(str(catalog.items), str(catalog.points)) | {"indices": ["NDVI", "NDRE"]}
    result = snakemake(tmp_path, write_config(tmp_path / "c.yaml", config), "--dry-run")
    text = result.stdout + result.stderr
    assert result.returncode != 0
    assert "'NDRE' is not an index of the Awesome Spectral Indices catalogue" in text
    assert "Did you mean NDREI" in text
    assert not (tmp_path / "results").exists()


def test_tiles_of_a_multi_index_cube_join_to_the_whole_build(catalog, tmp_path):
    """Every index variable is tiled and joined chunk for chunk; the NDVI of a multi-index cube
    is the NDVI-only cube, byte for byte (the demo's bands share their nodata)."""
    import json

    from ndvicube.cube.spec import Chunking
    from ndvicube.cube.store import join_tiles
    from ndvicube.cube.tiles import all_tiles
    from ndvicube.demo import cube_spec
    from ndvicube.jobs import build_cube

    doc = json.loads(catalog.items.read_text())
    doc["features"] = [
        f
        for f in doc["features"]
        if f["properties"]["eo:cloud_cover"] < 30 and f["properties"]["datetime"] < "2023-02"
    ]
    (tmp_path / "items.json").write_text(json.dumps(doc))
    items, chunking = tmp_path / "items.json", Chunking(spatial_chunk=64)
    build_cube(cube_spec(cube=chunking), items_path=items, out=tmp_path / "ndvi_only.zarr")
    indices = ("NBR", "NDVI")
    build_cube(
        cube_spec(cube=chunking, indices=indices), items_path=items, out=tmp_path / "whole.zarr"
    )
    tiles = {t: tmp_path / f"{t.name}.zarr" for t in all_tiles(2, 2)}
    for tile, path in tiles.items():
        build_cube(cube_spec(cube=chunking, indices=indices, tile=tile), items_path=items, out=path)
    join_tiles(tiles, tmp_path / "joined.zarr", crs="EPSG:32644")
    for variable in ("nbr", "ndvi"):
        chunks = sorted(p.name for p in (tmp_path / "whole.zarr" / variable).glob("*.*.*"))
        joined_chunks = sorted(p.name for p in (tmp_path / "joined.zarr" / variable).glob("*.*.*"))
        assert chunks and joined_chunks == chunks
        for name in chunks:
            whole = (tmp_path / "whole.zarr" / variable / name).read_bytes()
            assert (tmp_path / "joined.zarr" / variable / name).read_bytes() == whole, name
            if variable == "ndvi":
                assert (tmp_path / "ndvi_only.zarr/ndvi" / name).read_bytes() == whole, name
    joined = open_cube(tmp_path / "joined.zarr")
    assert list(joined.data_vars) == ["nbr", "ndvi"] and joined["nbr"].notnull().any()


def test_point_figure_has_one_panel_per_index_with_its_values(indices_run, tmp_path):
    from ndvicube.figures.series import plot_point
    from ndvicube.timeseries.tables import read_series

    results = indices_run["results"]
    raw, smoothed = (
        read_series(str(results / "series_raw.csv")),
        read_series(str(results / "series_smoothed.csv")),
    )
    fig = plot_point(raw, smoothed, "field1", tmp_path / "field1.png")
    assert [ax.get_ylabel() for ax in fig.axes] == [c.upper() for c in COLUMNS]
    mine = smoothed[smoothed["point"] == "field1"]
    for ax, column in zip(fig.axes, COLUMNS, strict=True):
        raw_dots, line = ax.get_lines()[:2]
        assert np.isfinite(np.asarray(raw_dots.get_ydata(), dtype=float)).sum() > 5
        np.testing.assert_allclose(line.get_ydata(), mine[column], equal_nan=True)
    assert (results / "plots/field1.png").stat().st_size > 10_000


def test_polygon_series_give_a_mean_and_median_per_index(indices_run):
    import geopandas as gpd
    from shapely.geometry import box

    from ndvicube.timeseries.polygons import polygon_series

    cube = open_cube(indices_run["results"] / "ndvi.zarr")
    x0, y0 = float(cube.x.min()), float(cube.y.min())
    shapes = [box(x0, y0, x0 + 300, y0 + 200), box(x0 + 500, y0 + 400, x0 + 900, y0 + 1000)]
    polygons = gpd.GeoDataFrame({"id": ["a", "b"]}, geometry=shapes, crs=cube.rio.crs)
    table = polygon_series(cube, polygons)
    stats = [f"{c}_{s}" for c in COLUMNS for s in ("mean", "median")]
    assert list(table.columns) == ["polygon", "time", *stats, "count", "clear_fraction"]
    for column in ("ndvi", "nbr"):  # each index's statistics are those of its own variable
        alone = polygon_series(cube[column], polygons)
        pd.testing.assert_frame_equal(
            table[["polygon", "time", f"{column}_mean", f"{column}_median", "count"]],
            alone[["polygon", "time", f"{column}_mean", f"{column}_median", "count"]],
        )
    assert table["nbr_mean"].notna().sum() > 10
    assert not np.allclose(table["nbr_mean"], table["ndvi_mean"], equal_nan=True)

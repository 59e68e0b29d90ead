"""Reliability (issue 6): faults and bad input never lose work or give a silent wrong answer.

Every fault is real: a STAC API (rustac) behind a fault-injecting proxy, COGs from the Range
server with injected 503s, dropped connections, cut-short bodies, 404s and corrupt files, a full
filesystem (a 1 MB tmpfs). Each test asserts the outcome against a clean run or the ground truth.
"""

from __future__ import annotations

import collections
import dataclasses
import importlib
import json
import logging
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rioxarray  # noqa: F401  (.rio on opened cubes: open_cube leaves that import to callers)
import yaml
from pyproj import Transformer

from ndvicube.compute import Compute
from ndvicube.config import validate_config
from ndvicube.cube.spec import Chunking
from ndvicube.cube.store import open_cube
from ndvicube.errors import (
    ConfigError,
    ItemMetadataError,
    MissingDependencyError,
    SourceUnreachableError,
    StorageFullError,
    UnreadableAssetError,
)
from ndvicube.jobs import build_cube
from ndvicube.read.missing import read_skipped
from ndvicube.search.stac import search
from ndvicube.testing.faultproxy import FaultProxy
from ndvicube.testing.faults import Faults
from ndvicube.testing.rangeserver import RangeHTTPServer
from ndvicube.testing.stacserver import StacApiServer
from ndvicube.testing.zones import zone_item
from tests.fault_helpers import (
    CUBE,
    cog_path,
    demo_request,
    items_subset,
    ndvi_chunks,
    served_features,
)
from tests.workflow_helpers import demo_config, snakemake, write_config

# --- STAC API: 30% of answers are 429/5xx -------------------------------------------------


def test_stac_api_errors_are_retried_and_give_the_same_items(catalog):
    faults = Faults(error_rate=0.3, error_statuses=(429, 500, 502, 503, 504), seed=5)
    with StacApiServer(catalog.collection, catalog.items) as api:
        request = demo_request(api.url, "2023-06-30", page_size=4)  # many pages and requests
        want = [i.id for i in search(request)]
        with FaultProxy(api.url, faults) as proxy:
            got = [i.id for i in search(dataclasses.replace(request, url=proxy.url))]
            counts = proxy.faulted()
    assert got == want and len(want) > 40
    assert counts["error"] >= 5 and counts["None"] >= len(want) // 4


def test_stac_api_that_always_fails_gives_a_clear_error(catalog):
    faults = Faults(error_rate=1.0, error_statuses=(429,))  # Retry-After: 1 s
    with (
        StacApiServer(catalog.collection, catalog.items) as api,
        FaultProxy(api.url, faults) as proxy,
    ):
        request = demo_request(proxy.url, "2023-01-31")
        with pytest.raises(SourceUnreachableError, match="Cannot reach the STAC source"):
            search(request)
        assert proxy.faulted()["error"] == 7  # the first answer and 6 retries


def test_a_host_name_that_does_not_resolve_is_retried_once(caplog):
    """No network (or a typo in stac.url): the search fails after one retry, not six with
    backoff. `.invalid` never resolves (RFC 6761); urllib3 logs each retry it makes."""
    request = demo_request("https://ndvicube-no-such-host.invalid/v1", "2023-01-31")
    with (
        caplog.at_level(logging.WARNING, logger="urllib3.connectionpool"),
        pytest.raises(SourceUnreachableError, match="host name could not be resolved"),
    ):
        search(request)
    retries = [r for r in caplog.records if r.getMessage().startswith("Retrying")]
    assert len(retries) == 1 and "NameResolutionError" in retries[0].getMessage()


def _retries_logged(url: str, caplog) -> int:
    """How many retries the STAC retry policy (without its waits) makes for a GET of ``url``."""
    import requests
    from requests.adapters import HTTPAdapter

    from ndvicube.search.http import retry_policy

    session = requests.Session()
    session.mount("http://", HTTPAdapter(max_retries=retry_policy(backoff_s=0)))
    caplog.clear()
    with (
        caplog.at_level(logging.WARNING, logger="urllib3.connectionpool"),
        pytest.raises(requests.ConnectionError),
    ):
        session.get(url, timeout=5)
    return sum(r.getMessage().startswith("Retrying") for r in caplog.records)


def test_dns_failures_use_their_own_budget_and_refused_connections_keep_theirs(caplog):
    import socket

    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    assert _retries_logged(f"http://127.0.0.1:{closed}/v1", caplog) == 6
    assert _retries_logged("http://ndvicube-no-such-host.invalid/v1", caplog) == 1


# --- COGs: 20% of requests fail with 503, drop, or stop mid-body -----------------------------


def build_through_faults(catalog, tmp_path, caplog, faults: Faults) -> collections.Counter:
    """Build the months' cube from a Range server injecting ``faults``; count what it injected."""
    with RangeHTTPServer(catalog.root, faults=faults) as server:
        items = items_subset(catalog, tmp_path / "items.json", base_url=server.url)
        with caplog.at_level(logging.WARNING):
            build_cube(CUBE, items_path=items, out=tmp_path / "ndvi.zarr")
        return collections.Counter(r.fault for r in server.requests)


def test_cog_faults_are_retried_and_the_cube_is_identical(catalog, clean, tmp_path, caplog):
    faults = Faults(
        error_rate=0.1,
        error_statuses=(503,),
        drop_rate=0.05,
        truncate_rate=0.05,
        only=(".tif",),
        seed=11,
    )
    injected = build_through_faults(catalog, tmp_path, caplog, faults)
    assert injected["error"] >= 10 and injected["drop"] >= 5 and injected["truncate"] >= 5
    assert ndvi_chunks(tmp_path / "ndvi.zarr") == ndvi_chunks(clean)
    # obstore retries each failed request itself (ndvicube.read.retries.OBSTORE_RETRY), without
    # a log line; a read that still fails is retried whole, and that is logged, token redacted.
    assert "FAKE-TOKEN" not in caplog.text


def test_cog_faults_beyond_obstores_retries_are_retried_as_whole_reads(
    catalog, clean, tmp_path, caplog, monkeypatch
):
    from ndvicube.read import retries

    monkeypatch.setitem(retries.OBSTORE_RETRY, "max_retries", 0)  # every fault reaches ndvicube
    # A fault in 1 request of 4, no request-level retry: a COG read (2 requests or more) fails
    # 44% of its attempts, and 5 attempts lost one of ~30 COGs (0.44^5 = 1.6% each) in CI and
    # in a run of the whole module; with 10 attempts that is 0.03% per COG.
    monkeypatch.setattr(retries, "READ_ATTEMPTS", 10)
    faults = Faults(error_rate=0.15, error_statuses=(503, 429), drop_rate=0.05,
                    truncate_rate=0.05, only=(".tif",), seed=12)  # fmt: skip
    injected = build_through_faults(catalog, tmp_path, caplog, faults)
    assert injected["error"] >= 10 and injected["drop"] >= 5 and injected["truncate"] >= 5
    assert ndvi_chunks(tmp_path / "ndvi.zarr") == ndvi_chunks(clean)
    assert "retry 1/9" in caplog.text and "FAKE-TOKEN" not in caplog.text


# --- failures no retry can fix: a missing module, a bug ---------------------------------------


def test_a_missing_module_fails_the_cube_at_once_naming_it(catalog, tmp_path, monkeypatch, caplog):
    """Without tifffile (as on an install that lacked it), every read failed 5 times with
    backoff and the job blamed the asset; now the first read stops the job, naming the module,
    even with on_missing_asset: skip (a missing module is no scene's fault). Today's reader
    needs async_geotiff: the same holds without it."""
    monkeypatch.setitem(sys.modules, "async_geotiff", None)  # `import` raises ImportError
    with RangeHTTPServer(catalog.root) as server:
        items = items_subset(catalog, tmp_path / "items.json", base_url=server.url)
        cogs = len(
            {
                r["href"]
                for f in json.loads(items.read_text())["features"]
                for r in (f["assets"]["red"], f["assets"]["nir"], f["assets"]["scl"])
            }
        )
        with (
            caplog.at_level(logging.WARNING),
            pytest.raises(MissingDependencyError, match="'async_geotiff' is not installed"),
        ):
            build_cube(CUBE, items_path=items, out=tmp_path / "ndvi.zarr", on_missing_asset="skip")
        requests = [r for r in server.requests if r.path.endswith(".tif")]
    assert len(requests) <= cogs  # at most each COG's first request: none was retried
    assert {r.range for r in requests} <= {"bytes=0-4095"}
    assert "retry" not in caplog.text
    assert not (tmp_path / "ndvi.zarr").exists()
    assert not (tmp_path / "ndvi.zarr.partial").exists()
    assert not (tmp_path / "skipped.csv").exists()


def test_a_programming_error_in_a_read_is_raised_at_once(catalog, tmp_path, monkeypatch, caplog):
    from ndvicube.read import remote_window

    def broken(plan, pixels, box):  # a bug in the reader: called with the wrong types
        return np.empty(plan)

    monkeypatch.setattr(remote_window, "settle_window", broken)
    with RangeHTTPServer(catalog.root) as server:
        items = items_subset(catalog, tmp_path / "items.json", base_url=server.url)
        with caplog.at_level(logging.WARNING), pytest.raises(TypeError):
            build_cube(CUBE, items_path=items, out=tmp_path / "ndvi.zarr", on_missing_asset="skip")
    assert "retry" not in caplog.text
    assert not (tmp_path / "ndvi.zarr").exists()


@pytest.mark.parametrize(
    "error",
    [
        ConnectionResetError(104, "Connection reset by peer"),
        TimeoutError("The read operation timed out"),
        "urllib3.exceptions.ProtocolError",
        "ndvicube.read.remote.RemoteFileError",
        ("rasterio._err.CPLE_HttpResponseError", 1, 11, "HTTP response code: 503"),
        "rasterio.errors.RasterioIOError",
    ],
)
def test_network_and_server_errors_are_retried(error):
    from ndvicube.read.retries import with_retries

    if not isinstance(error, BaseException):  # (class by name, its arguments)
        name, *args = (error,) if isinstance(error, str) else error
        module, _, name = name.rpartition(".")
        error = getattr(importlib.import_module(module), name)(*(args or ["a reset or 503"]))
    calls = []

    def read(attempt: int) -> str:
        calls.append(attempt)
        if attempt < 3:
            raise error
        return "pixels"

    assert with_retries(read, "http://host/B04.tif", sleep=lambda s: None) == "pixels"
    assert calls == [1, 2, 3]


@pytest.mark.parametrize("error", [TypeError("bad operand"), KeyError("x"), ValueError("bug")])
def test_other_errors_are_not_retried(error):
    from ndvicube.read.retries import with_retries

    calls = []

    def read(attempt: int):
        calls.append(attempt)
        raise error

    with pytest.raises(type(error)):
        with_retries(read, "http://host/B04.tif", sleep=lambda s: None)
    assert calls == [1]


# --- one COG permanently missing (404) or corrupt ---------------------------------------------


@pytest.mark.parametrize(
    ("fault", "reader", "reason"),
    [
        ("missing", "range", "404"),
        ("corrupt", "range", "corrupt tile: corrupt deflate stream"),  # async-tiff's words
        ("missing", "gdal", "404"),
        ("corrupt", "gdal", "TIFFReadEncodedTile"),
    ],
)
def test_unreadable_cog_fails_naming_item_asset_and_the_skip_setting(
    catalog, tmp_path, fault, reader, reason
):
    features = json.loads(items_subset(catalog, tmp_path / "local.json").read_text())["features"]
    victim = features[3]
    with RangeHTTPServer(catalog.root) as probe:
        path = cog_path(served_features(catalog, tmp_path, probe.url)[3], "red")
    with RangeHTTPServer(catalog.root, faults=Faults(**{fault: [path]})) as server:
        items = items_subset(catalog, tmp_path / "items.json", base_url=server.url)
        with pytest.raises(UnreadableAssetError) as error:
            build_cube(
                CUBE, items_path=items, out=tmp_path / "ndvi.zarr", compute=Compute(reader=reader)
            )
    message = str(error.value)
    assert f"asset 'red' of item '{victim['id']}'" in message
    assert "on_missing_asset: skip" in message and "FAKE-TOKEN" not in message
    assert reason in message
    assert not (tmp_path / "ndvi.zarr").exists()
    assert not (tmp_path / "ndvi.zarr.partial").exists()


def test_missing_cog_is_skipped_listed_and_warned_with_skip(catalog, tmp_path, caplog):
    features = json.loads(items_subset(catalog, tmp_path / "local.json").read_text())["features"]
    victim = features[3]
    with RangeHTTPServer(catalog.root) as probe:
        path = cog_path(served_features(catalog, tmp_path, probe.url)[3], "nir")
    with RangeHTTPServer(catalog.root, faults=Faults(missing=[path])) as server:
        items = items_subset(catalog, tmp_path / "items.json", base_url=server.url)
        with caplog.at_level(logging.WARNING):
            build_cube(
                CUBE,
                items_path=items,
                out=tmp_path / "ndvi.zarr",
                on_missing_asset="skip",
                skipped_out=tmp_path / "skipped.csv",
            )
    [row] = read_skipped(tmp_path / "skipped.csv")
    assert (row.item_id, row.asset) == (victim["id"], "nir")
    assert row.href.endswith(path) and "404" in row.reason
    assert "FAKE-TOKEN" not in (tmp_path / "skipped.csv").read_text()
    assert f"skipping item {victim['id']}" in caplog.text
    # The cube is exactly the one built from the other items.
    doc = json.loads(items_subset(catalog, tmp_path / "without.json").read_text())
    doc["features"] = [f for f in doc["features"] if f["id"] != victim["id"]]
    (tmp_path / "without.json").write_text(json.dumps(doc))
    build_cube(CUBE, items_path=tmp_path / "without.json", out=tmp_path / "expected.zarr")
    assert ndvi_chunks(tmp_path / "ndvi.zarr") == ndvi_chunks(tmp_path / "expected.zarr")


# --- items lacking the scl asset or scale/offset ----------------------------------------------


def _break_items(feature: dict) -> None:
    """Second item of the subset: no scl asset; fourth: red without scale/offset."""
    if feature["id"] == BROKEN["no_scl"]:
        del feature["assets"]["scl"]
    if feature["id"] == BROKEN["no_scale"]:
        band = feature["assets"]["red"]["raster:bands"][0]
        band.pop("scale")
        band.pop("offset")


BROKEN: dict[str, str] = {}


@pytest.fixture
def broken_items(catalog, tmp_path):
    ids = [
        f["id"]
        for f in json.loads(items_subset(catalog, tmp_path / "a.json").read_text())["features"]
    ]
    BROKEN.update(no_scl=ids[1], no_scale=ids[3])
    return items_subset(catalog, tmp_path / "items.json", edit=_break_items)


def test_item_without_scl_or_scale_fails_naming_it(broken_items, tmp_path):
    with pytest.raises(ItemMetadataError) as error:
        build_cube(CUBE, items_path=broken_items, out=tmp_path / "ndvi.zarr")
    message = str(error.value)
    assert f"Item {BROKEN['no_scl']!r} has no asset 'scl'" in message
    assert "on_missing_asset: skip" in message
    assert not (tmp_path / "ndvi.zarr").exists()


def test_items_without_scl_or_scale_are_skipped_with_skip(broken_items, catalog, tmp_path):
    build_cube(
        CUBE,
        items_path=broken_items,
        out=tmp_path / "ndvi.zarr",
        on_missing_asset="skip",
        skipped_out=tmp_path / "skipped.csv",
    )
    rows = {(r.item_id, r.asset) for r in read_skipped(tmp_path / "skipped.csv")}
    assert rows == {(BROKEN["no_scl"], "scl"), (BROKEN["no_scale"], "red")}
    doc = json.loads(broken_items.read_text())
    doc["features"] = [f for f in doc["features"] if f["id"] not in BROKEN.values()]
    (tmp_path / "rest.json").write_text(json.dumps(doc))
    build_cube(CUBE, items_path=tmp_path / "rest.json", out=tmp_path / "expected.zarr")
    assert ndvi_chunks(tmp_path / "ndvi.zarr") == ndvi_chunks(tmp_path / "expected.zarr")


# --- a box straddling two UTM zones -----------------------------------------------------------

STRADDLE = (83.990, 27.155, 84.010, 27.172)  # 84 E is the edge of zones 44 and 45
STRIPE_DEG = 0.002  # truth: NDVI 0.8 / 0.2 in stripes of 0.002 degrees of longitude
DN = {0.8: (1500, 5500), 0.2: (3000, 4000)}  # red, nir digital numbers (scale 1e-4, offset -0.1)


def truth_ndvi(lon: np.ndarray) -> np.ndarray:
    """The ground truth: 0.8 in even stripes, 0.2 in odd ones."""
    return np.where(np.floor(lon / STRIPE_DEG).astype(int) % 2 == 0, 0.8, 0.2)


def _zone_item(root: Path, epsg: int, day: str) -> dict:
    """An Earth Search-shaped item whose red/nir/scl COGs cover STRADDLE in UTM zone ``epsg``."""
    margin = (STRADDLE[0] - 0.01, STRADDLE[1] - 0.01, STRADDLE[2] + 0.01, STRADDLE[3] + 0.01)

    def bands(lon: np.ndarray) -> dict[str, np.ndarray]:
        ndvi = truth_ndvi(lon)
        return {
            "red": np.where(ndvi == 0.8, DN[0.8][0], DN[0.2][0]),
            "nir": np.where(ndvi == 0.8, DN[0.8][1], DN[0.2][1]),
            "scl": np.full(ndvi.shape, 4),
        }

    return zone_item(root, epsg, day, margin, bands)


def test_box_straddling_two_utm_zones_gives_one_cube_with_true_values(tmp_path):
    items = [_zone_item(tmp_path, 32644, "2023-03-02"), _zone_item(tmp_path, 32645, "2023-03-07")]
    (tmp_path / "items.json").write_text(
        json.dumps({"type": "FeatureCollection", "features": items})
    )
    from ndvicube.geo import utm_crs_for

    crs = utm_crs_for((STRADDLE[0] + STRADDLE[2]) / 2, (STRADDLE[1] + STRADDLE[3]) / 2)
    assert crs == "EPSG:32645"  # the documented choice: the zone of the box's centre
    spec = dataclasses.replace(CUBE, bbox=STRADDLE, crs=crs)
    build_cube(spec, items_path=tmp_path / "items.json", out=tmp_path / "ndvi.zarr")
    cube = open_cube(tmp_path / "ndvi.zarr")["ndvi"]
    assert cube.rio.crs.to_epsg() == 32645 and cube.sizes["time"] == 2
    gx, gy = np.meshgrid(cube["x"].values, cube["y"].values)
    lon, _ = Transformer.from_crs(crs, "EPSG:4326", always_xy=True).transform(gx, gy)
    want = truth_ndvi(lon)
    # Pixel centres more than 15 m (0.00015 deg) from a stripe edge have one right answer.
    clear_of_edges = np.abs((lon / STRIPE_DEG) - np.round(lon / STRIPE_DEG)) * STRIPE_DEG > 0.00015
    for day in range(2):  # day 0 read from zone 44 (reprojected), day 1 from zone 45
        got = cube.isel(time=day).values
        assert np.isfinite(got).all()
        np.testing.assert_allclose(got[clear_of_edges], want[clear_of_edges], atol=1e-5)
        assert np.mean(np.isclose(got, want, atol=1e-5)) > 0.9
    assert clear_of_edges.mean() > 0.8


BERGEN = (5.292, 60.396, 5.308, 60.404)  # western Norway: UTM zone 32 by the exception


def test_a_box_in_western_norway_is_gridded_in_zone_32_as_its_scenes_are(tmp_path):
    """Sentinel-2 grids 56-64 N, 3-12 E in zone 32 (tile 32VKN here); the plain formula said
    31, so every scene was warped. Random digital numbers per pixel: any warp would show."""
    bergen = {"bbox": list(BERGEN), "points": [{"id": "p", "lon": 5.3, "lat": 60.4}]}
    config = {"start": "2023-06-01", "end": "2023-06-30", "areas": {"bergen": bergen}}
    area = validate_config(config).areas["bergen"]
    assert area.crs == "EPSG:32632"
    rng = np.random.default_rng(32)

    def bands(lon: np.ndarray) -> dict[str, np.ndarray]:
        red, nir = rng.integers(1200, 3000, lon.shape), rng.integers(2000, 6000, lon.shape)
        return {"red": red, "nir": nir, "scl": np.full(lon.shape, 4)}

    margin = (BERGEN[0] - 0.01, BERGEN[1] - 0.01, BERGEN[2] + 0.01, BERGEN[3] + 0.01)
    item = zone_item(tmp_path, 32632, "2023-06-02", margin, bands)
    items = {"type": "FeatureCollection", "features": [item]}
    (tmp_path / "items.json").write_text(json.dumps(items))
    spec = dataclasses.replace(CUBE, bbox=area.bbox, crs=area.crs)
    build_cube(spec, items_path=tmp_path / "items.json", out=tmp_path / "ndvi.zarr")
    cube = open_cube(tmp_path / "ndvi.zarr")["ndvi"].isel(time=0)
    assert cube.rio.crs.to_epsg() == 32632
    import rasterio

    scene = {}
    for key in ("red", "nir"):
        with rasterio.open(item["assets"][key]["href"]) as src:
            cols, rows = ~src.transform * np.meshgrid(cube["x"].values, cube["y"].values)
            scene[key] = src.read(1)[rows.astype(int), cols.astype(int)] * 1e-4 - 0.1
    want = (scene["nir"] - scene["red"]) / (scene["nir"] + scene["red"])
    assert cube.shape == (95, 94) and np.all((cube["x"].values - 5) % 10 == 0)  # on its grid
    # Each pixel the scene's own (float32 rounding apart).
    np.testing.assert_allclose(cube.values, want, rtol=1e-6, atol=1e-6)


# --- disk full while writing the cube --------------------------------------------------------


def test_disk_full_fails_and_keeps_the_previous_cube(catalog, tiny_disk, tmp_path):
    february = items_subset(catalog, tmp_path / "all.json")
    doc = json.loads(february.read_text())
    doc["features"] = [f for f in doc["features"] if f["properties"]["datetime"][:7] == "2023-02"]
    (tmp_path / "feb.json").write_text(json.dumps(doc))
    out = tiny_disk / "ndvi.zarr"
    build_cube(CUBE, items_path=tmp_path / "feb.json", out=out)  # small: it fits
    before, days = ndvi_chunks(out), open_cube(out)["ndvi"].sizes["time"]
    with pytest.raises(StorageFullError, match=r"No space left .*ndvi.zarr"):
        build_cube(
            dataclasses.replace(CUBE, cube=Chunking(spatial_chunk=64)), items_path=february, out=out
        )
    assert ndvi_chunks(out) == before  # the previous complete cube is untouched
    assert open_cube(out)["ndvi"].sizes["time"] == days and (out / ".zmetadata").is_file()
    assert not (tiny_disk / "ndvi.zarr.partial").exists()  # its space given back


# --- the workflow: on_missing_asset: skip writes results/{area}/skipped.csv -------------------


def test_workflow_skips_a_missing_cog_into_skipped_csv(catalog, tmp_path):
    with RangeHTTPServer(catalog.root) as probe:
        served = items_subset(catalog, tmp_path / "probe.json", base_url=probe.url)
        victim = json.loads(served.read_text())["features"][0]
        path = cog_path(victim, "red")
    with RangeHTTPServer(catalog.root, faults=Faults(missing=[path])) as server:
        items = items_subset(catalog, tmp_path / "items.json", base_url=server.url)
        config = demo_config(str(items), str(catalog.points))
        config |= {"start": "2023-02-01", "end": "2023-03-31", "on_missing_asset": "skip"}
        result = snakemake(tmp_path, write_config(tmp_path / "c.yaml", config), "--cores", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    skipped = pd.read_csv(tmp_path / "results/seed/skipped.csv")
    assert skipped[["item_id", "asset"]].values.tolist() == [[victim["id"], "red"]]
    log = (tmp_path / "results/seed/logs/cube.log").read_text()
    assert f"skipping item {victim['id']}" in log and "FAKE-TOKEN" not in log


# --- security: credentials never come from the config; the config is data ---------------------


def test_credentials_in_the_config_are_refused_without_echoing_them():
    config = demo_config("items.json", [{"id": "p", "lon": 82.608, "lat": 27.163}])
    config["stac"]["aws_secret_access_key"] = "SECRET-VALUE-123"
    with pytest.raises(ConfigError) as error:
        from ndvicube.config import validate_config

        validate_config(config)
    assert "aws_secret_access_key" in str(error.value)
    assert "SECRET-VALUE-123" not in str(error.value)


def test_config_values_are_never_evaluated(tmp_path, catalog):
    marker = tmp_path / "evaluated"
    text = yaml.safe_dump(demo_config(str(catalog.items), str(catalog.points)))
    text += f'\nsmoothing: !!python/object/apply:os.system ["touch {marker}"]\n'
    (tmp_path / "c.yaml").write_text(text)
    result = snakemake(tmp_path, tmp_path / "c.yaml", "--dry-run")
    assert result.returncode != 0 and not marker.exists()

"""The area viewer (issue 34): the page the quick-look job writes into ``results/{area}/viewer``,
opened by ``file://`` in a real headless Chromium with the network blocked, its pixels and its
charts checked against the composites and the tables that drew them; and its tiles' rules
(absent chunks, reuse across rebuilds) at library level. The demo field set is run once
(``demo_run``, tests/conftest.py, shared with tests/test_demo_fields.py)."""

from __future__ import annotations

import io
import json
import logging
import math
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.workflow_helpers import ran_jobs, snakemake

pytestmark = pytest.mark.workflow

CHROMEDRIVER = shutil.which("chromedriver")
needs_chromium = pytest.mark.skipif(
    CHROMEDRIVER is None,
    reason="no chromedriver: install Debian's chromium and chromium-driver (.ci/run does)",
)
#: A field whose inside no other field covers, and the id the XSS test gives a field.
FIELD = "east_orchard"
HOSTILE = "<img src=x onerror=alert(1)>"
ODD = 'Feld "Nord" l\'été ñandú'


@pytest.fixture(scope="module")
def viewer(demo_run) -> Path:
    work, *_ = demo_run
    return work / "results/fields/viewer"


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium at one CSS pixel per screen pixel, its network blocked (every host
    resolves to nothing, any proxy is a closed port), logging console and network events."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for flag in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--window-size=1280,900", "--force-device-scale-factor=1",
        "--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=http://127.0.0.1:9",
    ):  # fmt: skip
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def wait_for(driver, script: str, timeout: float = 10):
    """Poll ``return <script>`` until it is truthy; its value."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = driver.execute_script(f"return {script}")
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {script}")


def open_page(driver, page: Path) -> None:
    driver.get(page.as_uri())
    wait_for(driver, "window.ndvicubeViewer && ndvicubeViewer.ready")


def requests_and_errors(driver) -> tuple[set[str], list[dict]]:
    """Every URL the page asked for since the last call, and its console's errors."""
    urls = set()
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.add(message["params"]["request"]["url"])
    errors = [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]
    return urls, errors


def screen(driver) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(driver.get_screenshot_as_png())).convert("RGB"))


def colour_of(value: float) -> np.ndarray:
    """The figures' colour map (RdYlGn over -0.2..1, matplotlib) of a value, as RGB bytes."""
    from matplotlib import colormaps
    from matplotlib.colors import Normalize

    return np.asarray(colormaps["RdYlGn"](Normalize(-0.2, 1.0)(value), bytes=True)[:3], int)


class Composite:
    """The demo's composites, to look a value up at a longitude/latitude (nearest pixel)."""

    def __init__(self, work: Path):
        from pyproj import Transformer

        from ndvicube.cube.store import cube_crs, open_cube

        cube = open_cube(work / "results/fields/composites.zarr", dask=False)
        self.values = cube["ndvi"].values
        self.x, self.y = cube["x"].values, cube["y"].values
        self.to_cube = Transformer.from_crs("EPSG:4326", cube_crs(cube), always_xy=True)

    def at(self, lon: float, lat: float, period: int) -> tuple[float, float]:
        """The value there, and how far (in pixels) the place is from its pixel's edge."""
        x, y = self.to_cube.transform(lon, lat)
        col = (x - self.x[0]) / (self.x[1] - self.x[0])
        row = (y - self.y[0]) / (self.y[1] - self.y[0])
        c, r = round(col), round(row)
        margin = 0.5 - max(abs(col - c), abs(row - r))
        return float(self.values[period, r, c]), margin


def place_of(driver, px: int, py: int) -> tuple[float, float]:
    """Longitude and latitude of a screen pixel's centre on the map."""
    ll = driver.execute_script(
        "var p = ndvicubeViewer.map.containerPointToLatLng([arguments[0], arguments[1]]);"
        "return [p.lng, p.lat];",
        px + 0.5,
        py + 0.5,
    )
    return ll[0], ll[1]


def clear_pixel(driver, composite, near, periods, side=None) -> tuple[int, int]:
    """A screen pixel close to ``near`` with a finite value in every period of ``periods``, its
    centre a tenth of a pixel or more inside its cube pixel (no rounding decides), and whose
    colours differ between the periods."""
    for dx in range(-20, 21):
        for dy in range(-20, 21):
            px, py = near[0] + dx, near[1] + dy
            if side is not None and (px - side) * (1 if near[0] > side else -1) <= 2:
                continue
            found = [composite.at(*place_of(driver, px, py), p) for p in periods]
            colours = [tuple(colour_of(v)) for v, _ in found]
            if all(np.isfinite(v) and m > 0.1 for v, m in found) and len(set(colours)) > 1:
                return px, py
    raise AssertionError("no clear pixel near the field")


def assert_colour(driver, composite, shot, px: int, py: int, period: int) -> None:
    """The screenshot's pixel has the colour of the period's value there (one unit per
    channel)."""
    value, _ = composite.at(*place_of(driver, px, py), period)
    np.testing.assert_allclose(shot[py, px], colour_of(value), atol=1)


def set_period(driver, element: str, period: int, loaded: str) -> None:
    driver.execute_script(
        "var e = document.getElementById(arguments[0]); e.value = arguments[1];"
        "e.dispatchEvent(new Event('input'));",
        element,
        period,
    )
    wait_for(driver, f"ndvicubeViewer.{loaded}")


def click_at(driver, lon: float, lat: float) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    x, y = driver.execute_script(
        "var p = ndvicubeViewer.map.latLngToContainerPoint([arguments[1], arguments[0]]);"
        "return [p.x, p.y];",
        lon,
        lat,
    )
    element = driver.find_element(By.ID, "map")
    size = element.size
    ActionChains(driver).move_to_element_with_offset(
        element, int(x - size["width"] / 2), int(y - size["height"] / 2)
    ).click().perform()


def shown_series(driver, kind: str, id_: str) -> dict:
    return wait_for(
        driver,
        f"ndvicubeViewer.chart && ndvicubeViewer.chart.kind === '{kind}' && "
        f"ndvicubeViewer.chart.id === {json.dumps(id_)} && ndvicubeViewer.chart",
    )


def numbers(values: list) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], float)


def assert_chart_equals_tables(chart, raw, smoothed, phenology, key, column) -> None:
    """The chart's observations, smoothed line and season markers equal the tables' rows."""
    raw = raw[raw[key] == chart["id"]]
    smoothed = smoothed[smoothed[key] == chart["id"]]
    assert chart["raw_t"] == list(raw["time"])
    np.testing.assert_array_equal(numbers(chart["raw"]), raw[column].to_numpy())  # NaN: not clear
    assert chart["smooth_t"] == list(smoothed["time"])
    np.testing.assert_array_equal(numbers(chart["smooth"]), smoothed["ndvi"].to_numpy())
    seasons = phenology[(phenology[key] == chart["id"]) & (phenology["index"] == "ndvi")]
    want = [
        [None if pd.isna(d) else d for d in row] for row in seasons[["sos", "pos", "eos"]].values
    ]
    assert chart["seasons"] == want and want


@needs_chromium
def test_the_page_opens_offline_and_draws_the_composites_colours(viewer, browser, demo_run):
    """No console error, every request a file of the viewer's folder; a map pixel's colour is
    the colour map of the composite's value there, and the period slider and the swipe show
    the other periods' values."""
    work, *_ = demo_run
    composite = Composite(work)
    started = time.perf_counter()
    open_page(browser, viewer / "index.html")
    ready = time.perf_counter() - started
    browser.execute_script(
        "var V = ndvicubeViewer; V.map.getPane('overlayPane').style.display = 'none';"
        "V.map.setView([arguments[1], arguments[0]], V.conf.zoom[1], {animate: false});",
        *composite_centre(composite),
    )
    wait_for(browser, "ndvicubeViewer.layerLoaded")
    size = browser.execute_script("return ndvicubeViewer.map.getSize()")
    centre = (size["x"] // 2, size["y"] // 2)
    px, py = clear_pixel(browser, composite, (centre[0] - 30, centre[1]), [0, 6])
    assert_colour(browser, composite, screen(browser), px, py, 0)
    set_period(browser, "period", 6, "layerLoaded")
    assert browser.find_element("id", "period-label").text == "2023-07-01"
    assert_colour(browser, composite, screen(browser), px, py, 6)

    # the swipe: period 6 left of the divider (the middle), period 9 right of it
    browser.find_element("id", "compare").click()
    set_period(browser, "compare-period", 9, "compareLoaded")
    qx, qy = clear_pixel(browser, composite, (centre[0] + 30, centre[1]), [6, 9], side=centre[0])
    shot = screen(browser)
    assert_colour(browser, composite, shot, px, py, 6)
    assert_colour(browser, composite, shot, qx, qy, 9)

    urls, errors = requests_and_errors(browser)
    assert errors == []
    folder = viewer.as_uri() + "/"
    files = {u for u in urls if not u.startswith("data:")}  # Leaflet's blank of a removed tile
    assert files and all(u.startswith(folder) for u in files), sorted(files)[:5]
    assert any("/tiles/NDVI/" in u for u in urls)
    assert ready < 5  # 2 s is the target of the benchmark's 10,000 fields (bench_viewer.py)


def composite_centre(composite: Composite) -> tuple[float, float]:
    from pyproj import Transformer

    back = Transformer.from_crs(composite.to_cube.target_crs, "EPSG:4326", always_xy=True)
    return back.transform(composite.x.mean(), composite.y.mean())


@needs_chromium
def test_a_click_or_a_search_charts_a_field_or_a_point_as_the_tables_hold_it(
    viewer, browser, demo_run
):
    import geopandas as gpd

    work, *_ = demo_run
    results = work / "results/fields"
    open_page(browser, viewer / "index.html")
    fields = gpd.read_parquet(results / "fields.parquet").to_crs("EPSG:4326")
    inside = fields.set_index("id").geometry[FIELD].representative_point()
    browser.execute_script(
        "ndvicubeViewer.map.setView([arguments[1], arguments[0]], 17, {animate: false});",
        inside.x,
        inside.y,
    )
    click_at(browser, inside.x, inside.y)
    chart = shown_series(browser, "fields", FIELD)
    read = {"dtype": {"polygon": str, "point": str}}
    assert_chart_equals_tables(
        chart, pd.read_csv(results / "polygons_raw.csv", **read),
        pd.read_csv(results / "polygons_smoothed.csv", **read),
        pd.read_csv(results / "polygons_phenology.csv", **read), "polygon", "ndvi_mean",
    )  # fmt: skip
    assert browser.find_element("id", "chart-title").text == f"Field {FIELD}: NDVI"
    click_ms = browser.execute_script("return ndvicubeViewer.lastChartMs")
    assert click_ms < 1000

    point = "field1"
    lon, lat = browser.execute_script(
        "var id = arguments[0];"
        "var p = ndvicubeViewer.conf.points.filter(function (p) { return p.id === id; })[0];"
        "ndvicubeViewer.map.setView([p.lat, p.lon], 17, {animate: false}); return [p.lon, p.lat];",
        point,
    )
    click_at(browser, lon, lat)
    assert_chart_equals_tables(
        shown_series(browser, "points", point), pd.read_csv(results / "series_raw.csv", **read),
        pd.read_csv(results / "series_smoothed.csv", **read),
        pd.read_csv(results / "phenology.csv", **read), "point", "ndvi",
    )  # fmt: skip

    search = browser.find_element("id", "search")
    search.send_keys("ring\n")
    assert shown_series(browser, "fields", "ring")["raw_t"]
    matches = [li.text for li in browser.find_elements("css selector", "#matches li")]
    assert matches == ["field ring"]
    rejected = browser.find_element("id", "rejected").text
    assert rejected.startswith("4 field(s) rejected") and "outside every scene 1" in rejected
    assert "far_away" not in json.dumps(browser.execute_script("return ndvicubeViewer.geojson"))
    _, errors = requests_and_errors(browser)
    assert errors == []


@needs_chromium
def test_ids_from_users_files_show_as_text_and_run_nothing(demo_run, browser, tmp_path):
    """A field named like markup, one with quotes and accents: in the list, the search and
    the chart title as they are written; no element made of them, no script run."""
    import geopandas as gpd

    from ndvicube.cube.store import cube_crs, open_cube
    from ndvicube.geo import Point
    from ndvicube.viewer.page import build_viewer

    work, *_ = demo_run
    results = work / "results/fields"
    names = {"ring": HOSTILE, "tiny": ODD}
    fields = gpd.read_parquet(results / "fields.parquet")
    fields["id"] = fields["id"].replace(names)
    fields.to_parquet(tmp_path / "fields.parquet")
    tables = {"fields": tmp_path / "fields.parquet"}
    for name in ("polygons_raw", "polygons_smoothed", "polygons_phenology"):
        table = pd.read_csv(results / f"{name}.csv", dtype={"polygon": str})
        table["polygon"] = table["polygon"].replace(names)
        table.to_csv(tmp_path / f"{name}.csv", index=False)
        tables[name] = tmp_path / f"{name}.csv"
    cube = open_cube(results / "composites.zarr")
    build_viewer(
        maps={"NDVI": cube["ndvi"]}, crs=cube_crs(cube), what="x", out=tmp_path / "viewer",
        area="fields", points=[Point(id=HOSTILE, lon=82.608, lat=27.163)], tables=tables,
        cache=tmp_path / "cache",
    )  # fmt: skip
    open_page(browser, tmp_path / "viewer/index.html")
    for id_ in (HOSTILE, ODD):
        search = browser.find_element("id", "search")
        search.clear()
        search.send_keys(id_ + "\n")
        chart = shown_series(browser, "fields", id_)
        assert chart["raw_t"]
        assert browser.find_element("id", "chart-title").text == f"Field {id_}: NDVI"
        matches = [li.text for li in browser.find_elements("css selector", "#matches li")]
        assert f"field {id_}" in matches
    assert browser.find_elements("css selector", "img[src=x], #panel img, #matches img") == []
    assert browser.execute_script("return document.querySelectorAll('[onerror]').length") == 0
    _, errors = requests_and_errors(browser)
    assert errors == []  # an alert would have left the page unscriptable, an <img> a 404


def test_a_sparse_field_set_writes_no_tile_over_an_absent_chunk(tmp_path):
    """Composites over 3 x 3 chunks of 256 px with data in the middle one only: every tile
    written touches that chunk, and the chunk is covered."""
    import xarray as xr
    from pyproj import Transformer

    from ndvicube.viewer import tiles

    n, res, x0, y0 = 768, 10.0, 658000.0, 3010000.0
    values = np.full((2, n, n), np.nan, np.float32)
    values[:, 256:512, 256:512] = 0.5
    array = xr.DataArray(
        values, dims=("time", "y", "x"),
        coords={"time": pd.to_datetime(["2023-01-01", "2023-02-01"]),
                "x": x0 + res / 2 + res * np.arange(n), "y": y0 - res / 2 - res * np.arange(n)},
        name="ndvi",
    )  # fmt: skip
    from pyproj import CRS

    layers = tiles.write_tiles(array, tmp_path / "cache", tmp_path / "out", [], CRS(32644))
    to_utm = Transformer.from_crs("EPSG:3857", "EPSG:32644", always_xy=True)
    chunk = (x0 + 256 * res, x0 + 512 * res, y0 - 512 * res, y0 - 256 * res)
    written = list((tmp_path / "out" / layers[0]["tiles"]).rglob("*.png"))
    assert written
    zooms = set()
    for png in written:
        z, tx, ty = int(png.parent.parent.name), int(png.parent.name), int(png.stem)
        size = 2 * tiles.HALF / 2**z
        xs, ys = to_utm.transform(
            [-tiles.HALF + tx * size, -tiles.HALF + (tx + 1) * size] * 2,
            [tiles.HALF - ty * size] * 2 + [tiles.HALF - (ty + 1) * size] * 2,
        )
        assert min(xs) < chunk[1] and max(xs) > chunk[0], png
        assert min(ys) < chunk[3] and max(ys) > chunk[2], png
        zooms.add(z)
    low, top = tiles.zoom_range(tiles.Grid.of(array, CRS(32644)))
    assert zooms == set(range(low, top + 1))
    # the finest zoom: tiles over the 2.56 km chunk, not over the 7.68 km grid
    finest = [p for p in written if int(p.parent.parent.name) == top]
    pixel = 2 * tiles.HALF / 2**top / tiles.TILE * math.cos(math.radians(27.1))
    assert len(finest) <= (math.ceil(2560 / (256 * pixel)) + 1) ** 2


def test_new_fields_rebuild_the_data_not_the_tiles(demo_run, tmp_path, caplog):
    """A rebuild with other fields renders no tile: the composites' tiles are linked from the
    cache (the same files), while the fields' data is written anew."""
    import geopandas as gpd

    from ndvicube.cube.store import cube_crs, open_cube
    from ndvicube.viewer.page import build_viewer

    work, *_ = demo_run
    results = work / "results/fields"
    cache = results / ".viewer-tiles"
    before = {p: p.stat().st_mtime_ns for p in cache.rglob("*.png")}
    assert before
    stale = cache / "NDVI/0123456789abcdef"  # a composite no longer drawn
    (stale / "14/1").mkdir(parents=True)
    (stale / "14/1/2.png").write_bytes(b"")
    fields = gpd.read_parquet(results / "fields.parquet")
    fields.iloc[:-1].to_parquet(tmp_path / "fields.parquet")  # a field less
    cube = open_cube(results / "composites.zarr")
    tables = {n: results / f"{n}.csv" for n in ("polygons_raw", "polygons_smoothed")}
    with caplog.at_level(logging.INFO, logger="ndvicube.viewer"):
        build_viewer(
            maps={"NDVI": cube["ndvi"]}, crs=cube_crs(cube), what="x", out=tmp_path / "viewer",
            area="fields", points=[], tables=tables | {"fields": tmp_path / "fields.parquet"},
            cache=cache,
        )  # fmt: skip
    assert "0 rendered; 12 of 12 period(s) reused" in caplog.text
    assert not stale.exists()  # the cache keeps only the tiles drawn now
    assert {p: p.stat().st_mtime_ns for p in cache.rglob("*.png")} == before
    linked = next((tmp_path / "viewer/tiles/NDVI").rglob("*.png"))
    assert linked.stat().st_nlink >= 2  # the cache's file, not a copy
    shapes = (tmp_path / "viewer/data/fields.js").read_text()
    assert f'"{fields["id"].iloc[-1]}"' not in shapes and '"west_rice"' in shapes


def test_the_default_run_writes_the_viewer_and_a_rerun_rebuilds_nothing(demo_run):
    work, _, ran = demo_run
    assert ran["quicklook"] == 1
    page = work / "results/fields/viewer/index.html"
    assert page.is_file() and (work / "results/fields/viewer/data/setup.js").is_file()
    assert 'href="fields/viewer/index.html"' in (work / "results/index.html").read_text()
    stamp = page.stat().st_mtime_ns
    again = snakemake(work, work / "config.yaml", "--cores", "2")
    assert again.returncode == 0, again.stderr[-3000:]
    assert ran_jobs(again) == {}
    assert "Nothing to be done" in again.stdout + again.stderr
    assert page.stat().st_mtime_ns == stamp


def sparse_composites(periods: int = 2):
    """Composites over 3 x 3 chunks of 256 px at 10 m (UTM 44N, 27 N) with data in the middle
    chunk only: a smooth field of NDVI with noise, different in each period."""
    import xarray as xr

    n, res, x0, y0 = 768, 10.0, 658000.0, 3010000.0
    rng = np.random.default_rng(7)
    values = np.full((periods, n, n), np.nan, np.float32)
    ramp = np.linspace(0.1, 0.8, 256, dtype=np.float32)
    for p in range(periods):
        values[p, 256:512, 256:512] = ramp[None, :] + rng.normal(0, 0.02, (256, 256)) + 0.05 * p
    times = pd.date_range("2023-01-01", periods=periods, freq="MS")
    return xr.DataArray(
        values, dims=("time", "y", "x"), name="ndvi",
        coords={"time": times, "x": x0 + res / 2 + res * np.arange(n),
                "y": y0 - res / 2 - res * np.arange(n)},
    )  # fmt: skip


def test_tiles_are_paeth_filtered_palettes_of_the_colour_map_alike_on_two_threads(tmp_path):
    """Every tile row is Paeth-filtered (PNG filter 4: the palette is in the order of the
    values), every pixel has the colour map's colour of its value within one unit (as the
    figures compute it; NaN transparent), the tiles are smaller than Pillow's unfiltered
    palette PNGs of the same pixels, and two threads write the same bytes as one."""
    import zlib

    from PIL import Image
    from pyproj import CRS

    from ndvicube.figures.maps import colour_table, palette_indices
    from ndvicube.viewer import tiles

    array = sparse_composites()
    one = tiles.write_tiles(array, tmp_path / "c1", tmp_path / "o1", [], CRS(32644))
    two = tiles.write_tiles(array, tmp_path / "c2", tmp_path / "o2", [], CRS(32644), threads=2)
    files = sorted((tmp_path / "o1" / one[0]["tiles"]).rglob("*.png"))
    assert [f.read_bytes() for f in files] == [
        (tmp_path / "o2" / two[0]["tiles"] / f.relative_to(tmp_path / "o1" / one[0]["tiles"]))
        .read_bytes() for f in files
    ]  # fmt: skip
    grid = tiles.Grid.of(array, CRS(32644))
    pyramid = tiles.Pyramid(grid)
    ours = pillows = 0
    for png in files:
        z, tx, ty = int(png.parent.parent.name), int(png.parent.name), int(png.stem)
        data = png.read_bytes()
        idat = data[data.index(b"IDAT") + 4 : data.index(b"IEND") - 8]
        rows = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(256, 257)
        assert (rows[:, 0] == 4).all()
        image = Image.open(png)
        index, inside = pyramid.lookup((z, tx, ty))
        values = array.values[0].ravel()[index]
        if inside is not None:
            values[~inside] = np.nan
        rgba = np.asarray(image.convert("RGBA")).reshape(-1, 4).astype(int)
        nan = np.isnan(values.ravel())
        assert (rgba[nan, 3] == 0).all() and (rgba[~nan, 3] == 255).all()
        want = colour_table().astype(int)[palette_indices(values.ravel()[~nan])[0]]
        assert np.abs(rgba[~nan, :3] - want).max() <= 1
        ours += len(data)
        pillow = io.BytesIO()
        image.save(pillow, "PNG", transparency=0, compress_level=tiles.LEVEL)
        pillows += len(pillow.getvalue())
    assert ours < 0.9 * pillows, (ours, pillows)


def test_series_shards_hold_the_tables_values_in_fewer_bytes(tmp_path):
    """Values the tables wrote with 7 significant digits are written as whole numbers over a
    power of ten that give back the same floats (the few that need more places as their
    text); a column of full-precision floats (1/3) as numbers; NaN as null."""
    from ndvicube.timeseries.tables import write_polygon_series
    from ndvicube.viewer import data

    rng = np.random.default_rng(1)
    ids = [f"f{i}" for i in range(data.SHARD)]
    times = pd.date_range("2023-01-02", periods=25, freq="5D").strftime("%Y-%m-%d")
    table = pd.DataFrame({"polygon": np.repeat(ids, 25), "time": np.tile(times, len(ids))})
    table["ndvi_mean"] = rng.uniform(-0.2, 1.0, len(table))
    table.loc[::7, "ndvi_mean"] = np.nan
    write_polygon_series(table, tmp_path / "raw.csv")
    table.rename(columns={"ndvi_mean": "ndvi"}).to_csv(tmp_path / "smooth.csv", index=False)
    data.write_series_shards(tmp_path / "s", "fields", ids, tmp_path / "raw.csv",
                             tmp_path / "smooth.csv", None, key="polygon", indices=["NDVI"],
                             raw_suffix="_mean")  # fmt: skip
    text = (tmp_path / "s/fields_0.js").read_text()
    shard = json.loads(text[text.index("{") : text.rindex("}") + 1])
    raw = shard["raw"]["columns"]["NDVI"]
    got = [np.nan if w is None else float(w) if isinstance(w, str) else w / raw["scale"]
           for w in raw["values"]]  # fmt: skip
    want = pd.read_csv(tmp_path / "raw.csv")["ndvi_mean"].to_numpy()
    np.testing.assert_array_equal(got, want)
    assert raw["scale"] == 10**7  # 7 digits of 0.1 to 1; below, strings
    assert sum(isinstance(w, int) for w in raw["values"]) > 0.7 * len(want)
    assert shard["raw"]["times"] == [[int(d) for d in pd.to_datetime(times).to_numpy()
                                      .astype("datetime64[D]").astype(int)]]  # fmt: skip
    assert shard["raw"]["time"] == [0] * len(ids)
    assert shard["smooth"]["columns"]["NDVI"]["scale"] is None  # full precision: as written
    as_floats = [None if v != v else v for v in want.tolist()]
    compact = {"separators": (",", ":")}
    assert len(json.dumps(raw["values"], **compact)) < 0.92 * len(json.dumps(as_floats, **compact))
    assert data.packed_values(np.array([1 / 3, np.nan])) == {
        "scale": None, "values": [1 / 3, None]
    }  # fmt: skip


def test_a_large_area_asks_for_two_threads_a_small_one_for_one():
    """The quick-look job's threads: the demo's 2 km box one (it runs beside the figures job),
    the benchmark's 41 km box two (its tiles take seconds)."""
    from ndvicube.viewer.tiles import threads_for

    assert threads_for((82.599, 27.154, 82.617, 27.172), 10) == 1
    assert threads_for((82.4, 27.0, 82.81, 27.37), 10) == 2


def test_outlines_of_no_accepted_field_are_empty(tmp_path):
    """An area with points whose fields were all rejected has an empty fields.parquet."""
    import geopandas as gpd

    from ndvicube.viewer import data

    gpd.GeoDataFrame({"id": []}, geometry=[], crs=4326).to_parquet(tmp_path / "f.parquet")
    ids, packed = data.outlines(tmp_path / "f.parquet")
    assert ids == [] and packed["ids"] == packed["coords"] == []

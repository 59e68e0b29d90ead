"""The viewer at the field-set benchmark's scale (issue 34): its build against the composites
job, its folder against the composites' COGs, and in headless Chromium the time until the page
is ready and from a click on a field to its chart.

One command, prints the table::

    python bench/bench_viewer.py [--days 25] [--cache DIR] [--threads 2]

**The region** is ``bench/bench_fields.py``'s: 10,000 fields in four farm districts over a
41 km x 41 km box, its synthetic catalog (COG tiles of 1024 px; cached in ``--cache``, the
same folder ``bench_fields.py`` uses), ``--days`` solar days every fifth day from 2023-01-02.
**The builds**, in this process, one after the other: the sparse cube of the fields
(``build_cube``, two threads), its monthly median composites (the ``composites`` job's
function: Zarr and one COG per month), then the viewer (``build_viewer``, what the quick-look
job adds, on the job's two threads) with the fields and their series tables (synthetic
values written by the workflow's own table writers, 10,000 fields x the days: the page's cost
is their size, not their values). Times are the functions' own (no process start, for both;
matplotlib imported before, as the quick-look's figure has). CPU seconds are this process's
(all its threads): a measure less bent by other processes on a shared machine.
**The browser**: Chromium headless, ``file://``, the network blocked; *ready* is from
``driver.get`` to the page's ready flag (map, outlines and the first tiles drawn); *click to
chart* is from a real click on a field (Selenium) to its chart drawn, the
page's own measure, for a field of a shard not loaded yet and then of a loaded one.

**The targets** (issue 34): the viewer's build at most 25 % of the composites job, its folder at
most 25 % of the composites' COGs, ready within 2 s, a chart within 0.3 s of a click: each
row says met or not met from the numbers of the run.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _fields_region as region  # noqa: E402
from bench_fields import CACHE_VERSION, make_region  # noqa: E402


def verdict(met: bool) -> str:
    return "**met**" if met else "**not met**"


def folder_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6


def synthetic_tables(ids: list[str], days: int, out: Path) -> dict[str, Path]:
    """Polygon series tables of ``ids`` written as the ``polygon_tables`` and smoothing jobs
    write them (their own writers: 7 significant digits, ISO dates)."""
    from ndvicube.timeseries.tables import write_phenology, write_polygon_series, write_series

    rng = np.random.default_rng(3)
    times = pd.date_range("2023-01-02", periods=days, freq="5D").strftime("%Y-%m-%d")
    n, t = len(ids), len(times)
    frame = pd.DataFrame({"polygon": np.repeat(ids, t), "time": np.tile(times, n)})
    raw = frame.assign(ndvi_mean=rng.uniform(0.1, 0.9, n * t),
                       ndvi_median=rng.uniform(0.1, 0.9, n * t), count=100,
                       clear_fraction=1.0)  # fmt: skip
    smooth = frame.rename(columns={"polygon": "point"}).assign(ndvi=rng.uniform(0.1, 0.9, n * t))
    seasons = pd.DataFrame({"point": ids, "index": "ndvi", "season": 1, "sos": times[2],
                            "pos": times[t // 2], "eos": times[-3]})  # fmt: skip
    paths = {name: out / f"{name}.csv" for name in
             ("polygons_raw", "polygons_smoothed", "polygons_phenology")}  # fmt: skip
    write_polygon_series(raw, paths["polygons_raw"])
    write_series(smooth, paths["polygons_smoothed"], key="polygon")
    write_phenology(seasons, paths["polygons_phenology"], key="polygon")
    return paths


def build_all(args, cache: Path, work: Path) -> dict:
    from ndvicube.compute import Compute
    from ndvicube.cube.spec import Chunking, CloudMask, CubeSpec
    from ndvicube.cube.store import cube_crs, open_cube
    from ndvicube.jobs import build_cube
    from ndvicube.jobs.composites import build_composites
    from ndvicube.viewer.page import build_viewer

    reg = make_region(cache)
    catalog = region.make_catalog(cache / "bs1024", reg.grid, 1024, args.days)
    spec = CubeSpec(reg.bbox, region.CRS, resolution=10, cloud_mask=CloudMask((3, 8, 9, 10)),
                    cube=Chunking(time_chunk=8, spatial_chunk=256))  # fmt: skip
    started = time.perf_counter()
    build_cube(spec, items_path=catalog.items, out=work / "ndvi.zarr", compute=Compute(threads=2),
               fields=reg.fields_path, field_points=[])  # fmt: skip
    cube_s = time.perf_counter() - started
    started, cpu = time.perf_counter(), time.process_time()
    end = (pd.Timestamp("2023-01-02") + pd.Timedelta(days=5 * args.days)).date()
    build_composites(cube_path=work / "ndvi.zarr", out=work / "composites.zarr",
                     cogs_out=work / "composites", period="1MS", statistic="median",
                     indices=["NDVI"], start="2023-01-01", end=str(end))  # fmt: skip
    composites_s, composites_cpu = time.perf_counter() - started, time.process_time() - cpu
    import geopandas as gpd

    import ndvicube.figures.maps  # noqa: F401  the quick-look job's figure has imported it

    ids = [str(i) for i in gpd.read_parquet(reg.fields_path)["id"]]
    tables = synthetic_tables(ids, args.days, work)
    cube = open_cube(work / "composites.zarr")
    inputs = {"maps": {"NDVI": cube["ndvi"]}, "crs": cube_crs(cube), "what": "bench",
              "area": "bench", "points": [], "cache": work / "tiles-cache",
              "tables": tables | {"fields": reg.fields_path},
              "threads": args.threads}  # fmt: skip
    started, cpu = time.perf_counter(), time.process_time()
    build_viewer(out=work / "viewer", **inputs)
    viewer_s, viewer_cpu = time.perf_counter() - started, time.process_time() - cpu
    started = time.perf_counter()
    build_viewer(out=work / "viewer2", **inputs)  # the tiles cached: the data alone
    rebuild_s = time.perf_counter() - started
    tiles = list((work / "viewer/tiles").rglob("*.png"))
    return {
        "fields": len(ids), "periods": int(cube.sizes["time"]), "grid": reg.grid[2:],
        "cube_s": cube_s, "composites_s": composites_s, "viewer_s": viewer_s,
        "rebuild_s": rebuild_s, "viewer_mb": folder_mb(work / "viewer"),
        "composites_cpu": composites_cpu, "viewer_cpu": viewer_cpu,
        "data_mb": folder_mb(work / "viewer/data"),
        "tiles_mb": sum(p.stat().st_size for p in tiles) / 1e6, "tiles": len(tiles),
        "cogs_mb": folder_mb(work / "composites"), "ids": ids,
    }  # fmt: skip


def browse(page: Path, fields: Path, ids: list[str]) -> dict:
    """Ready time and click-to-chart times of the page in headless Chromium."""
    import geopandas as gpd
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.action_chains import ActionChains

    options = webdriver.ChromeOptions()
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,900",
                 "--host-resolver-rules=MAP * ~NOTFOUND"):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    shapes = gpd.read_parquet(fields).to_crs("EPSG:4326").set_index("id").geometry
    try:
        started = time.perf_counter()
        driver.get(page.as_uri())
        while not driver.execute_script("return !!(window.ndvicubeViewer && ndvicubeViewer.ready)"):
            time.sleep(0.01)
        ready_s = time.perf_counter() - started
        clicks = []
        for id_ in (ids[len(ids) // 2], ids[len(ids) // 2 + 1]):  # a new shard, then the same
            inside = shapes[type(shapes.index[0])(id_)].representative_point()
            x, y = driver.execute_script(
                "var V = ndvicubeViewer, at = [arguments[1], arguments[0]];"
                "V.map.setView(at, 17, {animate: false});"
                "var p = V.map.latLngToContainerPoint(at); return [p.x, p.y];",
                inside.x, inside.y,
            )  # fmt: skip
            element = driver.find_element("id", "map")
            size = element.size
            ActionChains(driver).move_to_element_with_offset(
                element, int(x - size["width"] / 2), int(y - size["height"] / 2)
            ).click().perform()
            while driver.execute_script("return (ndvicubeViewer.chart || {}).id") != id_:
                time.sleep(0.01)
            clicks.append(driver.execute_script("return ndvicubeViewer.lastChartMs") / 1000)
        return {"ready_s": ready_s, "page_ready_s": driver.execute_script(
            "return ndvicubeViewer.readyMs") / 1000, "click_s": clicks}  # fmt: skip
    finally:
        driver.quit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=25)
    parser.add_argument("--cache", type=Path, help="catalog folder (kept between runs)")
    parser.add_argument("--threads", type=int, default=2,
                        help="the viewer's threads (the quick-look job declares 2)")  # fmt: skip
    args = parser.parse_args()
    cache = args.cache or Path(tempfile.gettempdir()) / f"ndvicube-bench-fields-{CACHE_VERSION}"
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        got = build_all(args, cache.resolve(), work)
        seen = browse(work / "viewer/index.html", cache / "fields.parquet", got["ids"])
    build = got["viewer_s"] / got["composites_s"]
    size = got["viewer_mb"] / got["cogs_mb"]
    rows = [
        ("fields / monthly composites / grid (px)",
         f"{got['fields']:,} / {got['periods']} / {got['grid'][0]} x {got['grid'][1]}", ""),
        ("sparse cube build (s)", f"{got['cube_s']:.1f}", ""),
        ("composites job (s)", f"{got['composites_s']:.1f}", ""),
        (f"viewer build, {args.threads} thread(s) (s)", f"{got['viewer_s']:.2f}",
         f"{build:.0%} of the composites job: target <= 25 % {verdict(build <= 0.25)}"),
        ("  CPU seconds: composites job / viewer build",
         f"{got['composites_cpu']:.1f} / {got['viewer_cpu']:.1f}",
         f"{got['viewer_cpu'] / got['composites_cpu']:.0%} (this process's threads)"),
        ("viewer rebuild, tiles cached (s)", f"{got['rebuild_s']:.2f}", "new fields' data only"),
        ("composites' COGs (MB)", f"{got['cogs_mb']:.1f}", ""),
        ("viewer folder (MB)", f"{got['viewer_mb']:.1f}",
         f"{size:.0%} of the COGs: target <= 25 % {verdict(size <= 0.25)}"),
        ("  of which tiles (MB, count)", f"{got['tiles_mb']:.1f}, {got['tiles']:,}", ""),
        ("  of which series and outlines (MB)", f"{got['data_mb']:.1f}", ""),
        ("page ready, driver.get to ready (s)", f"{seen['ready_s']:.2f}",
         f"target <= 2 s {verdict(seen['ready_s'] <= 2)}"),
        ("  the page's own measure (s)", f"{seen['page_ready_s']:.2f}", ""),
        ("click to chart, new shard (s)", f"{seen['click_s'][0]:.3f}",
         f"target <= 0.3 s {verdict(seen['click_s'][0] <= 0.3)}"),
        ("click to chart, shard loaded (s)", f"{seen['click_s'][1]:.3f}",
         f"target <= 0.3 s {verdict(seen['click_s'][1] <= 0.3)}"),
    ]  # fmt: skip
    print("| measure | value | against the target |\n|---|---:|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()

"""The ``cube`` job as Snakemake runs it, per COG tiling, against the plain floor and odc-stac.

One command, prints one table (issue 35, item 1)::

    python bench/bench_tilings.py [--box-km 20] [--days 26] [--tilings 256 512 1024]
                                  [--repeats 1] [--methods snakemake floor odc-stac] [--cache DIR]

The catalog is ``bench/bench_engine.py``'s (two unaligned 20 km scenes a day, red and nir at
10 m, SCL at 20 m, served by the loopback Range server at 0 ms), made once per COG tiling
(``--tilings``: the COGs' internal tile side in px) and cached. Per tiling, each in a fresh
process (``bench/_engine_trial.py``), alternating over ``--repeats``, medians:

* ``job``: the ``cube`` job as Snakemake runs it - ``snakemake --cores 2`` of the area's cube
  from an empty ``results/{area}/cube`` (its ``search`` job run before, untimed), minus the
  same command again with nothing to do (Snakemake's own start-up and DAG); its peak RSS (the
  largest process of the run: the job's), and the COG tiles it decoded (from its log);
* ``floor``: the plain floor of the same store (async-geotiff, numpy and zarr in one process, no
  Dask: ``_engine_trial.floor``), as its work alone and as its whole process (interpreter and
  imports included, as a job pays them);
* ``odc-stac``: ``odc.stac.load`` -> ``.to_zarr``, what a user would write instead (whole
  process).

Targets (issue 35): the job at most 1.3x the floor, at least 3x faster than odc-stac, peak RSS
at most 1 GB, tiles decoded at most 1.1x the least (every tile the box needs, once:
``bench_engine.minimum_tiles``). Each row says which it met, from the numbers it measured.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_engine import (  # noqa: E402
    catalog_cache,
    differing,
    make_catalog,
    median_row,
    minimum_tiles,
    run_trial,
    served,
)

METHODS = ("snakemake", "floor", "odc-stac")
#: The targets of issue 35, item 1.
MAX_X_FLOOR = 1.3
MIN_X_ODC = 3.0
MAX_RSS_MB = 1024.0
MAX_X_LEAST = 1.1


def measure(args, cache: Path, server, work: Path, tiling: int) -> dict:
    """One tiling: every method's median row, the least tiles, and the stores' agreement."""
    catalog = make_catalog(cache, args.box_km, tiling, args.days)
    items = served(catalog, server.url)
    trials: dict[str, list[dict]] = {m: [] for m in args.methods}
    for _ in range(args.repeats):
        for method in args.methods:
            out = work / f"{method}-{tiling}"
            trials[method].append(run_trial(method, items, catalog, out, server))
    rows = {m: median_row(t) for m, t in trials.items()}
    rows["least"] = minimum_tiles(catalog)
    if "snakemake" in rows and "floor" in rows:
        store = work / f"snakemake-{tiling}" / "results" / "bench" / "cube" / "workflow.zarr"
        rows["differ"] = differing(work / f"floor-{tiling}", store)
    rows["shape"] = (catalog.days, *catalog.shape)
    return rows


def verdict(ok: bool | None) -> str:
    return "-" if ok is None else "met" if ok else "**not met**"


def print_table(results: dict[int, dict], args) -> None:
    """The table: one row per tiling, the ratios and each target's verdict."""
    days, h, w = next(iter(results.values()))["shape"]
    print(
        f"\n## The cube job per COG tiling: {args.box_km:g} km box, cube {days} x {h} x {w} px, "
        f"2 unaligned scenes/day (medians of {args.repeats})\n"
    )
    print(
        "| COG tile px | job s (run - no-op) | job start-up s | floor s: work / process "
        f"| job x floor process (<= {MAX_X_FLOOR}) | job x floor work | odc-stac s "
        f"| odc-stac / job (>= {MIN_X_ODC:g}) | job peak RSS MB (<= {MAX_RSS_MB:.0f}) "
        f"| tiles decoded / least (<= {MAX_X_LEAST}) | CPU s: job / floor | requests | MB read |"
    )
    print("| ---: " * 13 + "|")
    for tiling, r in results.items():
        job, floor, odc = r.get("snakemake"), r.get("floor"), r.get("odc-stac")
        x_floor = job["wall"] / floor["process_s"] if job and floor else None
        x_work = job["wall"] / floor["wall"] if job and floor else None
        x_odc = odc["process_s"] / job["wall"] if job and odc else None
        tiles = job.get("tiles") if job else None
        x_least = tiles["decoded"] / r["least"] if tiles else None
        rss = job["job_rss_mb"] if job else None
        cells = [
            f"{tiling}",
            f"{job['wall']:.2f}" if job else "-",
            f"{job['startup_s']:.2f}" if job and job.get("startup_s") is not None else "-",
            f"{floor['wall']:.2f} / {floor['process_s']:.2f}" if floor else "-",
            _ratio(x_floor, x_floor is not None and x_floor <= MAX_X_FLOOR),
            f"{x_work:.2f}" if x_work is not None else "-",
            f"{odc['process_s']:.2f}" if odc else "-",
            _ratio(x_odc, x_odc is not None and x_odc >= MIN_X_ODC),
            _ratio(rss, rss is not None and rss <= MAX_RSS_MB, "{:.0f}"),
            (f"{tiles['decoded']} / {r['least']} = " if tiles else "")
            + _ratio(x_least, x_least is not None and x_least <= MAX_X_LEAST),
            f"{job['job_cpu_s']:.1f} / {floor['cpu_s']:.1f}" if job and floor else "-",
            f"{job['requests']:.0f}" if job else "-",
            f"{job['bytes'] / 1e6:.1f}" if job else "-",
        ]
        print("| " + " | ".join(cells) + " |")
    print(
        "\njob: `snakemake --cores 2` of the cube from an empty results/{area}/cube minus the same "
        "command with nothing to do; floor process: the floor script's whole process "
        "(interpreter, imports, work), as the job pays them; floor work: its timed part alone; "
        "CPU: the job's (the run's minus the no-op run's) and the floor's whole process"
    )
    for tiling, r in results.items():
        if "differ" in r:
            n, total = r["differ"]
            what = "shapes differ" if n < 0 else f"{n} of {total} pixels differ"
            print(f"sanity, {tiling} px: the floor's store vs the job's: {what}")


def _ratio(value: float | None, ok: bool, fmt: str = "{:.2f}") -> str:
    return "-" if value is None else f"{fmt.format(value)} {verdict(ok)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--box-km", type=float, default=20.0)
    parser.add_argument("--days", type=int, default=26)
    parser.add_argument("--tilings", type=int, nargs="+", default=[256, 512, 1024])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--cache", type=Path, help="catalog folder (kept between runs)")
    args = parser.parse_args()
    cache = catalog_cache(args.cache)
    work = Path(tempfile.mkdtemp(prefix="ndvicube-bench-tilings-work-"))
    from ndvicube.testing.rangeserver import RangeHTTPServer

    print(f"catalog cache: {cache}; work: {work}")
    started = time.perf_counter()
    try:
        with RangeHTTPServer(cache, latency_s=0) as server:
            results = {t: measure(args, cache, server, work, t) for t in args.tilings}
        print_table(results, args)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\n(took {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()

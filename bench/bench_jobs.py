"""What the workflow costs as a user runs it: `snakemake --cores 2` by number of points.

One command, prints a table::

    python bench/bench_jobs.py [--points 9 1000 10000] [--latency-ms 20] [--repeats 1]

bench_speed's catalog (the demo year 2023, two tiles, 96 items under the cloud limit) behind a
real STAC API (rustac serve) and the Range HTTP server adding a latency to every request. For
each number of points: C, the whole `snakemake --cores 2` from an empty results/ (point figures
capped at the default 50), then the same command again (the no-op rerun), and C's floor - all of
C's work (search, cube, tables, figures, quick-look) as calls in one process, without a process
per job. A, the notebook's method, is measured once in the same run for the ratio. Then where
C's time went, job by job, for each number of points.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from ndvicube.demo import DemoCatalogSpec, generate_demo_catalog, rewrite_hrefs  # noqa: E402
from ndvicube.testing.rangeserver import RangeHTTPServer  # noqa: E402
from ndvicube.testing.stacserver import StacApiServer  # noqa: E402


def trial(method: str, api: str, work: Path, points: int) -> dict:
    """One run of ``bench/_trial.py`` in a fresh process, from an empty working directory."""
    shutil.rmtree(work, ignore_errors=True)
    cmd = [sys.executable, str(HERE / "_trial.py"), method, "--api", api, "--work", str(work)]
    out = subprocess.run(
        [*cmd, "--points", str(points)], check=True, capture_output=True, text=True
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if method == "snakemake":
        result |= json.loads((work / "breakdown.json").read_text())
    return result


def median(trials: list[dict], key: str) -> float:
    return statistics.median(t[key] for t in trials)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, nargs="+", default=[9, 1000, 10000])
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="ndvicube-bench-jobs-"))
    catalog = generate_demo_catalog(tmp / "catalog", DemoCatalogSpec())
    rows, breakdowns = {}, {}
    with RangeHTTPServer(catalog.root, latency_s=args.latency_ms / 1000) as server:
        served = rewrite_hrefs(catalog.items, tmp / "items_http.json", server.url, catalog.root)
        with StacApiServer(catalog.collection, served) as api:
            notebook = [trial("notebook", api.url, tmp / "A", 1) for _ in range(args.repeats)]
            for n in args.points:
                c = [trial("snakemake", api.url, tmp / f"C-{n}", n) for _ in range(args.repeats)]
                floor = [
                    trial("inprocess", api.url, tmp / f"F-{n}", n) for _ in range(args.repeats)
                ]
                rows[n] = (median(c, "wall"), median(c, "noop"), median(floor, "wall"))
                rows[n] += (sum(count for count, _ in c[-1]["rules"].values()),)
                breakdowns[n] = c[-1]
    a = median(notebook, "wall")
    print(
        f"\n{args.latency_ms:g} ms per request, 2 cores; A (the notebook's method, 1 point): "
        f"{a:.2f} s\n"
    )
    print(
        "| points | C: snakemake --cores 2, s | A / C | C / C(first row) | jobs | no-op rerun s "
        "| floor: C's work in one process, s | C / floor |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    first = rows[args.points[0]][0]
    for n, (c, noop, floor, jobs) in rows.items():
        print(
            f"| {n} | {c:.2f} | {a / c:.2f} | {c / first:.2f} | {jobs} | {noop:.2f} | "
            f"{floor:.2f} | {c / floor:.2f} |"
        )
    for n, times in breakdowns.items():
        print(f"\nwhere C's {times['wall']:.2f} s went, {n} points:\n")
        print("| part | jobs | seconds |")
        print("| --- | ---: | ---: |")
        print(
            f"| Snakemake start-up, DAG, scheduling and exit (outside jobs) | - | "
            f"{times['wall'] - times['span']:.2f} |"
        )
        print(f"| from the first job's start to the last job's end | - | {times['span']:.2f} |")
        for rule, (count, seconds) in times["rules"].items():
            print(f"| rule {rule} (start-up and imports included) | {count} | {seconds:.2f} |")


if __name__ == "__main__":
    main()

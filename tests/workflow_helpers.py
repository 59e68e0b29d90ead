"""Run the real workflow (snakemake in a subprocess) and read what it planned and produced."""

from __future__ import annotations

import collections
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import xarray as xr
import yaml

from ndvicube.demo import expected_series, read_truth

if TYPE_CHECKING:
    from ndvicube.testing.rangeserver import RangeHTTPServer

ROOT = Path(__file__).resolve().parent.parent
SNAKEFILE = ROOT / "Snakefile"

#: The demo catalog's points, in points.csv order.
POINTS = ["field1", "west_field", "east_field", "swath_gap", "pond", "sugarcane"]
START, END = "2023-01-01", "2023-06-30"
#: The jobs of a run of one area from scratch: one per stage, whatever its points and months.
ONE_AREA_JOBS = {"search": 1, "cube": 1, "tables": 1, "figures": 1, "quicklook": 1, "all": 1}


def demo_config(url: str, points) -> dict:
    """A config for the demo area reading ``url``."""
    return {
        "stac": {"url": url, "collection": "sentinel-2-c1-l2a", "max_cloud_cover": 30},
        "start": START,
        "end": END,
        "resolution": 10,
        "areas": {"seed": {"bbox": [82.599, 27.154, 82.617, 27.172], "points": points}},
        "cloud_mask": {"scl_classes": [3, 8, 9, 10]},
        "smoothing": {"resample": "5D", "window": 3},
    }


def truth_on_cube_days(catalog, days, indices=("NDVI",)) -> pd.DataFrame:
    """Ground truth per point on every solar day of the cube (NaN where nothing covers it)."""
    truth = expected_series(read_truth(catalog.truth), max_cloud_cover=30, indices=indices)
    grid = pd.MultiIndex.from_product([POINTS, pd.DatetimeIndex(days)], names=["point", "time"])
    return truth.set_index(["point", "time"]).reindex(grid).reset_index()


def notebook_smoothing(times, values) -> xr.DataArray:
    """The origin notebook's recipe, verbatim."""
    ts = xr.DataArray(values, dims="time", coords={"time": times})
    ts = ts.resample(time="5D").mean()
    ts = ts.interpolate_na(dim="time", method="linear")
    return ts.rolling(time=3, center=True, min_periods=1).mean()


def kept_items(catalog) -> list[dict]:
    """Catalog items under the cloud limit, in (datetime, id) order."""
    features = json.loads(catalog.items.read_text())["features"]
    kept = [f for f in features if f["properties"]["eo:cloud_cover"] < 30]
    return sorted(kept, key=lambda f: (f["properties"]["datetime"], f["id"]))


def write_config(path: Path, config: dict[str, Any]) -> Path:
    """Write a YAML config file for a test run."""
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def snakemake(
    workdir: Path,
    configfile: Path,
    *args: str,
    timeout: float = 600,
    env: dict[str, str] | None = None,
    python: str | Path = sys.executable,
) -> subprocess.CompletedProcess:
    """`snakemake -s Snakefile --directory WORKDIR --configfile FILE ...` from another folder.

    Runs from ``/`` so nothing depends on the caller's working directory; ``python`` is the
    interpreter whose Snakemake runs (another environment's, for the fresh-install test).
    """
    cmd = [
        str(python),
        "-m",
        "snakemake",
        "-s",
        str(SNAKEFILE),
        "--directory",
        str(workdir),
        "--configfile",
        str(configfile),
        *args,
    ]
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SNAKEMAKE_")}
    return subprocess.run(
        cmd,
        cwd="/",
        capture_output=True,
        text=True,
        timeout=timeout,
        env=environ | (env or {}),
        check=False,
    )


def planned_jobs(result: subprocess.CompletedProcess) -> dict[str, int]:
    """Rule -> job count from the "Job stats" table of a (dry) run's output."""
    text = result.stdout + result.stderr
    match = re.search(r"Job stats:\n(.*?)\n\s*total\s+\d+", text, re.S)
    if not match:
        return {}
    rows = match.group(1).splitlines()[2:]
    return {name: int(count) for name, count in (row.split() for row in rows if row.strip())}


def ran_jobs(result: subprocess.CompletedProcess) -> dict[str, int]:
    """Rule -> how many of its jobs finished, from a run's output."""
    text = result.stdout + result.stderr
    return dict(collections.Counter(re.findall(r"Finished jobid: \d+ \(Rule: (\w+)\)", text)))


_RECORD = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (\w+) ([\w.]+): (.*)$")


def records(log: Path) -> list[str]:
    """The records of a job log, as `LEVEL logger message` (the timestamp left out)."""
    return [" ".join(m.groups()) for m in map(_RECORD.match, log.read_text().splitlines()) if m]


def repeated(log: Path) -> list[str]:
    """Records that appear more than once in a job log."""
    return [r for r, n in collections.Counter(records(log)).items() if n > 1]


@contextlib.contextmanager
def demo_behind_api(catalog, work: Path):
    """The catalog's COGs on a Range server and its items behind a real STAC API (rustac);
    yields (api, cogs) - the API's URL is what a config's stac.url names."""
    from ndvicube.demo import rewrite_hrefs
    from ndvicube.testing.rangeserver import RangeHTTPServer
    from ndvicube.testing.stacserver import StacApiServer

    with RangeHTTPServer(catalog.root) as cogs:
        served = rewrite_hrefs(catalog.items, work / "items_http.json", cogs.url, catalog.root)
        with StacApiServer(catalog.collection, served) as api:
            yield api, cogs


def inline_points(catalog) -> list[dict]:
    """The catalog's points as a config's inline list."""
    return [
        {"id": r.id, "lon": float(r.lon), "lat": float(r.lat)}
        for r in pd.read_csv(catalog.points).itertuples()
    ]


def served_workdir(catalog, cogs: RangeHTTPServer, work: Path, config: dict[str, Any]) -> Path:
    """A working directory reading ``catalog.json`` (the catalog's items, hrefs on ``cogs``)
    with ``config`` (whose stac.url should name ``catalog.json``); returns ``work``."""
    from ndvicube.demo import rewrite_hrefs

    rewrite_hrefs(catalog.items, work / "catalog.json", cogs.url, catalog.root)
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    return work


def copy_of(built: Path, tmp_path: Path) -> Path:
    """A copy of the finished working directory (modification times kept)."""
    work = tmp_path / "work"
    shutil.copytree(built, work, symlinks=True)
    return work


def edit_config(work: Path, **changes) -> Path:
    """Change top-level or dotted keys of the working directory's config."""
    config = yaml.safe_load((work / "config.yaml").read_text())
    for dotted, value in changes.items():
        node, keys = config, dotted.split("__")
        for key in keys[:-1]:
            node = node[key]
        node[keys[-1]] = value
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    return work / "config.yaml"


def item_of(request_path: str) -> str:
    """Item id of a COG request (``/cogs/{item}/B04.tif``)."""
    return request_path.split("/")[-2]


def run(work: Path, cogs: RangeHTTPServer, *args: str) -> tuple[dict[str, int], set[str]]:
    """Dry run (planned jobs), then the real run; returns planned jobs and items read."""
    dry = snakemake(work, work / "config.yaml", "--dry-run", *args)
    assert dry.returncode == 0, dry.stderr[-3000:]
    cogs.reset_log()
    real = snakemake(work, work / "config.yaml", "--cores", "2", *args)
    assert real.returncode == 0, real.stderr[-3000:]
    return planned_jobs(dry), {item_of(r.path) for r in cogs.requests if r.path.endswith(".tif")}

"""A brand-new virtualenv given only the README's install command runs the main job (issue 12).

`python3 -m venv`, then `python3 -m pip install -e .` - no test extra, nothing from the
environment running the tests - then the workflow over HTTP as the default config would run it:
items from a real STAC API, COGs from the Range server, read by the default range reader; the
series must equal the truth, and `snakemake --report` must write the report. This is what the
static dependency check (tests/test_dependencies.py) stands in for everywhere else.
"""

from __future__ import annotations

import os
import subprocess
import venv

import numpy as np
import pandas as pd
import pytest

from tests.workflow_helpers import (
    ONE_AREA_JOBS,
    ROOT,
    demo_behind_api,
    demo_config,
    inline_points,
    planned_jobs,
    snakemake,
    truth_on_cube_days,
    write_config,
)

pytestmark = pytest.mark.workflow


@pytest.fixture(scope="module")
def fresh_python(tmp_path_factory):
    """The interpreter of a new virtualenv where only `pip install -e .` was run."""
    env_dir = tmp_path_factory.mktemp("fresh-venv")
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    environ = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    installed = subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-e", "."],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=1500,
    )
    assert installed.returncode == 0, installed.stderr[-3000:]
    return python


def test_a_core_install_has_the_readers_and_the_report_but_not_the_test_tools(fresh_python):
    probe = "import importlib.util as u; print([u.find_spec(m) is not None for m in %r])"
    modules = ["async_geotiff", "obstore", "pygments", "odc.loader", "pytest", "hypothesis"]
    found = subprocess.run(
        [fresh_python, "-c", probe % modules], capture_output=True, text=True, check=True
    ).stdout
    assert found.strip() == str([True, True, True, True, False, False])


def test_a_core_install_runs_the_workflow_over_http_and_writes_the_report(
    fresh_python, catalog, tmp_path
):
    work = tmp_path / "work"
    work.mkdir()
    with demo_behind_api(catalog, work) as (api, cogs):
        period = {"start": "2023-02-01", "end": "2023-03-31"}
        cfg = write_config(
            work / "config.yaml", demo_config(api.url, inline_points(catalog)) | period
        )
        environ = {"PATH": f"{fresh_python.parent}{os.pathsep}{os.environ['PATH']}"}
        dry = snakemake(work, cfg, "--dry-run", python=fresh_python, env=environ)
        run = snakemake(work, cfg, "--cores", "2", python=fresh_python, env=environ)
        requests = [r for r in cogs.requests if r.path.endswith(".tif")]
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    assert planned_jobs(dry) == ONE_AREA_JOBS
    assert requests and all(r.method == "GET" for r in requests)  # the remote reader: no HEAD
    assert "retry" not in (work / "results/seed/logs/cube.log").read_text()
    raw = pd.read_csv(work / "results/seed/series_raw.csv", parse_dates=["time"])
    want = truth_on_cube_days(catalog, sorted(raw["time"].unique()))
    merged = raw.merge(want, on=["point", "time"], suffixes=("", "_truth"), validate="1:1")
    assert len(merged) == len(raw) > 0
    np.testing.assert_allclose(merged["ndvi"], merged["ndvi_truth"], atol=1e-5, equal_nan=True)
    report = snakemake(work, cfg, "--report", "report.html", python=fresh_python, env=environ)
    assert report.returncode == 0, report.stderr[-3000:]
    html = (work / "report.html").read_text()
    assert "<html" in html and "series_raw.csv" in html

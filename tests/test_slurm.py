"""The demo workflow submitted to a real single-node SLURM (started by .ci/slurm-up).

Only the jobs that do real work - the cube's tile jobs - may be SLURM jobs (each with its SLURM
job id in Snakemake's log, known to slurmctld as COMPLETED, its SLURM log kept); the jobs that
take seconds (search, join, tables, figures, quick-look) run on the submitting host as local
rules, so no submission is spent on them. The results must equal a local run's. The SLURM
run splits the cube into 2 x 2 tile jobs (`areas.seed.tiles`), the local run builds it whole:
the joined cube must still be the same, chunk file for chunk file.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from ndvicube.cube.store import open_cube
from tests.workflow_helpers import ROOT, demo_config, snakemake, write_config

pytestmark = pytest.mark.workflow


def slurm_ready() -> bool:
    """Whether a SLURM controller answers with a usable node."""
    if not shutil.which("sinfo"):
        return False
    out = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, check=False)
    return out.returncode == 0 and any(s in out.stdout for s in ("idle", "mix", "alloc"))


@pytest.mark.skipif(
    not slurm_ready(), reason="no SLURM here: run `bash .ci/slurm-up` (needs root and apt)"
)
def test_demo_runs_as_slurm_jobs_and_equals_a_local_run(catalog, tmp_path):
    config = demo_config(str(catalog.items), str(catalog.points))
    config |= {"start": "2023-02-01", "end": "2023-03-31", "cube": {"spatial_chunk": 64}}
    results = {}
    for mode in ("local", "slurm"):
        work = tmp_path / mode
        work.mkdir()
        config["areas"]["seed"]["tiles"] = [2, 2] if mode == "slurm" else [1, 1]
        cfg = write_config(work / "config.yaml", config)
        args = ["--cores", "2"]
        if mode == "slurm":
            args = [
                "--workflow-profile", str(ROOT / "profiles" / "slurm"),
                "--slurm-no-account",  # this test cluster has no accounting
                "--slurm-keep-successful-logs",
                "--seconds-between-status-checks", "2",
            ]  # fmt: skip
        result = snakemake(work, cfg, *args, timeout=900)
        assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
        results[mode] = (work, result.stdout + result.stderr)
    work, text = results["slurm"]
    submitted = re.findall(
        r"Job \d+ has been submitted with SLURM jobid (\d+) \(log: (\S+)\)", text
    )
    rules = re.findall(r"^rule (\w+):", text, re.M)
    assert rules == ["cube_tile"] * 4 and len(submitted) == 4  # only the tiles went to sbatch
    assert len({job_id for job_id, _ in submitted}) == len(submitted)
    local_rules = sorted(re.findall(r"^localrule (\w+):", text, re.M))
    assert local_rules == ["all", "figures", "join_tiles", "quicklook", "search", "tables"]
    for job_id, log in submitted:
        state = subprocess.run(
            ["scontrol", "show", "job", job_id], capture_output=True, text=True, check=False
        ).stdout
        assert "JobState=COMPLETED" in state, state
        assert os.path.exists(log.rstrip(").")), log
        # The tile job's progress lines, in SLURM's log of the job (its stderr) as it runs.
        slurm_log = Path(log.rstrip(").")).read_text()
        assert "[cube_tile] INFO: cube progress: " in slurm_log, slurm_log[-2000:]
        assert " blocks (100%), " in slurm_log
    local = results["local"][0]
    for name in ("series_raw.csv", "series_smoothed.csv", "items.json"):
        assert (work / "results/seed" / name).read_bytes() == (
            local / "results/seed" / name
        ).read_bytes(), name
    np.testing.assert_array_equal(
        open_cube(work / "results/seed/ndvi.zarr")["ndvi"].values,
        open_cube(local / "results/seed/ndvi.zarr")["ndvi"].values,
    )
    chunks = sorted((local / "results/seed/ndvi.zarr/ndvi").glob("*.*.*"))
    assert len(chunks) == 2 * 4 * 3  # 2 blocks of 8 days (Feb-Mar) x 4 x 3 chunks of 64 px
    for chunk in chunks:
        assert (
            work / "results/seed/ndvi.zarr/ndvi" / chunk.name
        ).read_bytes() == chunk.read_bytes()

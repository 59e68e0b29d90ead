"""Run the real workflow (snakemake in a subprocess) and read what it planned and produced."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
SNAKEFILE = ROOT / "Snakefile"


def write_config(path: Path, config: dict[str, Any]) -> Path:
    """Write a YAML config file for a test run."""
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def snakemake(
    workdir: Path, configfile: Path, *args: str, timeout: float = 600
) -> subprocess.CompletedProcess:
    """`snakemake -s Snakefile --directory WORKDIR --configfile FILE ...` from another folder.

    Runs from ``/`` so nothing depends on the caller's working directory.
    """
    cmd = [
        sys.executable,
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
    env = {k: v for k, v in os.environ.items() if not k.startswith("SNAKEMAKE_")}
    return subprocess.run(
        cmd, cwd="/", capture_output=True, text=True, timeout=timeout, env=env, check=False
    )


def planned_jobs(result: subprocess.CompletedProcess) -> dict[str, int]:
    """Rule -> job count from the "Job stats" table of a (dry) run's output."""
    text = result.stdout + result.stderr
    match = re.search(r"Job stats:\n(.*?)\n\s*total\s+\d+", text, re.S)
    if not match:
        return {}
    rows = match.group(1).splitlines()[2:]
    return {name: int(count) for name, count in (row.split() for row in rows if row.strip())}

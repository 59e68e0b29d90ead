"""Light jobs in threads of Snakemake's process (issue 35, item 2): they run there under the
default profile, draw the same figures side by side as alone, and keep to their own logs."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from ndvicube.errors import NdviCubeError
from ndvicube.jobs import figures
from ndvicube.logs import job_logging
from ndvicube.timeseries.smoothing import smooth_series
from tests.test_figures import series
from tests.workflow_helpers import SNAKEFILE, demo_config, records, write_config


def in_threads(*jobs):
    """Run each job (a callable) in its own thread, all started together; re-raise the first
    error (as Snakemake's local executor runs `run:` jobs under --force-use-threads)."""
    errors: list[BaseException] = []
    start = threading.Barrier(len(jobs))

    def run(job):
        start.wait()
        try:
            job()
        except BaseException as exc:  # handed to the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


def figures_job(tables: Path, out: Path, log: Path, points: list[str]):
    """The figures rule's `run:` block: its logging, then the job function."""

    def job():
        with job_logging(log, job=log.stem):
            logging.getLogger("ndvicube.jobs").info("drawing %s", out.name)
            figures(raw_path=tables / "raw.csv", smoothed_path=tables / "smoothed.csv",
                    points=points, area=tables.name, plots_dir=out / "plots",
                    overview=out / "overview.png")  # fmt: skip

    return job


def pngs(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*.png")}


def tables_of(folder: Path, points: int, seed: int) -> Path:
    folder.mkdir()
    raw = series(points, seed=seed)
    raw.to_csv(folder / "raw.csv", index=False)
    smooth_series(raw).to_csv(folder / "smoothed.csv", index=False)
    return folder


def test_two_figure_jobs_in_one_process_draw_what_each_draws_alone(tmp_path):
    """Two areas' figures jobs at once in two threads: the same PNG bytes as each drawn alone,
    and each job's log holds its own lines only."""
    a, b = tables_of(tmp_path / "a", 6, seed=1), tables_of(tmp_path / "b", 4, seed=2)
    points_a, points_b = [f"p{i}" for i in range(6)], [f"p{i}" for i in range(4)]
    figures_job(a, tmp_path / "alone-a", tmp_path / "alone-a.log", points_a)()
    figures_job(b, tmp_path / "alone-b", tmp_path / "alone-b.log", points_b)()
    in_threads(
        figures_job(a, tmp_path / "together-a", tmp_path / "together-a.log", points_a),
        figures_job(b, tmp_path / "together-b", tmp_path / "together-b.log", points_b),
    )
    assert len(pngs(tmp_path / "alone-a")) == 7 and len(pngs(tmp_path / "alone-b")) == 5
    assert pngs(tmp_path / "together-a") == pngs(tmp_path / "alone-a")
    assert pngs(tmp_path / "together-b") == pngs(tmp_path / "alone-b")
    for name, drawn, count in (("together-a", "together-a", 6), ("together-b", "together-b", 4)):
        assert records(tmp_path / f"{name}.log") == [
            f"INFO ndvicube.jobs drawing {drawn}",
            f"INFO ndvicube.jobs.figures figures: {count} point figure(s) of {count} point(s), "
            "and the overview",
        ]
    assert logging.getLogger().handlers == []


def test_point_figures_drawn_by_processes_from_a_thread_equal_one_process_drawing(tmp_path):
    """From 20 points the figures job draws in 2 processes; in a thread of a process with other
    threads they start from a fork server, not a fork: the same PNGs as one process draws."""
    from ndvicube.figures.series import plot_points

    raw = series(20, days=12)
    smoothed = smooth_series(raw)
    points = sorted(raw["point"].unique())
    plot_points(raw, smoothed, points, tmp_path / "one")
    in_threads(lambda: plot_points(raw, smoothed, points, tmp_path / "two", processes=2))
    assert len(pngs(tmp_path / "one")) == 20
    assert pngs(tmp_path / "two") == pngs(tmp_path / "one")


def test_a_failing_job_in_a_thread_fails_alone_with_its_message(tmp_path, capsys):
    """A library error in a thread job is raised to Snakemake (an exit would end Snakemake's
    process), logged in that job's log and on the terminal; the other job finishes its log."""
    failing, other = tmp_path / "fields.log", tmp_path / "tables.log"
    started = threading.Event()

    def fail():
        with job_logging(failing, job="fields"):
            started.wait()
            raise NdviCubeError("No field of 'bad.geojson' can be used.")

    def succeed():
        with job_logging(other, job="tables"):
            started.set()
            logging.getLogger("ndvicube.jobs.tables").info("phenology: 2 season(s)")

    with pytest.raises(NdviCubeError, match=r"No field of .bad\.geojson."):
        in_threads(fail, succeed)
    assert records(failing) == ["ERROR ndvicube.fields No field of 'bad.geojson' can be used."]
    assert records(other) == ["INFO ndvicube.jobs.tables phenology: 2 season(s)"]
    assert "[fields] ERROR: No field of 'bad.geojson' can be used." in capsys.readouterr().err


def test_a_thread_jobs_warnings_go_to_its_log_and_its_workers_to_the_terminal(tmp_path, capsys):
    """Python warnings of a job's thread are logged in its log (and on the terminal, as every
    warning); a record of a thread the job started is no job's: it reaches the terminal only."""
    import warnings

    log = tmp_path / "quicklook.log"

    def job():
        with job_logging(log, job="quicklook"):
            warnings.warn("All-NaN slice encountered", RuntimeWarning, stacklevel=1)
            worker = threading.Thread(
                target=logging.getLogger("ndvicube.read").warning, args=("retry 1/4",)
            )
            worker.start()
            worker.join()

    before = list(logging.getLogger().handlers)  # pytest's own
    in_threads(job)
    assert logging.getLogger().handlers == before
    assert [r.split(": ", 1)[-1] for r in records(log)] == [
        "RuntimeWarning: All-NaN slice encountered"
    ]
    err = capsys.readouterr().err
    assert "[quicklook] WARNING:" in err and "All-NaN slice encountered" in err
    assert "WARNING ndvicube.read: retry 1/4" in err


@pytest.mark.workflow
def test_light_jobs_run_in_snakemakes_process_under_the_default_profile(catalog, tmp_path):
    """`snakemake` from another folder (profiles/default found beside the Snakefile): the
    search and cube jobs' logs name Snakemake's own process (the cube's since issue 35 item 2's
    second part: tests/test_cube_in_thread.py); the tables job's says it was forked for it, by
    the fork server that imported its libraries (ndvicube/jobs/forked.py)."""
    (tmp_path / "pts.csv").write_text(catalog.points.read_text())
    config = demo_config(str(catalog.items), "pts.csv")
    config |= {"start": "2023-01-01", "end": "2023-01-31"}
    cfg = write_config(tmp_path / "config.yaml", config)
    cmd = [sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE), "--directory", str(tmp_path),
           "--configfile", str(cfg), "--cores", "2", "results/seed/series_raw.csv"]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("SNAKEMAKE_")}
    with subprocess.Popen(cmd, cwd="/", env=env | {"NDVICUBE_TIMING": "1"}, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT) as run:  # fmt: skip
        output, _ = run.communicate(timeout=300)
    assert run.returncode == 0, output[-3000:]
    logs = tmp_path / "results/seed/logs"
    assert sorted(p.name for p in logs.iterdir()) == ["cube.log", "search.log", "tables.log"]
    for job in ("search.log", "cube.log"):
        assert f"start-up: in Snakemake's process {run.pid}, thread" in (logs / job).read_text()
    assert (
        f"first line, forked for Snakemake's process {run.pid}\n"
        in (logs / "tables.log").read_text()
    )
    assert "cube progress: " in (logs / "cube.log").read_text()


@pytest.mark.workflow
def test_without_the_profile_a_light_job_is_a_process_of_its_own_and_says_so(catalog, tmp_path):
    """`--workflow-profile none`: no force-use-threads, so Snakemake spawns the search as a
    Snakemake process of its own; the items are the same, and the run warns how to avoid it."""
    config = demo_config(str(catalog.items), str(catalog.points))
    cfg = write_config(tmp_path / "config.yaml", config | {"end": "2023-01-31"})
    cmd = [sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE), "--directory", str(tmp_path),
           "--configfile", str(cfg), "--cores", "1", "--workflow-profile", "none",
           "results/seed/items.json"]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("SNAKEMAKE_")}
    with subprocess.Popen(cmd, cwd="/", env=env | {"NDVICUBE_TIMING": "1"}, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT) as run:  # fmt: skip
        output, _ = run.communicate(timeout=300)
    assert run.returncode == 0, output[-3000:]
    assert "light jobs (search, tables, figures, quick-look...) will each start a" in output
    assert "--force-use-threads" in output
    pid = re.search(
        r"start-up: in Snakemake's process (\d+),",
        (tmp_path / "results/seed/logs/search.log").read_text(),
    )
    assert pid is not None and int(pid[1]) != run.pid
    assert (tmp_path / "results/seed/items.json").stat().st_size > 0

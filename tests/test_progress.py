"""The cube job says how far it is while it runs (issue 35, item 3): progress lines as blocks
finish, at least every 5% of the blocks or 30 s, with days, scenes, elapsed time and time left."""

from __future__ import annotations

import logging
import re
import time

import pytest

from ndvicube.cube.progress import BuildProgress, duration, line_due
from ndvicube.cube.spec import Chunking
from ndvicube.demo import cube_spec
from ndvicube.jobs import build_cube
from ndvicube.read import remote
from ndvicube.testing.rangeserver import RangeHTTPServer
from tests.fault_helpers import items_subset

LINE = re.compile(
    r"cube progress: (\d+)/(\d+) blocks \((\d+)%\), (\d+)/(\d+) solar days "
    r"\((\d+)/(\d+) scenes\) written in [\d.]+ s(, about [\d.]+ s left)?$"
)


@pytest.mark.parametrize(
    "done, total, last_done, since_last_s, due",
    [
        (1, 20, 0, 0.0, True),  # 5% of 20 blocks: one block
        (1, 21, 0, 0.0, False),  # 4.8%: not yet
        (2, 21, 0, 0.0, True),
        (3, 60, 0, 0.0, True),  # exactly 5% (0.05 * 60 is 3.0000000000000004 in floats)
        (102, 2000, 2, 29.9, True),  # 100 more of 2000: 5%
        (101, 2000, 2, 29.9, False),  # 99 more, 29.9 s: neither rule yet
        (101, 2000, 2, 30.0, True),  # 30 s since the last line
        (2000, 2000, 1999, 0.0, True),  # the end is always logged
        (2000, 2000, 2000, 99.0, False),  # once
    ],
)
def test_a_line_is_due_every_5_percent_or_30_s_whichever_first(
    done, total, last_done, since_last_s, due
):
    assert line_due(done, total, last_done, since_last_s) is due


def test_durations_read_as_a_person_says_them():
    assert [duration(s) for s in (8.44, 41.2, 123, 3900)] == [
        "8.4 s", "41 s", "2 min 3 s", "1 h 05 min"
    ]  # fmt: skip


def test_the_heartbeat_logs_while_no_block_finishes(caplog):
    """A block longer than the interval still gets a line (at 0.1 s here instead of 30 s)."""
    progress = BuildProgress([8, 8], [10, 12], 2, every_s=0.1)
    with caplog.at_level(logging.INFO, logger="ndvicube.cube.store"), progress.heartbeat():
        time.sleep(0.35)
    lines = [r.getMessage() for r in caplog.records]
    assert 2 <= len(lines) <= 4
    assert lines[0].startswith("cube progress: 0/4 blocks (0%), 0/16 solar days (0/22 scenes)")
    assert lines[0].endswith("time left unknown until a block is written")


def test_progress_lines_arrive_while_the_cube_is_written(catalog, tmp_path, caplog):
    """Two months from COGs at 50 ms per request: the lines are spread over the build, not
    all written in its last millisecond (as they were when a day counted only once every day
    before it was written, and Dask wrote the last days first)."""
    with RangeHTTPServer(catalog.root, latency_s=0.05) as server:
        items = items_subset(catalog, tmp_path / "items.json", base_url=server.url)
        remote.reset()
        with caplog.at_level(logging.INFO, logger="ndvicube.cube.store"):
            started = time.time()
            spec = cube_spec(cube=Chunking(time_chunk=1))
            build_cube(spec, items_path=items, out=tmp_path / "c.zarr")
            ended = time.time()
    lines = [(r.created, r.getMessage()) for r in caplog.records if "progress" in r.getMessage()]
    counts = [tuple(map(int, LINE.search(m).groups()[:7])) for _, m in lines]
    times = [t for t, _ in lines]
    blocks = counts[-1][1]
    assert blocks == len(lines) >= 8  # a line per block: each is more than 5% of them
    assert [c[0] for c in counts] == sorted({c[0] for c in counts})  # blocks done grow
    assert counts[-1][0] == blocks and lines[-1][1].endswith(" s")  # 100%, no time left
    assert counts[-1][3] == counts[-1][4] and counts[-1][5] == counts[-1][6]  # all days, scenes
    assert all("left" in m for _, m in lines[:-1])
    # Spread over the build (they were all written within 1 ms): 10 blocks, 2 at once, each
    # at least one round trip of 50 ms after the headers, so the lines span 4 of them or more.
    assert started < times[0] and times[-1] <= ended
    assert times[-1] - times[0] >= 0.15
    assert len([t for t in times if t < times[-1] - 0.05]) >= 2

"""The cube job's progress lines, as its blocks finish: blocks, days, scenes, time, time left.

A build is ``time blocks x spatial blocks`` Dask tasks that finish in any order (Dask's threaded
scheduler takes the newest ready task first, so the last days are often written first). Each
finished block counts at once; a solar day counts as written once every spatial block of its
time block is. So a line is true whatever the order, and the job's log says how far it is while
it runs: before issue 35 only whole days counted in order from the first, and the first time
block often finished last, so every line was written in the job's last millisecond.

A line is logged when a block brings the count :data:`STEP_PERCENT` or more past the last line,
when :data:`EVERY_S` have passed since the last line (a heartbeat, even while no block
finishes), and at the end, e.g. (one line)::

    cube progress: 12/48 blocks (25%), 16/62 solar days (21/80 scenes) written in 41 s,
    about 2 min 3 s left

The record carries ``progress=True``: :func:`ndvicube.logs.job_logging` sends it to the
job's terminal too (Snakemake's output), not only to its log file.
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ndvicube.cube.blocks import BlockResult
    from ndvicube.cube.plan import EnginePlan

#: A line at least every this many percent of the blocks...
STEP_PERCENT = 5
#: ...and at least every this many seconds, whichever comes first.
EVERY_S = 30.0


def line_due(
    done: int,
    total: int,
    last_done: int,
    since_last_s: float,
    *,
    step_percent: int = STEP_PERCENT,
    every_s: float = EVERY_S,
) -> bool:
    """Whether a progress line is due with ``done`` of ``total`` blocks written, ``last_done``
    at the last line, ``since_last_s`` seconds ago: at the end, after ``step_percent`` more
    of the blocks (integer arithmetic: no float rounding at a boundary), or after ``every_s``."""
    if done >= total:
        return done > last_done or total == 0
    return (done - last_done) * 100 >= step_percent * total or since_last_s >= every_s


def duration(seconds: float) -> str:
    """``8.4 s``, ``41 s``, ``2 min 3 s``, ``1 h 05 min``: a time as a person reads it."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    return f"{minutes // 60} h {minutes % 60:02d} min"


class BuildProgress:
    """Counts a build's finished blocks (any order) and logs ``cube progress`` lines.

    ``days`` and ``scenes`` give, per time block, the solar days it holds and the scenes merged
    into them. :meth:`block_done` is called in the job's process as each block's result
    arrives; a heartbeat thread logs when nothing else did for ``every_s``.
    """

    def __init__(
        self,
        days: Sequence[int],
        scenes: Sequence[int],
        spatial_blocks: int,
        *,
        step_percent: int = STEP_PERCENT,
        every_s: float = EVERY_S,
    ) -> None:
        self.days, self.scenes = list(days), list(scenes)
        self.left = [spatial_blocks] * len(self.days)
        self.total = spatial_blocks * len(self.days)
        self.done = self.days_done = self.scenes_done = 0
        self.step_percent, self.every_s = step_percent, every_s
        self.started = self.last_at = time.monotonic()
        self.last_done = 0
        self.lock = threading.Lock()
        self.stopped = threading.Event()

    def block_done(self, result: BlockResult) -> None:
        """Count the block of time block ``result.t``; log a line if one is due."""
        with self.lock:
            self.done += 1
            self.left[result.t] -= 1
            if self.left[result.t] == 0:
                self.days_done += self.days[result.t]
                self.scenes_done += self.scenes[result.t]
            now = time.monotonic()
            due = line_due(
                self.done,
                self.total,
                self.last_done,
                now - self.last_at,
                step_percent=self.step_percent,
                every_s=self.every_s,
            )
            if due:
                self._log(now)

    @contextmanager
    def heartbeat(self) -> Iterator[BuildProgress]:
        """Log a line whenever ``every_s`` pass without one, while the block is running."""
        # In the job's context, so its lines are the job's (ndvicube.logs.JOB).
        thread = threading.Thread(
            target=contextvars.copy_context().run,
            args=(self._beat,),
            name="ndvicube-progress",
            daemon=True,
        )
        thread.start()
        try:
            yield self
        finally:
            self.stopped.set()
            thread.join()

    def _beat(self) -> None:
        """The heartbeat thread: wake when the last line is ``every_s`` old, log if still so."""
        wait = self.every_s
        while not self.stopped.wait(wait):
            with self.lock:
                now = time.monotonic()
                if self.done < self.total and now - self.last_at >= self.every_s:
                    self._log(now)
                wait = max(self.every_s - (now - self.last_at), 0.01)

    def _log(self, now: float) -> None:
        """Write the line (with the lock held) and remember when and how far."""
        from ndvicube.cube.store import log_progress

        elapsed = now - self.started
        if self.done >= self.total:
            left = ""
        elif self.done:
            left = f", about {duration(elapsed * (self.total - self.done) / self.done)} left"
        else:
            left = ", time left unknown until a block is written"
        log_progress(
            ("cube", "solar days"),
            self.days_done,
            sum(self.days),
            scenes=(self.scenes_done, sum(self.scenes)),
            before=f"{self.done}/{self.total} blocks ({100 * self.done // self.total}%), ",
            after=f" in {duration(elapsed)}{left}",
        )
        self.last_at, self.last_done = now, self.done


def build_progress(plan: EnginePlan, scenes: Sequence[int]) -> BuildProgress:
    """The progress of ``plan``'s blocks; ``scenes``: the scenes merged into each solar day."""
    tc, days = plan.spec.cube.time_chunk, len(plan.days)
    starts = range(0, days, tc)
    return BuildProgress(
        [min(tc, days - start) for start in starts],
        [int(sum(scenes[start : start + tc])) for start in starts],
        len(plan.blocks()),
    )

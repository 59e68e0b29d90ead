"""Logging for workflow jobs: the job's log file, and the terminal for what a user must see.

Snakemake only points at a failed job's log; a user running ``snakemake --cores N`` should still
read *why* it failed without opening files, and see how far a long job is. So records go to the
log file and, from WARNING up plus progress lines (:func:`for_terminal`), to the terminal the job
inherited - Snakemake's output for a local job, SLURM's log of the job under the SLURM executor;
library errors end the job with their one-paragraph message instead of a traceback.

Each record is written once to the job's log, by one handler: each job replaces the handlers of
the one before it in the same process, and the terminal handler is left out when the job's
stderr already is its log file (a wrapper that sends a job's stderr there), where its writes
would land in the same file at another offset.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path

from ndvicube.errors import NdviCubeError

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

#: A query string (``?key=value&...``, where signed-URL tokens live) after a URL or a file name,
#: up to a space, quote, comma or bracket. GDAL quotes both full URLs and bare file names.
_QUERY = re.compile(r"\?[A-Za-z0-9_.~%-]+=[^\s'\",)\]]*")


def redact_urls(text: str) -> str:
    """``https://host/a.tif?X-Amz-Signature=...`` -> ``https://host/a.tif`` wherever it occurs."""
    return _QUERY.sub("", text)


def redact_urls_in_logs() -> None:
    """Strip URL query strings from every log record from now on, in this process (idempotent).

    GDAL's own warnings (routed to logging by rasterio) and odc-stac's read errors quote the full
    asset URL, signed-URL token included; a record factory redacts them before any handler -
    file, terminal or a test's capture - sees the message.
    """
    factory = logging.getLogRecordFactory()
    if getattr(factory, "redacts_urls", False):
        return

    def redacting_factory(*args, **kwargs) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        message = record.getMessage()
        if "?" in message:
            record.msg, record.args = redact_urls(message), ()
        return record

    redacting_factory.redacts_urls = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(redacting_factory)


@contextlib.contextmanager
def job_logging(log_file: str | Path, *, job: str) -> Iterator[logging.Logger]:
    """Send logging and stderr to ``log_file``; turn :class:`NdviCubeError` into exit code 1."""
    terminal = sys.stderr
    redact_urls_in_logs()
    with open(log_file, "w", buffering=1) as handle:
        sys.stderr = handle
        root = logging.getLogger()
        file_handler = logging.StreamHandler(handle)
        file_handler.setFormatter(logging.Formatter(FORMAT))
        root.handlers[:] = [file_handler]
        if not _same_file(terminal, handle):
            console = logging.StreamHandler(terminal)
            console.addFilter(for_terminal)
            console.setFormatter(logging.Formatter(f"[{job}] %(levelname)s: %(message)s"))
            root.handlers.append(console)
        root.setLevel(logging.INFO)
        # boto3 (through rasterio's AWS session) says where it found credentials at INFO, each
        # time GDAL's environment opens: 578 lines in a demo cube's log under AWS_* variables.
        logging.getLogger("botocore.credentials").setLevel(logging.WARNING)
        logger = logging.getLogger(f"ndvicube.{job}")
        if os.environ.get(TIMING_VARIABLE):
            logger.info(
                "start-up: %.2f s from the job's process start to its first line", process_age_s()
            )
        try:
            yield logger
        except NdviCubeError as exc:
            logger.error("%s", exc)
            sys.stderr = terminal
            raise SystemExit(1) from None
        finally:
            sys.stderr = terminal
            root.handlers[:] = []


def for_terminal(record: logging.LogRecord) -> bool:
    """What a user running Snakemake sees of a job: warnings and errors, and progress lines
    (records logged with ``extra={"progress": True}``, :func:`ndvicube.cube.store.log_progress`),
    so a long cube job says how far it is in Snakemake's output, not only in its log file."""
    return record.levelno >= logging.WARNING or getattr(record, "progress", False)


#: Set (to anything) to log each job's start-up (``bench/bench_speed.py`` does).
TIMING_VARIABLE = "NDVICUBE_TIMING"


def process_age_s() -> float:
    """Seconds since this process started (Linux: ``/proc``; NaN elsewhere): what a job spends
    before its first line - the interpreter, Snakemake's script preamble, the imports."""
    try:
        with open("/proc/self/stat") as stat, open("/proc/uptime") as uptime:
            started = int(stat.read().rsplit(")", 1)[1].split()[19])
            return float(uptime.read().split()[0]) - started / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return float("nan")


def _same_file(stream, handle) -> bool:
    """Whether ``stream`` (the job's stderr) writes to the file ``handle`` has open."""
    try:
        return os.path.sameopenfile(stream.fileno(), handle.fileno())
    except (AttributeError, OSError, ValueError):  # no file descriptor (a test's capture)
        return False

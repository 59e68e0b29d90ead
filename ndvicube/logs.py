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

A job may run in a thread of Snakemake's own process (a ``run:`` block under
``--force-use-threads``, profiles/default: the search, the cube; the tables, figures and
quick-look run in processes forked for it, :mod:`ndvicube.jobs.forked`, and are handled as a
job's own process), beside other jobs: there it owns nothing
process-wide. Its handlers are added to the root logger beside the other jobs' and keep only
its own records (of its thread, and of the threads doing its work in its context: :data:`JOB`),
stderr stays Snakemake's, Python warnings are logged (so they
reach the job's log through its thread) while any such job runs, and its library errors are
raised to Snakemake, which fails that job alone (an exit would end Snakemake).
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import re
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

from ndvicube.errors import NdviCubeError

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
#: boto3 (through rasterio's AWS session) says where it found credentials at INFO, each time
#: GDAL's environment opens: 578 lines in a demo cube's log under AWS_* variables. Kept to
#: warnings while a job runs.
CREDENTIALS_LOGGER = "botocore.credentials"

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
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a malformed record: the handler reports it, not us
            return record
        if "?" in message:
            record.msg, record.args = redact_urls(message), ()
        return record

    redacting_factory.redacts_urls = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(redacting_factory)


def job_logging(log_file: str | Path, *, job: str) -> contextlib.AbstractContextManager:
    """Send the job's logging to ``log_file`` (and what a user must see to the terminal).

    In a job's own process (a ``script:``, its main thread) stderr goes to the log too and an
    :class:`NdviCubeError` ends the process with exit code 1 and its message. In a thread of
    Snakemake's process (a ``run:`` job), only the records of this thread are the job's, and
    the error is raised to Snakemake with its message, failing this job only.
    """
    if threading.current_thread() is threading.main_thread():
        return _job_in_own_process(log_file, job)
    return _job_in_thread(log_file, job)


@contextlib.contextmanager
def _job_in_own_process(log_file: str | Path, job: str) -> Iterator[logging.Logger]:
    """The whole process is the job's: root handlers, stderr, exit code."""
    terminal = sys.stderr
    redact_urls_in_logs()
    with open(log_file, "w", buffering=1) as handle:
        sys.stderr = handle
        root = logging.getLogger()
        root.handlers[:] = [_file_handler(handle)]
        if not _same_file(terminal, handle):
            root.handlers.append(_terminal_handler(terminal, job))
        root.setLevel(logging.INFO)
        logging.getLogger(CREDENTIALS_LOGGER).setLevel(logging.WARNING)
        logger = logging.getLogger(f"ndvicube.{job}")
        if os.environ.get(TIMING_VARIABLE):
            logger.info(
                "start-up: %.2f s from the job's process start to its first line%s",
                process_age_s(),
                forked_from(),
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


@contextlib.contextmanager
def _job_in_thread(log_file: str | Path, job: str) -> Iterator[logging.Logger]:
    """One job among others in this process: its handlers see only its own records - those of
    its thread and of the work it hands to other threads in its context (:data:`JOB`)."""
    redact_urls_in_logs()
    own_thread = _ThreadFilter(threading.get_ident())
    with open(log_file, "w", buffering=1) as handle:
        handlers = [_file_handler(handle), _terminal_handler(sys.stderr, job)]
        for handler in handlers:
            handler.addFilter(own_thread)
        with _THREAD_JOBS.running(handlers), _as_job(own_thread.thread):
            logger = logging.getLogger(f"ndvicube.{job}")
            if os.environ.get(TIMING_VARIABLE):
                logger.info(
                    "start-up: in Snakemake's process %d, thread %d",
                    os.getpid(),
                    own_thread.thread,
                )
            try:
                yield logger
            except NdviCubeError as exc:
                logger.error("%s", exc)
                raise


def _file_handler(handle) -> logging.Handler:
    handler = logging.StreamHandler(handle)
    handler.setFormatter(logging.Formatter(FORMAT))
    return handler


def _terminal_handler(terminal, job: str) -> logging.Handler:
    handler = logging.StreamHandler(terminal)
    handler.addFilter(for_terminal)
    handler.setFormatter(logging.Formatter(f"[{job}] %(levelname)s: %(message)s"))
    return handler


#: The job (the ident of its thread in Snakemake's process) whose work runs in this context.
#: Set in a job's thread by :func:`job_logging`; a thread the job starts runs in the job's
#: context when it is started by ``contextvars.copy_context().run`` (the cube's Dask pool,
#: its progress heartbeat, the HTTP client's workers) and asyncio carries it into the
#: coroutines the job's threads submit, so their records are the job's too. A filter runs in
#: the thread that logs, so it reads the context of the code that logged.
JOB: contextvars.ContextVar[int | None] = contextvars.ContextVar("ndvicube_job", default=None)


@contextlib.contextmanager
def _as_job(thread: int) -> Iterator[None]:
    token = JOB.set(thread)
    try:
        yield
    finally:
        JOB.reset(token)


class _ThreadFilter(logging.Filter):
    """Keeps one job's records, in a process running several: those logged in its thread, or
    in a thread doing its work (its context's :data:`JOB`)."""

    def __init__(self, thread: int) -> None:
        super().__init__()
        self.thread = thread

    def filter(self, record: logging.LogRecord) -> bool:
        return record.thread == self.thread or JOB.get() == self.thread


class _ThreadJobs:
    """The jobs running in threads of this process, and the process-wide settings they share:
    set when the first starts (root level INFO, warnings logged, a handler for the warnings of
    threads that are no job's), restored when the last ends."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.threads: set[int] = set()
        self.saved_level = logging.WARNING
        self.saved_credentials_level = logging.NOTSET
        self.strays: logging.Handler | None = None

    def is_stray(self, record: logging.LogRecord) -> bool:
        """A record of no job (a thread a job started outside its context, Snakemake's own
        thread) and not Snakemake's (its handlers show those): shown on the terminal as
        Python's last resort would have, had the root logger no handler."""
        return (
            record.thread not in self.threads
            and JOB.get() not in self.threads
            and not record.name.startswith("snakemake")
        )

    @contextlib.contextmanager
    def running(self, handlers: list[logging.Handler]) -> Iterator[None]:
        root = logging.getLogger()
        with self.lock:
            if not self.threads:
                self.saved_level = root.level
                root.setLevel(logging.INFO)
                credentials = logging.getLogger(CREDENTIALS_LOGGER)
                self.saved_credentials_level = credentials.level
                credentials.setLevel(logging.WARNING)  # as in a job's process (above)
                logging.captureWarnings(True)
                self.strays = logging.StreamHandler(sys.stderr)  # the terminal of now
                self.strays.setLevel(logging.WARNING)
                self.strays.addFilter(self.is_stray)
                self.strays.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
                root.addHandler(self.strays)
            self.threads.add(threading.get_ident())
            for handler in handlers:
                root.addHandler(handler)
        try:
            yield
        finally:
            with self.lock:
                for handler in handlers:
                    root.removeHandler(handler)
                self.threads.discard(threading.get_ident())
                if not self.threads:
                    root.removeHandler(self.strays)
                    root.setLevel(self.saved_level)
                    logging.getLogger(CREDENTIALS_LOGGER).setLevel(self.saved_credentials_level)
                    logging.captureWarnings(False)


_THREAD_JOBS = _ThreadJobs()


def for_terminal(record: logging.LogRecord) -> bool:
    """What a user running Snakemake sees of a job: warnings and errors, and progress lines
    (records logged with ``extra={"progress": True}``, :func:`ndvicube.cube.store.log_progress`),
    so a long cube job says how far it is in Snakemake's output, not only in its log file."""
    return record.levelno >= logging.WARNING or getattr(record, "progress", False)


#: Set (to anything) to log each job's start-up (``bench/bench_speed.py`` does).
TIMING_VARIABLE = "NDVICUBE_TIMING"


#: Set in a light job's process forked by :mod:`ndvicube.jobs.forked`: Snakemake's process id.
FORKED_VARIABLE = "NDVICUBE_FORKED_FOR"


def forked_from() -> str:
    """``, forked for Snakemake's process N`` in a light job's forked process, else nothing."""
    pid = os.environ.get(FORKED_VARIABLE)
    return f", forked for Snakemake's process {pid}" if pid else ""


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

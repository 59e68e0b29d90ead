"""Logging for workflow jobs: the job's log file, and the terminal for what a user must see.

Snakemake only points at a failed job's log; a user running ``snakemake --cores N`` should still
read *why* it failed without opening files. So records go to the log file and, from WARNING up
(plus progress lines), to the terminal the job inherited; library errors end the job with their
one-paragraph message instead of a traceback.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

from ndvicube.errors import NdviCubeError

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@contextlib.contextmanager
def job_logging(log_file: str | Path, *, job: str) -> Iterator[logging.Logger]:
    """Send logging and stderr to ``log_file``; turn :class:`NdviCubeError` into exit code 1."""
    terminal = sys.stderr
    with open(log_file, "w", buffering=1) as handle:
        sys.stderr = handle
        root = logging.getLogger()
        file_handler = logging.StreamHandler(handle)
        file_handler.setFormatter(logging.Formatter(FORMAT))
        console = logging.StreamHandler(terminal)
        console.setLevel(logging.WARNING)
        console.setFormatter(logging.Formatter(f"[{job}] %(levelname)s: %(message)s"))
        root.handlers[:] = [file_handler, console]
        root.setLevel(logging.INFO)
        logger = logging.getLogger(f"ndvicube.{job}")
        try:
            yield logger
        except NdviCubeError as exc:
            logger.error("%s", exc)
            sys.stderr = terminal
            raise SystemExit(1) from None
        finally:
            sys.stderr = terminal
            root.handlers[:] = []

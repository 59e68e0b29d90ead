"""What the loopback servers share: start/stop and the context-manager protocol around them."""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import IO, Self


class LoopbackService:
    """A server that runs between :meth:`start` and :meth:`stop`; ``with`` does both."""

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class SubprocessService(LoopbackService):
    """A server that is another program: started with its output to a file, stopped with
    SIGTERM (SIGKILL after 5 s)."""

    _proc: subprocess.Popen[bytes] | None = None
    _output: IO[bytes] | None = None

    def _spawn(self, command: Sequence[str], env: Mapping[str, str] | None = None) -> None:
        """Start ``command``; its stdout and stderr go to a file (a full pipe would block it)."""
        self._output = tempfile.TemporaryFile()  # noqa: SIM115 (closed by stop())
        self._proc = subprocess.Popen(
            list(command),
            stdin=subprocess.DEVNULL,
            stdout=self._output,
            stderr=subprocess.STDOUT,
            env=env,
        )

    def stop(self) -> None:
        """Terminate the subprocess (SIGTERM, then SIGKILL after 5 s) and drop its output."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._output is not None:
            self._output.close()
            self._output = None

    @property
    def output(self) -> str:
        """What the program printed so far (stdout and stderr), for failure messages."""
        if self._output is None:
            return ""
        self._output.seek(0)
        return self._output.read().decode("utf-8", errors="replace")

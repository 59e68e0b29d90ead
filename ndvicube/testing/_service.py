"""What the loopback servers share: start/stop and the context-manager protocol around them, a
free port, and the check that a server answers."""

from __future__ import annotations

import json
import socket
import subprocess
import tempfile
import threading
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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


class ThreadedHTTPService(LoopbackService):
    """A Python ``http.server`` on a free port of ``host``, answering from daemon threads; the
    subclass gives the handler class (:meth:`handler`)."""

    host = "127.0.0.1"
    _httpd: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    def handler(self) -> type[BaseHTTPRequestHandler]:
        raise NotImplementedError

    @property
    def base_url(self) -> str:
        """``http://HOST:PORT``; only while running."""
        if self._httpd is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return f"http://{self.host}:{self._httpd.server_address[1]}"

    def start(self) -> Self:
        """Bind a free port and serve from a daemon thread."""
        self._httpd = ThreadingHTTPServer((self.host, 0), self.handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
        if self._thread is not None:
            self._thread.join()
            self._thread = None


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


def free_port(host: str) -> int:
    """A port free right now on ``host`` (another process may take it before a server binds
    it)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def answers_json(url: str) -> bool:
    """True if ``url`` answers 200 with a JSON object (not just an open port)."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200 and isinstance(json.load(response), dict)
    except (OSError, urllib.error.URLError, ValueError):
        return False

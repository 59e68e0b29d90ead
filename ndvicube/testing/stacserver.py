"""A real STAC API on loopback: ``rustac serve`` (in-memory backend) as a subprocess.

Tests of STAC search should go through pystac-client and HTTP like production does, not through
mocks of either; ``rustac serve`` loads ItemCollection/collection JSON files and serves them as a
STAC API in ~0.05-0.25 s. What it does and does not do (observed with the rustac 0.9.18 wheel,
whose CLI says ``rustac 0.2.18``; ``tests/test_testing_servers.py`` pins each point so an
upgrade that changes one fails there):

Command
    ``rustac serve --addr 127.0.0.1:PORT --create-collections COLLECTION.json ITEMS.json``.
    ``--addr`` is both where it listens and the base of every link it writes. Collections are
    created for items whose collection was not loaded even without ``--create-collections``
    (passed anyway, as the documented way to ask for it). A missing file or a port in use makes
    it exit with status 1 and a one-line ``ERROR:`` on stderr.

Conformance (``/conformance`` and the landing page)
    STAC API ``core``, ``ogcapi-features``, ``collections``, ``item-search`` and OGC API
    Features ``core`` + ``geojson``. Nothing else: no Query, Filter, Sort, Fields or Context.

Query extension (``query={"eo:cloud_cover": {"lt": 30}}``)
    Not supported, and not rejected either: a POST search with ``query`` answers 200 with **no
    items** (any operator, any property); a GET ``query`` parameter is ignored (all items).
    pystac-client warns ``DoesNotConformTo: Server does not conform to QUERY``, POSTs anyway and
    so returns nothing. Check ``client.conforms_to(ConformanceClasses.QUERY)`` first and filter
    client-side otherwise (as :mod:`ndvicube.search.stac` does).

Filter (CQL2), sortby, fields
    ``filter`` (text or JSON, GET or POST) also gives 200 with no items. ``sortby`` and
    ``fields`` are ignored: whole items, in load order (file order, files in command-line
    order). On GET both are list-valued, so they also hit the next-link bug below.

Pagination
    Default page size 10; ``limit`` has no upper bound (``limit=5000`` returns everything in one
    page). Offsets are a ``skip`` parameter: GET ``next`` links are
    ``/search?limit=N&skip=M``, POST ``next`` links carry ``method: POST`` and the full body with
    ``skip``. pystac-client (POST by default) follows them to the last item. No
    ``numberMatched``/``context``, so ``ItemSearch.matched()`` is None. Beware ``limit=0``: an
    empty page with a ``next`` link to itself.

GET search bug
    A GET ``/search`` with a list-valued parameter (``collections``, ``ids``, ``bbox``,
    ``intersects``, ``sortby``, ``fields``) answers 500 ``unsupported value`` whenever there is
    a next page: the next-link encoder cannot write lists. POST (pystac-client's default) is
    unaffected; with GET use a ``limit`` at least the number of matches.

Items
    Served as loaded (``stac_version`` kept), with the server's ``root``/``self``/``parent``/
    ``collection`` links appended after the item's own: items that carry links of their
    original API then have two ``self`` links, and pystac takes the first, so strip them when a
    test needs ``self`` to point at the loopback server.

Example::

    with StacApiServer(collection_json, items_json) as api:
        items = list(Client.open(api.url).search(collections=["c"], bbox=b, max_items=None).items())
"""

from __future__ import annotations

import os
import shutil
import sysconfig
import time
from pathlib import Path

from ndvicube.testing._service import SubprocessService, answers_json, free_port

_PORT_IN_USE = "Address already in use"
_PORT_ATTEMPTS = 3


class StacApiServer(SubprocessService):
    """``rustac serve`` over local JSON files on ``http://host:port``; ``port=0`` picks one.

    ``hrefs`` are ItemCollection (``FeatureCollection``), collection and item JSON files or
    URLs, loaded in order. :meth:`start` returns once ``/`` and ``/search`` both answer, or raises
    with what the subprocess printed. :attr:`startup_s` tells how long that took.
    """

    def __init__(
        self,
        *hrefs: str | Path,
        host: str = "127.0.0.1",
        port: int = 0,
        startup_timeout_s: float = 30.0,
    ) -> None:
        if not hrefs:
            raise ValueError("StacApiServer needs at least one collection or item JSON to load")
        self.hrefs = [_absolute(h) for h in hrefs]
        self.host = host
        self.port = port
        """The port asked for, then the one in use once started."""
        self._asked_port = port
        self.startup_timeout_s = startup_timeout_s
        self.startup_s: float | None = None
        """Seconds from launching ``rustac serve`` to ``/search`` answering."""

    @property
    def url(self) -> str:
        """The API root, ``http://127.0.0.1:PORT`` (no trailing slash); only while running."""
        if self._proc is None:
            raise RuntimeError("StacApiServer is not started")
        return f"http://{self.host}:{self.port}"

    def start(self) -> StacApiServer:
        """Launch ``rustac serve`` and wait until it answers; retry if a free port got taken."""
        if self._proc is not None:
            raise RuntimeError("StacApiServer is already started")
        for attempt in range(_PORT_ATTEMPTS):
            try:
                self._launch()
                return self
            except _PortTaken:
                if attempt == _PORT_ATTEMPTS - 1:
                    raise RuntimeError(f"no free port found in {_PORT_ATTEMPTS} tries") from None
        return self  # not reached: the loop returns or raises

    def _launch(self) -> None:
        """One attempt: pick the port, start the process, wait for it to answer."""
        port = self._asked_port or free_port(self.host)
        command = [
            *rustac_command(),
            "serve",
            "--addr",
            f"{self.host}:{port}",
            "--create-collections",
            *self.hrefs,
        ]
        t0 = time.perf_counter()
        self._spawn(command)
        self.port = port
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        self.startup_s = time.perf_counter() - t0

    def _wait_ready(self) -> None:
        """Poll ``/`` and ``/search?limit=1`` until both give JSON; fail fast if rustac exits."""
        assert self._proc is not None
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            returncode = self._proc.poll()
            if returncode is not None:
                output = self.output
                if _PORT_IN_USE in output and not self._asked_port:
                    raise _PortTaken(output)
                raise RuntimeError(
                    f"rustac serve exited with status {returncode} before answering "
                    f"({' '.join(map(str, self._proc.args))}):\n{output}"
                )
            if answers_json(f"{self.url}/") and answers_json(f"{self.url}/search?limit=1"):
                return
            time.sleep(0.02)
        raise TimeoutError(
            f"rustac serve did not answer at {self.url} within {self.startup_timeout_s} s:\n"
            f"{self.output}"
        )


class _PortTaken(Exception):
    """The port picked by :func:`~ndvicube.testing._service.free_port` was taken before rustac
    bound it."""


def rustac_command() -> list[str]:
    """How to run the rustac CLI installed for this interpreter.

    The console script beside ``sys.executable`` is the rustac the tests' environment installed
    (``PATH`` may hold another, or a pyenv shim). ``python -c "from rustac import main"`` would
    not do: ``rustac.main()`` parses the process's own arguments, ``-c`` included.
    """
    script = Path(sysconfig.get_path("scripts")) / "rustac"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    found = shutil.which("rustac")
    if found:
        return [found]
    raise FileNotFoundError("rustac CLI not found: pip install 'rustac>=0.9' (the [test] extra)")


def _absolute(href: str | Path) -> str:
    """Local paths made absolute (rustac resolves relative ones against its cwd); URLs kept."""
    text = str(href)
    if "://" in text:
        return text
    return str(Path(text).resolve())

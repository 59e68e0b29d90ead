"""A production STAC API on loopback: stac-fastapi-pgstac over PostgreSQL + PostGIS (pgstac).

``rustac serve`` (:mod:`ndvicube.testing.stacserver`) implements neither the Query extension nor
``filter``, ``sortby`` or ``fields``, so the branch the default config takes against Earth
Search (server-side ``query`` on ``eo:cloud_cover``, token pagination) never ran against a
server that implements it. This is the stack Planetary Computer runs:

1. a throw-away PostgreSQL cluster (Debian's ``postgresql-15-postgis-3``; ``initdb`` in a
   temporary folder, run as the ``postgres`` user when we are root, as PostgreSQL requires),
   listening on a free loopback port with ``fsync`` off;
2. the pgstac schema by ``pypgstac migrate``; the collection and items by ``pypgstac load``;
3. ``uvicorn stac_fastapi.pgstac.app:create_app --factory`` on another free port.

:meth:`PgstacServer.start` returns once ``/search`` answers (about 7 s), and :meth:`stop`
removes the cluster. Example::

    with PgstacServer(collection_json, items_json) as api:
        items = list(Client.open(api.url).search(collections=["c"]).items())
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ndvicube.testing._service import SubprocessService, answers_json, free_port

#: Where Debian's packages put PostgreSQL's server programs (``.ci/run`` installs them).
PG_BIN = Path(os.environ.get("NDVICUBE_PG_BIN", "/usr/lib/postgresql/15/bin"))


class PgstacServer(SubprocessService):
    """stac-fastapi-pgstac serving ``collection`` and the items of ``items`` (an ItemCollection)."""

    def __init__(
        self, collection: str | Path, items: str | Path, *, startup_timeout_s: float = 60.0
    ) -> None:
        self.collection, self.items = Path(collection), Path(items)
        self.host = "127.0.0.1"
        self.port = 0
        self.startup_timeout_s = startup_timeout_s
        self._folder: Path | None = None
        self._pg_port = 0

    @property
    def url(self) -> str:
        """The API root, ``http://127.0.0.1:PORT``; only while running."""
        if self._proc is None:
            raise RuntimeError("PgstacServer is not started")
        return f"http://{self.host}:{self.port}"

    @property
    def dsn(self) -> str:
        """The database's connection string (user ``postgres``, no password, loopback)."""
        return f"postgresql://postgres@{self.host}:{self._pg_port}/pgstac"

    def start(self) -> PgstacServer:
        """Create and start the database, load it, start the API; wait until it answers."""
        if self._proc is not None:
            raise RuntimeError("PgstacServer is already started")
        try:
            self._start_database()
            self._load()
            self._start_api()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the API and the database, and delete the cluster."""
        super().stop()
        folder, self._folder = self._folder, None
        if folder is not None:
            _run([PG_BIN / "pg_ctl", "-D", folder / "data", "-m", "immediate", "stop"],
                 as_postgres=True, check=False)  # fmt: skip
            shutil.rmtree(folder, ignore_errors=True)

    def _start_database(self) -> None:
        """``initdb`` a cluster in a fresh folder and start it on a free port."""
        self._folder = Path(tempfile.mkdtemp(prefix="ndvicube-pgstac-"))
        if os.geteuid() == 0:
            shutil.chown(self._folder, "postgres")
        data = self._folder / "data"
        _run([PG_BIN / "initdb", "-D", data, "-A", "trust", "-U", "postgres"], as_postgres=True)
        self._pg_port = free_port(self.host)
        options = (f"-p {self._pg_port} -k {self._folder} -c listen_addresses={self.host} "
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off")  # fmt: skip
        _run([PG_BIN / "pg_ctl", "-D", data, "-o", options, "-l", self._folder / "log", "-w",
              "start"], as_postgres=True)  # fmt: skip
        _run([PG_BIN / "createdb", "-h", self.host, "-p", str(self._pg_port), "-U", "postgres",
              "pgstac"])  # fmt: skip

    def _load(self) -> None:
        """The pgstac schema, then the collection and its items (newline-delimited JSON)."""
        pypgstac = [sys.executable, "-m", "pypgstac.pypgstac"]
        _run([*pypgstac, "migrate", "--dsn", self.dsn])
        _run([*pypgstac, "load", "collections", self.collection, "--dsn", self.dsn,
              "--method", "upsert"])  # fmt: skip
        features = json.loads(self.items.read_text())["features"]
        ndjson = self._folder / "items.ndjson"
        ndjson.write_text("".join(json.dumps(f) + "\n" for f in features))
        _run([*pypgstac, "load", "items", ndjson, "--dsn", self.dsn, "--method", "upsert"])

    def _start_api(self) -> None:
        """uvicorn with stac-fastapi-pgstac's app factory, reading the database settings from
        the environment (``PGHOST``...)."""
        self.port = free_port(self.host)
        env = {"PGUSER": "postgres", "PGPASSWORD": "unused", "PGHOST": self.host,
               "PGPORT": str(self._pg_port), "PGDATABASE": "pgstac"}  # fmt: skip
        self._spawn(
            [sys.executable, "-m", "uvicorn", "stac_fastapi.pgstac.app:create_app", "--factory",
             "--host", self.host, "--port", str(self.port)],
            env=os.environ | env,
        )  # fmt: skip
        deadline = time.monotonic() + self.startup_timeout_s
        while not answers_json(f"{self.url}/search?limit=1"):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"stac-fastapi-pgstac did not start:\n{self.output}")
            time.sleep(0.1)


def _run(command: list, *, as_postgres: bool = False, check: bool = True) -> None:
    """Run a setup command (a PostgreSQL server program as the ``postgres`` user when we are
    root, as PostgreSQL requires); fail with what it printed."""
    prefix = ["runuser", "-u", "postgres", "--"] if as_postgres and os.geteuid() == 0 else []
    done = subprocess.run([*prefix, *map(str, command)], capture_output=True, text=True)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, command))} failed:\n{done.stdout}{done.stderr}")

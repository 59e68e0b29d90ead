"""One import at a time in Snakemake's process while jobs run in its threads.

Under ``profiles/default`` the jobs are ``run:`` blocks in threads of Snakemake's process, and
``preload.py`` imports their libraries in a background thread. Python 3's import locks are per
module, and a package whose modules import each other in a circle (zarr: ``zarr`` ->
``zarr.abc.store`` -> ``zarr.core`` -> ``zarr.abc.store``) cannot be imported by two threads at
once: one of them gets ``_DeadlockError`` ("deadlock detected by _ModuleLock('zarr.abc.store')")
and the other ``ImportError: cannot import name 'Store' from partially initialized module``
(5 runs of 5 here, two threads importing ``zarr`` and ``ndvicube.cube.zarrstore``: the cube
job failed that way beside the preload thread). Python 2 held one import lock for the whole
process; this module brings that back for the statements that import something new:
``builtins.__import__`` and ``importlib.import_module`` take one re-entrant lock, unless the
module and the names asked for are already there (then nothing is imported, and no thread
waits behind a long import for a name it already has).
"""

from __future__ import annotations

import builtins
import importlib
import importlib.util
import sys
import threading
from types import ModuleType
from typing import Any

IMPORT_LOCK = threading.RLock()

_builtin_import = builtins.__import__
_import_module = importlib.import_module


def serialise_imports() -> None:
    """Make every import of a new module in this process take :data:`IMPORT_LOCK` (idempotent)."""
    builtins.__import__ = _serialised_import
    importlib.import_module = _serialised_import_module


def _loaded(name: str, fromlist: Any = ()) -> bool:
    """Whether importing ``name`` (and ``fromlist`` from it) would import nothing. A module
    another thread is still importing counts as there: Python makes this thread wait on that
    module's own lock, which the importing thread releases without needing anything of this
    one."""
    module = sys.modules.get(name)
    if module is None:
        return False
    return all(item == "*" or hasattr(module, item) for item in fromlist or ())


def _absolute(name: str, globals: Any, level: int) -> str | None:
    """The absolute name of an import statement's module (``from .response import X`` in
    urllib3 becomes ``urllib3.response``), or None where it cannot tell."""
    if level == 0:
        return name
    package = (globals or {}).get("__package__")
    if not package:
        return None
    try:
        return importlib.util.resolve_name("." * level + name, package)
    except (ImportError, ValueError):
        return None


def _serialised_import(
    name: str, globals: Any = None, locals: Any = None, fromlist: Any = (), level: int = 0
) -> ModuleType:
    # A relative import of a loaded module takes no lock either: urllib3 runs one in every
    # response (``from .response import HTTPResponse``), which waited 10-30 ms behind the
    # preload thread's imports in each reading thread.
    absolute = _absolute(name, globals, level)
    if absolute is not None and _loaded(absolute, fromlist):
        return _builtin_import(name, globals, locals, fromlist, level)
    with IMPORT_LOCK:
        return _builtin_import(name, globals, locals, fromlist, level)


def _serialised_import_module(name: str, package: str | None = None) -> ModuleType:
    if not name.startswith(".") and _loaded(name):
        return sys.modules[name]
    with IMPORT_LOCK:
        return _import_module(name, package)

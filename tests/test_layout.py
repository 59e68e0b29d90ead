"""The package is layered in the order the data flows, and ships what it reads at run time.

Stages, lowest first: foundation modules at the root (errors, logs, geo, compute), search, read,
cube, fields, timeseries, composites, figures, config, jobs, demo. A stage may import its own and
lower stages only, so each can be read, tested and changed without the ones above it. The import
graph is read statically (``ast``) from every file found by walking ``ndvicube/`` - no module list
to keep up to date while modules move - counting every import statement: at module level, inside
functions and under ``if TYPE_CHECKING:``. ``ndvicube.testing`` (loopback servers) may import
anything and nothing layered may import it; the root ``__init__`` is exempt from the ranks but not
from the cycle check. The last test installs a built wheel, as a user would get it, and reads the
configuration schema from it: a file the package reads must be package data.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "ndvicube"

#: Stage of each module (and of every module below a package), lowest first.
STAGES = (
    ("errors", "logs", "geo", "compute", "redirects"),
    ("search",),
    ("read",),
    ("cube",),
    ("fields",),
    ("timeseries",),
    ("composites",),
    ("figures",),
    ("viewer",),
    ("config",),
    ("jobs",),
    ("demo",),
)
RANKS = {f"ndvicube.{name}": rank for rank, names in enumerate(STAGES) for name in names}
DESCRIBED = ("search", "read", "cube", "fields", "timeseries", "figures", "composites", "viewer")
MAX_LINES = 600


def module_files(package: Path) -> dict[str, Path]:
    """Module name -> file for every ``.py`` under ``package`` (a package is its __init__)."""
    found = {}
    for file in sorted(package.rglob("*.py")):
        parts = file.relative_to(package.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = file
    return found


def import_graph(package: Path) -> dict[str, set[str]]:
    """Importer -> the modules of ``package`` it imports, by any import statement anywhere."""
    modules = module_files(package)

    def known(name: str) -> str | None:  # the module itself, else its nearest existing parent
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for importer, file in modules.items():
        here = importer if file.name == "__init__.py" else importer.rpartition(".")[0]
        targets: set[str | None] = set()
        for node in ast.walk(ast.parse(file.read_text(), filename=str(file))):
            if isinstance(node, ast.Import):
                targets |= {
                    known(a.name) for a in node.names if a.name.split(".")[0] == package.name
                }
            elif isinstance(node, ast.ImportFrom):
                if node.level:  # relative: up level - 1 from this module's package
                    base = ".".join(here.split(".")[: len(here.split(".")) - node.level + 1])
                    base = f"{base}.{node.module}" if node.module else base
                else:
                    base = node.module or ""
                if base.split(".")[0] == package.name:
                    for alias in node.names:  # `from a import b`: module a.b if there is one
                        sub = f"{base}.{alias.name}"
                        targets.add(sub if sub in modules else known(base))
        graph[importer] = {t for t in targets if t is not None}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[str]:
    """Each module's shortest way back to itself, ``a -> b -> a``, once per set of modules on
    it (a breadth-first search from every module); self-imports do not count."""
    found: dict[frozenset[str], str] = {}
    for start in sorted(graph):
        came_from: dict[str, str] = {}
        frontier = [start]
        while frontier and start not in came_from:
            step = []
            for node in frontier:
                for nxt in sorted(graph[node] - {node}):
                    if nxt in graph and nxt not in came_from:
                        came_from[nxt] = node
                        step.append(nxt)
            frontier = step
        if start in came_from:
            path = [start, came_from[start]]
            while path[-1] != start:
                path.append(came_from[path[-1]])
            found.setdefault(frozenset(path), " -> ".join(reversed(path)))
    return sorted(found.values())


def rank(module: str, ranks: dict[str, int]) -> int | None:
    return next((r for m, r in ranks.items() if module == m or module.startswith(f"{m}.")), None)


def upward_imports(graph: dict[str, set[str]], ranks: dict[str, int], root: str) -> list[str]:
    """Imports of a higher stage, and of ``<root>.testing`` from a layered module."""
    testing, problems = f"{root}.testing", []
    for importer in sorted(graph):
        if importer == root or rank(importer, {testing: 0}) is not None:
            continue  # exempt: the root __init__ and the test servers
        for imported in sorted(graph[importer]):
            i, j = rank(importer, ranks), rank(imported, ranks)
            if rank(imported, {testing: 0}) is not None:
                problems.append(f"{importer} -> {imported} (the test servers are not library)")
            elif i is not None and j is not None and j > i:
                problems.append(f"{importer} -> {imported} (rank {i} -> rank {j})")
    return problems


def test_no_import_cycles():
    """A cycle makes import order matter and ties the stages in it into one."""
    graph = import_graph(PACKAGE)
    assert {"ndvicube.cube.load", "ndvicube.read.remote"} <= set(graph)  # the walk found them
    found = cycles(graph)
    assert not found, "import cycles:\n" + "\n".join(found)


def test_no_upward_imports_between_stages():
    found = upward_imports(import_graph(PACKAGE), RANKS, "ndvicube")
    assert not found, "imports against the layering:\n" + "\n".join(found)


def test_every_module_is_in_a_stage():
    """A module outside every stage would escape the rank check unnoticed."""
    layered = [m for m in module_files(PACKAGE) if m != "ndvicube" and m.split(".")[1] != "testing"]
    unranked = [m for m in layered if rank(m, RANKS) is None]
    assert not unranked, "modules in no stage (add them to STAGES):\n" + "\n".join(unranked)


def test_the_checks_report_a_known_cycle_and_upward_import(tmp_path):
    """The checks can fail, and the parser sees relative imports, imports inside functions and
    under TYPE_CHECKING: a tree with one cycle and two forbidden imports, all found."""
    files = {
        "__init__.py": "from pkg.high import NAME\n",  # the root is exempt from the ranks
        "low.py": "def f():\n    from pkg.high import thing\n",  # upward, half of the cycle
        "high/__init__.py": "from . import NAME\nNAME = 1\n",  # a self-import, not a cycle
        "high/thing.py": (
            "from typing import TYPE_CHECKING\nfrom .. import low\n"  # the other half
            "if TYPE_CHECKING:\n    from pkg import testing\n"  # layered -> testing
        ),
        "testing/__init__.py": "",
        "testing/servers.py": "import pkg.high.thing\nfrom ..low import f\n",  # allowed
    }
    for name, text in files.items():
        (tmp_path / "pkg" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "pkg" / name).write_text(text)
    graph = import_graph(tmp_path / "pkg")
    assert graph == {
        "pkg": {"pkg.high"},
        "pkg.low": {"pkg.high.thing"},
        "pkg.high": {"pkg.high"},
        "pkg.high.thing": {"pkg.low", "pkg.testing"},
        "pkg.testing": set(),
        "pkg.testing.servers": {"pkg.high.thing", "pkg.low"},
    }
    assert cycles(graph) == ["pkg.high.thing -> pkg.low -> pkg.high.thing"]
    assert upward_imports(graph, {"pkg.low": 0, "pkg.high": 1}, "pkg") == [
        "pkg.high.thing -> pkg.testing (the test servers are not library)",
        "pkg.low -> pkg.high.thing (rank 0 -> rank 1)",
    ]
    graph["pkg.testing"].add("pkg.high.thing")  # each cycle is listed, once
    graph["pkg.low"].add("pkg.testing")
    assert cycles(graph) == [
        "pkg.high.thing -> pkg.low -> pkg.high.thing",
        "pkg.testing -> pkg.high.thing -> pkg.testing",
    ]


def test_stage_packages_exist_and_describe_their_modules():
    """Each stage's docstring is its table of contents: every public module is named there
    (as ``remote``, ``read.remote`` or ``remote.py``)."""
    problems = []
    for stage in DESCRIBED:
        init = PACKAGE / stage / "__init__.py"
        if not init.is_file():
            problems.append(f"ndvicube.{stage} is not a package")
            continue
        doc = ast.get_docstring(ast.parse(init.read_text())) or ""
        children = [p.stem for p in init.parent.glob("*.py") if p.name != "__init__.py"]
        children += [p.parent.name for p in init.parent.glob("*/__init__.py")]
        for child in sorted(c for c in children if not c.startswith("_")):
            if not re.search(rf"(?<![\w]){re.escape(child)}(?![\w])", doc):
                problems.append(f"ndvicube/{stage}/__init__.py does not name {child}")
    assert not problems, "\n".join(problems)


def test_no_library_module_over_600_lines():
    """A module past 600 lines is doing the work of several; the test servers are exempt."""
    lengths = {
        str(file.relative_to(ROOT)): len(file.read_text().splitlines())
        for file in sorted(PACKAGE.rglob("*.py"))
        if not file.is_relative_to(PACKAGE / "testing")
    }
    long = [f"{f}: {n} lines" for f, n in lengths.items() if n > MAX_LINES]
    assert not long, f"over {MAX_LINES} lines:\n" + "\n".join(long)


#: Run in the installed copy: where ndvicube.config comes from, the schema, a minimal config.
CHECK_INSTALLED = """
import collections.abc, json, sys
sys.path.insert(0, sys.argv[1])
import ndvicube.config as config
schema = config.load_schema()
settings = config.validate_config(json.loads(sys.argv[2]))
print(json.dumps({"file": config.__file__, "mapping": isinstance(schema, collections.abc.Mapping),
                  "properties": sorted(schema["properties"]), "areas": sorted(settings.areas)}))
"""
MINIMAL_CONFIG = {
    "start": "2023-01-01",
    "end": "2023-03-01",
    "areas": {
        "a": {"bbox": [10, 50, 10.1, 50.1], "points": [{"id": "p", "lon": 10.05, "lat": 50.05}]}
    },
}


@pytest.fixture(scope="module")
def built_wheel(tmp_path_factory) -> tuple[Path, str]:
    """ndvicube's wheel, built as pip builds it, and the build's verbose log (the backend's
    warnings included).

    The wheel is built from a copy of the project files: setuptools builds in the source tree,
    and its ``build/lib`` keeps files of earlier builds (a moved module would ship twice) besides
    littering the checkout. ``--no-build-isolation`` is tried first; where it fails (here the
    venv's setuptools 65 has no ``bdist_wheel`` without the ``wheel`` package, nor PEP 639's
    ``license`` string), pip builds in isolation with setuptools from its configured index (a
    local mirror here: offline).
    """
    tmp_path = tmp_path_factory.mktemp("wheel")
    source, dist = tmp_path / "source", tmp_path / "dist"
    shutil.copytree(PACKAGE, source / "ndvicube", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md", "MANIFEST.in", "setup.py", "setup.cfg"):
        if (ROOT / name).is_file():
            shutil.copy(ROOT / name, source / name)
    build = [sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "-w", str(dist), str(source)]
    run = dict(capture_output=True, text=True, timeout=180, cwd=tmp_path)
    built = subprocess.run([*build, "--no-build-isolation"], **run)
    if built.returncode != 0:
        built = subprocess.run(build, **run)
        assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = dist.glob("*.whl")
    return wheel, built.stdout + built.stderr


def test_the_wheel_declares_its_licence_as_spdx_without_a_warning(built_wheel):
    """``license = "MIT"`` (PEP 639): setuptools warned on every install that the TOML-table form
    (``{ text = "MIT" }``) stops building after 2027-02-18 (issue 33)."""
    wheel, log = built_wheel
    (metadata,) = [n for n in zipfile.ZipFile(wheel).namelist() if n.endswith("/METADATA")]
    fields = zipfile.ZipFile(wheel).read(metadata).decode().split("\n\n")[0].splitlines()
    assert "License-Expression: MIT" in fields
    assert "SetuptoolsDeprecationWarning" not in log, log[-3000:]


def test_schema_is_package_data_found_from_an_installed_wheel(built_wheel, tmp_path):
    """``ndvicube.config`` reads its schema from the installed package, not from the checkout.

    The installed copy wins over the editable install because setuptools' editable finder is
    appended to ``sys.meta_path`` after ``PathFinder``, which searches ``sys.path[0]`` first
    (checked: ``ndvicube.config.__file__`` must lie in the target).
    """
    wheel, _ = built_wheel
    target = tmp_path / "target"
    run = dict(capture_output=True, text=True, timeout=180, cwd=tmp_path)
    names = zipfile.ZipFile(wheel).namelist()
    assert "ndvicube/config/config.schema.yaml" in names, [n for n in names if n[-3:] != ".py"]

    install = ["pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)]
    installed = subprocess.run([sys.executable, "-m", *install], **run)
    assert installed.returncode == 0, installed.stderr[-3000:]
    environ = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    args = [str(target), json.dumps(MINIMAL_CONFIG)]
    checked = subprocess.run([sys.executable, "-c", CHECK_INSTALLED, *args], env=environ, **run)
    assert checked.returncode == 0, checked.stderr[-3000:]
    found = json.loads(checked.stdout.splitlines()[-1])
    assert Path(found["file"]).is_relative_to(target), found["file"]
    assert found["mapping"] and {"areas", "stac", "cube"} <= set(found["properties"])
    assert found["areas"] == ["a"]


def test_runtime_numbers_are_declared_once_in_the_rules(tmp_path):
    """Threads, memory, runtime and concurrent reads come from the rules (io_threads from
    ``compute.IO_THREADS``), as Snakemake plans the jobs; the shipped profiles set none of them,
    so a site's profile is the one place that overrides them."""
    import yaml

    from ndvicube.compute import IO_THREADS
    from tests.workflow_helpers import snakemake

    for profile in ("default", "slurm"):
        keys = set(yaml.safe_load((ROOT / "profiles" / profile / "profile.yaml").read_text()))
        assert not keys & {"set-resources", "set-threads", "resources", "cores"}, profile
    result = snakemake(tmp_path, ROOT / "config.yaml", "--dry-run", "--cores", "2")
    assert result.returncode == 0, result.stderr[-2000:]
    planned = {
        m["rule"]: dict(re.findall(r"(\w+)=([^,\s]+)", m["resources"]))
        for m in re.finditer(
            r"^rule (?P<rule>\w+):\n(?:    .*\n)*?    resources: (?P<resources>.*)$",
            result.stdout,
            re.M,
        )
    }
    assert {k: planned["cube"][k] for k in ("io_threads", "mem_mb", "runtime")} == {
        "io_threads": str(IO_THREADS), "mem_mb": "2000", "runtime": "60",
    }  # fmt: skip
    assert {k: planned["composites"][k] for k in ("mem_mb", "runtime")} == {
        "mem_mb": "1500", "runtime": "30",
    }  # fmt: skip

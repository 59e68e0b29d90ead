"""Every module ndvicube imports comes from a dependency it declares (issue 12).

A package that only arrives as another's dependency, or that was installed by hand on the machine
that ran the tests, hides a broken fresh install: the default COG reader once imported
``tifffile``, declared only in the ``bench`` extra. These tests read the imports of the code
statically (every ``import`` statement, those inside functions included), find the installed
distribution that provides each module (``importlib.metadata``), and require it to be declared
directly: in ``dependencies`` for the product (``ndvicube/``, ``scripts/``, ``workflow/``,
``Snakefile``), in ``dependencies`` or the ``test`` extra for the tests and
``ndvicube/testing/``. The conda environment of the rules must list the same distributions.
"""

from __future__ import annotations

import ast
import functools
import importlib.metadata as metadata
import os
import re
import subprocess
import sys
import tomllib
import venv
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
CONDA_ENV = ROOT / "workflow" / "envs" / "ndvicube.yaml"

#: conda-forge names of PyPI distributions whose names differ there.
CONDA_NAMES = {"snakemake": "snakemake-minimal"}

_IMPORT_LINE = re.compile(r"^\s*(?:from\s+([\w.]+)\s+import\s|import\s+([\w.]+))")


def declared(*groups: str) -> list[Requirement]:
    """The requirements of ``dependencies`` (group "core") and of the named extras."""
    project = PYPROJECT["project"]
    found = []
    for group in groups:
        lines = (
            project["dependencies"] if group == "core" else project["optional-dependencies"][group]
        )
        found += [Requirement(line) for line in lines]
    return found


def names(requirements: list[Requirement]) -> set[str]:
    return {canonicalize_name(r.name) for r in requirements}


def imported_modules(*paths: Path, exclude: Path | None = None) -> dict[str, set[str]]:
    """Absolute imports of third-party modules in the Python and Snakemake files under
    ``paths``: module -> the files importing it."""
    found: dict[str, set[str]] = {}
    for path in paths:
        files = [path] if path.is_file() else sorted(path.rglob("*"))
        for file in files:
            if exclude is not None and file.is_relative_to(exclude):
                continue
            for module in _imports_of(file):
                top = module.split(".")[0]
                if top not in sys.stdlib_module_names and top not in ("ndvicube", "tests"):
                    found.setdefault(module, set()).add(str(file.relative_to(ROOT)))
    return found


def _imports_of(file: Path) -> list[str]:
    if file.suffix == ".py":
        tree = ast.parse(file.read_text(), filename=str(file))
        modules = []
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules += [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.append(node.module)
        return modules
    if file.suffix == ".smk" or file.name == "Snakefile":  # Snakemake syntax: not Python's ast
        matches = (_IMPORT_LINE.match(line) for line in file.read_text().splitlines())
        return [m.group(1) or m.group(2) for m in matches if m]
    return []


@functools.cache
def _files_of(distribution: str) -> tuple[str, ...]:
    return tuple(str(f) for f in metadata.distribution(distribution).files or ())


def providers(module: str) -> set[str]:
    """Installed distributions whose files hold ``module`` (for namespace packages such as
    ``odc``, the ones holding its deepest installed part: ``odc.loader`` is odc-loader's)."""
    parts = module.split(".")
    candidates = metadata.packages_distributions().get(parts[0], [])
    for depth in range(len(parts), 0, -1):
        prefix = "/".join(parts[:depth])
        holding = {
            canonicalize_name(d)
            for d in candidates
            if any(f == f"{prefix}.py" or f.startswith(f"{prefix}/") for f in _files_of(d))
        }
        if holding:
            return holding
    return {canonicalize_name(d) for d in candidates}


def undeclared(modules: dict[str, set[str]], allowed: set[str]) -> list[str]:
    """One line per module that no declared distribution provides."""
    return [
        f"{module} (imported by {', '.join(sorted(files))}; provided by "
        f"{sorted(providers(module)) or 'nothing installed'})"
        for module, files in sorted(modules.items())
        if not providers(module) & allowed
    ]


def test_every_module_the_product_imports_is_a_core_dependency():
    product = imported_modules(
        ROOT / "ndvicube",
        ROOT / "scripts",
        ROOT / "workflow",
        ROOT / "Snakefile",
        exclude=ROOT / "ndvicube" / "testing",
    )
    # The scan sees the imports that broke a fresh install, and the namespace packages.
    assert {"async_geotiff", "odc.loader", "snakemake.utils", "yaml"} <= set(product)
    assert undeclared(product, names(declared("core"))) == []


def test_every_module_the_tests_import_is_declared_for_them():
    tests = imported_modules(ROOT / "tests", ROOT / "ndvicube" / "testing")
    assert {"pytest", "hypothesis", "selenium", "shapely"} <= {m.split(".")[0] for m in tests}
    assert undeclared(tests, names(declared("core", "test"))) == []


def test_the_check_names_a_module_nobody_declares():
    """The check can fail: a module only the test extra provides is refused for the product."""
    modules = {"hypothesis.strategies": {"ndvicube/example.py"}, "numpy": {"ndvicube/cube/load.py"}}
    problems = undeclared(modules, names(declared("core")))
    assert problems == [
        "hypothesis.strategies (imported by ndvicube/example.py; provided by ['hypothesis'])"
    ]
    assert undeclared({"odc.loader": {"x.py"}}, {"odc-stac"}) != []  # the namespace part counts


#: Private modules of other libraries the code may still import, and why. Each such import must
#: sit in a ``try`` whose ``except ImportError`` keeps ndvicube working when a release moves it.
GUARDED_PRIVATE = {
    "rasterio._err": "GDAL's error classes (CPLE_*): rasterio has no public module with them",
}


def _is_private(dotted: str) -> bool:
    return any(part.startswith("_") and not part.startswith("__") for part in dotted.split("."))


def _guarded_imports(tree: ast.AST) -> set[ast.AST]:
    """Import statements inside a ``try`` that catches ImportError (or ModuleNotFoundError)."""
    guarded: set[ast.AST] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try) and any(
            isinstance(h.type, ast.Name) and h.type.id in ("ImportError", "ModuleNotFoundError")
            for h in node.handlers
        ):
            guarded |= {n for stmt in node.body for n in ast.walk(stmt)}
    return guarded


def private_imports(file: Path, source: str | None = None) -> list[str]:
    """``module`` or ``module:name`` for each import in ``file`` of a private part of another
    library: a module whose path has a part starting with ``_`` (``odc.loader._rio``), or a
    ``_name`` imported from one (``from odc.stac import _collection``). ndvicube's own modules,
    the tests' and the modules beside ``file`` (bench's ``_trial``) may be private; the standard
    library is not checked; an import of :data:`GUARDED_PRIVATE` inside a ``try ... except
    ImportError`` is allowed."""
    source = file.read_text() if source is None else source
    own = {"ndvicube", "tests", *(f.stem for f in file.parent.glob("*.py"))}
    if file.suffix == ".smk" or file.name == "Snakefile":
        lines = (_IMPORT_LINE.match(line) for line in source.splitlines())
        found = [(m.group(1) or m.group(2), None, False) for m in lines if m]
    else:
        tree = ast.parse(source, filename=str(file))
        guarded = _guarded_imports(tree)
        found = []
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found += [(alias.name, None, node in guarded) for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found += [(node.module, alias.name, node in guarded) for alias in node.names]
    problems = []
    for module, name, is_guarded in found:
        top = module.split(".")[0]
        if top in own or top in sys.stdlib_module_names:
            continue
        if is_guarded and module in GUARDED_PRIVATE:
            continue
        if _is_private(module):
            problems.append(module)
        elif name is not None and _is_private(name):
            problems.append(f"{module}:{name}")
    return list(dict.fromkeys(problems))


def test_no_code_imports_a_private_module_of_another_library():
    """Another library's private modules (``odc.loader._reader``) change in any release without
    notice: with open version ranges, a fresh install would then break by itself (issue 33)."""
    files = [ROOT / "Snakefile"] + [
        f
        for folder in ("ndvicube", "scripts", "workflow", "bench", "tests")
        for f in sorted((ROOT / folder).rglob("*"))
        if f.suffix in (".py", ".smk")
    ]
    found = {str(f.relative_to(ROOT)): p for f in files if (p := private_imports(f))}
    assert found == {}, (
        "imports of another library's private modules (use its public API, or own the few "
        f"lines with their origin and licence): {found}"
    )


def test_the_private_import_check_names_what_it_refuses():
    """The check can fail: on the imports the engine had, and on an unguarded `rasterio._err`."""
    source = """
from odc.loader._reader import nodata_mask
from odc.stac import _collection
import rasterio._err
from odc.loader import RioReader
from ndvicube.read import _private_helper
from __future__ import annotations
try:
    from rasterio._err import CPLE_BaseError
except ImportError:
    CPLE_BaseError = OSError
try:
    from odc.loader._rio import rio_env
except ImportError:
    rio_env = None
"""
    assert private_imports(ROOT / "ndvicube" / "example.py", source) == [
        "odc.loader._reader",
        "odc.stac:_collection",
        "rasterio._err",
        "odc.loader._rio",
    ]
    assert private_imports(ROOT / "workflow" / "rules" / "x.smk", "from odc.stac._mdtools import a")


def _closure(requirements: list[Requirement]) -> set[str]:
    """The distributions a pip install of ``requirements`` brings, extras and markers applied."""
    seen: set[str] = set()
    todo = [(r, frozenset(r.extras)) for r in requirements]
    while todo:
        requirement, extras = todo.pop()
        name = canonicalize_name(requirement.name)
        key = f"{name}[{','.join(sorted(extras))}]"
        if key in seen:
            continue
        seen.add(key)
        for line in metadata.requires(name) or []:
            child = Requirement(line)
            environments = [{"extra": e} for e in extras] or [{"extra": ""}]
            if child.marker is None or any(child.marker.evaluate(e) for e in environments):
                todo.append((child, frozenset(child.extras)))
    return {key.partition("[")[0] for key in seen}


def test_snakemake_report_needs_are_core_dependencies():
    """`snakemake --report` imports its `reports` extra (pygments); the test extra brings
    pygments through pytest, so only this check sees a core install without it."""
    report_needs = {
        canonicalize_name(Requirement(line).name)
        for line in metadata.requires("snakemake") or []
        if 'extra == "reports"' in line
    }
    assert "pygments" in report_needs
    assert report_needs <= _closure(declared("core"))


def _conda_dependencies() -> set[str]:
    """The distributions the conda environment lists (conda-forge and pip sections)."""
    env = yaml.safe_load(CONDA_ENV.read_text())
    lines = [d for d in env["dependencies"] if isinstance(d, str)]
    lines += [p for d in env["dependencies"] if isinstance(d, dict) for p in d.get("pip", [])]
    return {canonicalize_name(re.split(r"[<>=!\s\[]", line, maxsplit=1)[0]) for line in lines}


def test_conda_environment_lists_the_same_dependencies():
    core = declared("core")
    expected = {canonicalize_name(CONDA_NAMES.get(r.name, r.name)) for r in core}
    for requirement in core:  # an extra is spelled out: snakemake[reports] is + pygments
        expected |= {
            canonicalize_name(Requirement(line).name)
            for extra in requirement.extras
            for line in metadata.requires(requirement.name) or []
            if f'extra == "{extra}"' in line
        }
    build = {canonicalize_name(Requirement(r).name) for r in PYPROJECT["build-system"]["requires"]}
    assert _conda_dependencies() == expected | build | {"python", "pip"}


def test_conda_environment_builds_with_the_setuptools_the_build_needs():
    """The post-deploy step builds ndvicube without isolation, with the environment's setuptools:
    it must be one that reads ``license = "MIT"`` (setuptools 77, PEP 639)."""
    env = yaml.safe_load(CONDA_ENV.read_text())
    strings = [d for d in env["dependencies"] if isinstance(d, str)]
    (listed,) = [d for d in strings if d.startswith("setuptools")]
    (needed,) = [Requirement(r) for r in PYPROJECT["build-system"]["requires"]]
    assert Requirement(listed).specifier == needed.specifier
    assert "77" in needed.specifier


def test_conda_environment_does_not_install_by_relative_path():
    """Snakemake copies the file to .snakemake/conda/: a relative pip path points elsewhere."""
    env_text = CONDA_ENV.read_text()
    assert not re.search(r"^\s*-\s*(-e\s+)?\.\.?/", env_text, re.MULTILINE)
    post_deploy = CONDA_ENV.with_name("ndvicube.post-deploy.sh").read_text()
    assert 'pip install --no-deps --no-build-isolation -e "$NDVICUBE_SOURCE"' in post_deploy
    assert (
        "os.environ.update(NDVICUBE_SOURCE=str(workflow.basedir))"
        in (ROOT / "workflow" / "rules" / "common.smk").read_text()
    )


#: Where the environment finds the ndvicube package, without importing it (its dependencies are
#: the conda environment's, absent from the stand-in).
FIND_NDVICUBE = "import importlib.util; print(importlib.util.find_spec('ndvicube').origin)"


@pytest.mark.workflow
def test_post_deploy_script_installs_this_checkout(tmp_path):
    """The post-deploy step, run as Snakemake runs it (in the new environment, from another
    folder), installs ndvicube from NDVICUBE_SOURCE. conda is not installable here, so a fresh
    virtualenv with the build requirement stands in for the conda environment."""
    env_dir = tmp_path / "env"
    venv.create(env_dir, with_pip=True)
    bin_dir = env_dir / "bin"
    subprocess.run(
        [bin_dir / "python", "-m", "pip", "install", "-q", *PYPROJECT["build-system"]["requires"]],
        check=True,
        capture_output=True,
    )
    environ = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    environ |= {"PATH": f"{bin_dir}{os.pathsep}{environ['PATH']}", "NDVICUBE_SOURCE": str(ROOT)}
    copy = tmp_path / "conda" / "0123abcd.post-deploy.sh"  # where Snakemake copies it
    copy.parent.mkdir()
    copy.write_text(CONDA_ENV.with_name("ndvicube.post-deploy.sh").read_text())
    subprocess.run(["bash", str(copy)], cwd=tmp_path, env=environ, check=True, capture_output=True)
    where = subprocess.run(
        [bin_dir / "python", "-c", FIND_NDVICUBE],
        env=environ,
        cwd=tmp_path,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    assert Path(where) == ROOT / "ndvicube" / "__init__.py"
    missing = subprocess.run(
        ["bash", str(copy)],
        cwd=tmp_path,
        env={k: v for k, v in environ.items() if k != "NDVICUBE_SOURCE"},
        capture_output=True,
        text=True,
    )
    assert missing.returncode != 0
    assert "NDVICUBE_SOURCE is not set" in missing.stderr


@pytest.mark.skipif(not os.environ.get("CI"), reason="CI runs the suite in a fresh virtualenv")
def test_ci_runs_in_a_virtualenv_that_does_not_see_the_system_packages():
    """`.ci/run` must not let a package installed by hand on the machine satisfy an import."""
    assert sys.prefix != sys.base_prefix
    config = (Path(sys.prefix) / "pyvenv.cfg").read_text()
    assert re.search(r"include-system-site-packages\s*=\s*false", config)
    assert all(not p.startswith(sys.base_prefix) or "site-packages" not in p for p in sys.path)

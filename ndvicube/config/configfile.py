"""The config file itself, read before Snakemake's loader reads it: what that loader would do
wrong is refused here, naming the key or tag and its line.

Snakemake reads a config file with YTE (``yte.process_yaml`` over PyYAML's ``FullLoader``), so:

* ``end: 2023-02-30`` (an unquoted date that does not exist) fails with a 62-line traceback
  naming no key;
* a tag that constructs a Python object (``!!python/object:...``) fails as "not valid JSON or
  YAML ... make sure to not mix whitespace and tab indentation", while ``FullLoader`` builds
  some of them (``!!python/name:os.system`` gives the function, ``!!python/tuple`` a tuple);
* ``__use_yte__: true`` makes the file a YTE template whose ``?`` expressions and
  ``__definitions__`` are Python, run while the file is loaded.

ndvicube's config is data: :func:`check_config_file` loads the file with PyYAML's safe loader,
so no tag constructs anything but text, numbers, booleans, dates, lists and mappings, and
refuses a YTE template before Snakemake reads it. The ``Snakefile`` runs it on ``config.yaml``
before its ``configfile:`` line, so nothing in that file runs. A file given with
``--configfile`` is loaded by Snakemake's command line before any workflow code, YTE included:
its code has run by the time this check refuses the run (so that no job runs it again), and a
tag Snakemake cannot read fails there with Snakemake's message.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import yaml

from ndvicube.errors import ConfigError

#: How PyYAML spells the ``!!`` shorthand of a tag.
YAML_TAG_PREFIX = "tag:yaml.org,2002:"


class _Refused(Exception):
    """Raised inside the loader with the message :func:`check_config_file` gives."""


class _ConfigFileLoader(yaml.SafeLoader):
    """PyYAML's safe loader, whose failures name the key or tag and its line."""

    def construct_mapping(self, node, deep=False):
        for key_node, value_node in node.value:
            value_node.ndvicube_key = key_node.value
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_timestamp(self, node):
        """``end: 2023-02-30``: PyYAML's bare "day is out of range for month", with its key."""
        try:
            return super().construct_yaml_timestamp(node)
        except ValueError as error:
            key = getattr(node, "ndvicube_key", "?")
            raise _Refused(
                f"Invalid config in {self.name}, line {node.start_mark.line + 1}: {key}: "
                f"{node.value} is not a date that exists ({error}). Write a real date, in "
                f'quotes: {key}: "YYYY-MM-DD".'
            ) from None

    def construct_undefined(self, node):
        """A tag the safe loader has no constructor for: ``!!python/...`` or a custom one."""
        tag = node.tag.replace(YAML_TAG_PREFIX, "!!", 1)
        key = getattr(node, "ndvicube_key", None)
        where = f"line {node.start_mark.line + 1}" + (f" ({key}: ...)" if key else "")
        cause = (
            "constructs a Python object, and YAML tags that construct Python objects are "
            "refused: the config is data, never code"
            if tag.startswith("!!python/")
            else "is not a YAML type ndvicube reads (the config is plain data: text, numbers, "
            "booleans, dates, lists and mappings)"
        )
        raise _Refused(
            f"Invalid config in {self.name}, {where}: the tag {tag} {cause}. Remove the tag "
            "and write the value itself (e.g. a list for a tuple, a quoted string for a name)."
        )


_ConfigFileLoader.add_constructor(
    YAML_TAG_PREFIX + "timestamp", _ConfigFileLoader.construct_yaml_timestamp
)
_ConfigFileLoader.add_constructor(None, _ConfigFileLoader.construct_undefined)


def check_config_file(path: str | Path) -> None:
    """Raise :class:`ConfigError` if the YAML file at ``path`` holds an impossible unquoted date,
    a tag that is not plain data (``!!python/object``), or asks for YTE templating
    (``__use_yte__: true``): Python code Snakemake's loader would run.

    A missing file, or anything else wrong with it (bad indentation, a JSON syntax error), is
    left to Snakemake's loader to report.
    """
    path = Path(path)
    message = _refusal(path) if path.is_file() else None
    if message:
        raise ConfigError(message)  # here, so the traceback Snakemake shows is two lines


def check_config_files(paths: Iterable[str | Path]) -> None:
    """:func:`check_config_file` on each of ``paths`` (``config.yaml`` and any ``--configfile``)."""
    for path in paths:
        check_config_file(path)


def _refusal(path: Path) -> str | None:
    """Why the file is refused, or None (also when the safe loader cannot read it)."""
    with open(path, encoding="utf-8", errors="replace") as f:
        loader = _ConfigFileLoader(f)
        loader.name = str(path)
        try:
            return _yte_template(path, loader.get_single_data())
        except yaml.YAMLError:
            return None
        except _Refused as error:
            return str(error)
        finally:
            loader.dispose()


def _yte_template(path: Path, data: object) -> str | None:
    """The message refusing a file that asks for YTE templating, or None."""
    if not (isinstance(data, dict) and data.get("__use_yte__")):
        return None
    value = data["__use_yte__"]
    return (
        f"Invalid config in {path}: it sets __use_yte__: "
        f"{str(value).lower() if isinstance(value, bool) else repr(value)}, which makes "
        "Snakemake's loader treat it as a YTE template and run its expressions as Python. The "
        "config is data, never code: ndvicube refuses templated config files. Remove "
        "__use_yte__ and write the values themselves (generate the file beforehand if it must "
        "be computed)."
    )

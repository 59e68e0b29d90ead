"""The configuration schema: read from the package, applied with its defaults, errors in words.

``config.schema.yaml`` beside this module is the public contract for the keys and their
defaults (JSON schema draft 2020-12). It is package data, found with :mod:`importlib.resources`,
so an installed ndvicube validates without a checkout; the workflow validates with this same
file, once (:func:`ndvicube.config.validate_config`).
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Mapping
from importlib import resources
from typing import Any

import jsonschema
import yaml

from ndvicube.errors import ConfigError

#: The schema's file name, inside the ``ndvicube.config`` package.
SCHEMA_FILE = "config.schema.yaml"


def load_schema() -> dict[str, Any]:
    """Read the configuration schema (YAML) from the package."""
    return yaml.safe_load(resources.files("ndvicube.config").joinpath(SCHEMA_FILE).read_text())


def apply_schema(config: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``config`` with YAML dates as ISO strings and the schema's defaults filled in,
    validated: what the jobs see. Raises :class:`ConfigError` naming the first bad key."""
    data = _stringify_dates(copy.deepcopy(dict(config)))
    schema = load_schema()
    _fill_defaults(data, schema)
    validator = jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        raise ConfigError(_describe_schema_error(errors[0]))
    return data


def _stringify_dates(value: Any) -> Any:
    """YAML turns ``2023-01-01`` into a date; the schema wants ISO strings."""
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _stringify_dates(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_stringify_dates(v) for v in value]
    return value


def _fill_defaults(data: dict[str, Any], schema: Mapping[str, Any]) -> None:
    """Fill ``default:`` values of object properties, recursively (as Snakemake's validate)."""
    for key, sub in schema.get("properties", {}).items():
        if key not in data and "default" in sub:
            data[key] = copy.deepcopy(sub["default"])
        if isinstance(data.get(key), dict):
            _fill_defaults(data[key], sub)
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        for key, value in data.items():
            if key not in schema.get("properties", {}) and isinstance(value, dict):
                _fill_defaults(value, extra)


def _describe_schema_error(error: jsonschema.ValidationError) -> str:
    """One paragraph: which key, which value, what is wrong, how to fix it."""
    key = ".".join(str(p) for p in error.absolute_path) or "(top level)"
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        unknown = sorted(set(error.instance) - set(allowed))
        return (
            f"Invalid config: unknown key(s) {', '.join(map(repr, unknown))} under {key}. "
            f"Allowed keys there are: {', '.join(allowed)}. Check the spelling or remove them."
        )
    if error.validator == "oneOf" and key.startswith("areas."):
        return (
            f"Invalid config at {key}: value {error.instance!r}. An area has exactly one of "
            "`bbox: [lon_min, lat_min, lon_max, lat_max]` or `center: [lon, lat]` together with "
            "`buffer_km`, or none of these three (a field set: its box is the bounds of its "
            "`polygons` and `points`)."
        )
    if error.validator == "anyOf" and key.startswith("areas.") and key.count(".") == 1:
        return (
            f"Invalid config at {key}: value {error.instance!r}. An area needs `points` (a CSV "
            "or a list of id, lon, lat), `polygons` (a fields file with an `id` column), or both."
        )
    if error.validator == "required":
        return f"Invalid config: {error.message} (at {key}). Add it to the config file."
    return (
        f"Invalid config at {key}: value {error.instance!r} is not valid ({error.message}). "
        "See ndvicube/config/config.schema.yaml for what this key accepts."
    )

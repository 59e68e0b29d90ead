"""Spectral indices by name, from the Awesome Spectral Indices catalogue (through ``spyndex``).

A config asks for indices by their catalogue name (``NDVI``, ``EVI``, ``NDWI``, ``NBR``,
``SAVI``, ``NDREI``...). Each becomes a float32 variable of the cube and a column of the series,
named by the lower-cased catalogue name (``ndvi``, ``evi``...). The formulas are the catalogue's
own, evaluated as ``spyndex.computeIndex`` evaluates them (Python's ``eval`` of the formula on
the scaled reflectances), but compiled once per process (:func:`formula_code`): ``computeIndex``
parses spyndex's whole JSON catalogue again on every call, 7% of a cube job's time when called
per block (issue 35). Constants (EVI's ``g``, ``C1``, ``C2``, ``L``; SAVI's ``L``...) take the
catalogue's default values.

Only the assets the requested indices need are read: the catalogue's band symbols map to Earth
Search's asset keys for Sentinel-2 (:data:`SENTINEL2_ASSETS`). An index needing anything else - a
band Sentinel-2 lacks (thermal, radar), a kernel (kNDVI), a wavelength or a constant without a
default - is refused before any job runs, as is an unknown name (with the closest names).
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ndvicube.errors import ConfigError

if TYPE_CHECKING:
    import xarray as xr

#: The default (and the origin notebook's) index.
DEFAULT_INDICES: tuple[str, ...] = ("NDVI",)

#: Catalogue band symbol -> Earth Search asset key (Sentinel-2 L2A, collection 1 and old).
SENTINEL2_ASSETS: dict[str, str] = {
    "A": "coastal",  # B01, 60 m
    "B": "blue",  # B02, 10 m
    "G": "green",  # B03, 10 m
    "R": "red",  # B04, 10 m
    "RE1": "rededge1",  # B05, 20 m
    "RE2": "rededge2",  # B06, 20 m
    "RE3": "rededge3",  # B07, 20 m
    "N": "nir",  # B08, 10 m
    "N2": "nir08",  # B8A, 20 m
    "WV": "nir09",  # B09, 60 m
    "S1": "swir16",  # B11, 20 m
    "S2": "swir22",  # B12, 20 m
}

#: Earth Search asset keys in band order (B01..B12): the order reflectance assets are read in.
ASSET_ORDER: tuple[str, ...] = tuple(SENTINEL2_ASSETS[b] for b in SENTINEL2_ASSETS)


def catalogue() -> Mapping[str, Any]:
    """The catalogue's indices by name (spyndex's bundled copy: no network)."""
    import spyndex

    return spyndex.indices


def resolve_indices(names: Sequence[str], key: str = "indices") -> tuple[str, ...]:
    """The catalogue names of ``names`` (matched exactly, else case-insensitively), checked.

    Raises :class:`ConfigError` naming an unknown index and its closest catalogue names, an
    index ndvicube cannot compute from Sentinel-2 L2A and why, or two names that would share
    a column.
    """
    if not names:
        raise ConfigError(f"Invalid config at {key}: the list is empty; name at least one index.")
    known = catalogue()
    resolved = tuple(_catalogue_name(str(name), known, key) for name in names)
    for name in resolved:
        _check_computable(name, known[name], key)
    columns = [column(name) for name in resolved]
    repeated = sorted({c for c in columns if columns.count(c) > 1})
    if repeated:
        raise ConfigError(
            f"Invalid config at {key}: {list(names)} names the column(s) {repeated} more than "
            "once (columns are the lower-cased index names). List each index once."
        )
    return resolved


def _catalogue_name(name: str, known: Mapping[str, Any], key: str) -> str:
    """``name`` as the catalogue spells it; an error with close matches when there is none."""
    if name in known:
        return name
    folded = [k for k in known if k.lower() == name.lower()]
    if len(folded) == 1:
        return folded[0]
    by_lower = {k.lower(): k for k in known}
    close = difflib.get_close_matches(name.lower(), list(by_lower), n=5, cutoff=0.6)
    hint = (
        f"Did you mean {', '.join(by_lower[c] for c in close)}?"
        if close
        else "No catalogue name is close to it."
    )
    raise ConfigError(
        f"Invalid config at {key}: {name!r} is not an index of the Awesome Spectral Indices "
        f"catalogue (spyndex {_spyndex_version()}, {len(known)} indices). {hint} The full list: "
        "python -c 'import spyndex; print(list(spyndex.indices))'."
    )


def _check_computable(name: str, index: Any, key: str) -> None:
    """Refuse an index whose inputs are not all Sentinel-2 bands or defaulted constants."""
    missing = [p for p in index.bands if p not in SENTINEL2_ASSETS and _constant(p) is None]
    if missing:
        raise ConfigError(
            f"Invalid config at {key}: index {name!r} ({index.formula}) needs {missing}, which "
            "ndvicube cannot take from Sentinel-2 L2A (not one of its bands "
            f"{sorted(SENTINEL2_ASSETS)}, nor a catalogue constant with a default value). "
            "Choose another index."
        )


def _constant(symbol: str) -> float | None:
    """The catalogue's default value of a constant, or None (not a constant / no default)."""
    import spyndex

    constant = spyndex.constants.get(symbol)
    return None if constant is None else constant.default


def _spyndex_version() -> str:
    from importlib.metadata import version

    return version("spyndex")


def column(name: str) -> str:
    """The cube variable and series column of an index: its lower-cased catalogue name."""
    return name.lower()


def assets_needed(indices: Sequence[str]) -> tuple[str, ...]:
    """Reflectance assets the indices read, in band order (B01..B12); nothing else."""
    known = catalogue()
    wanted = {
        SENTINEL2_ASSETS[b] for name in indices for b in known[name].bands if b in SENTINEL2_ASSETS
    }
    return tuple(a for a in ASSET_ORDER if a in wanted)


def compute_indices(
    reflectance: Mapping[str, xr.DataArray], indices: Sequence[str]
) -> dict[str, xr.DataArray]:
    """``{column: index}`` from reflectances keyed by asset, each float32, NaN where undefined.

    The formula is evaluated lazily on (Dask-backed) arrays; a division by zero gives NaN, not
    inf, as the notebook's NDVI did.
    """
    out = {}
    for name in indices:
        value = evaluate(name, reflectance)
        value = value.where(np.isfinite(value)).astype("float32")
        out[column(name)] = value.assign_attrs(long_name=long_name(name))
    return out


def long_name(name: str) -> str:
    """``"EVI: Enhanced Vegetation Index"``: the catalogue name and its long name."""
    return f"{name}: {catalogue()[name].long_name}"


def evaluate(name: str, reflectance: Mapping[str, Any]) -> Any:
    """The catalogue's formula of ``name`` on reflectances keyed by asset, in their own type.

    Works on numbers, numpy, pandas and xarray alike: the cube calls it on numpy blocks, the
    tests and the demo's expected series on the generator's truth. The same operations in the
    same order as ``spyndex.computeIndex(name, params=...)``, so the same values to the bit.
    """
    code, symbols = formula_code(name)
    params = {
        p: reflectance[SENTINEL2_ASSETS[p]] if p in SENTINEL2_ASSETS else _constant(p)
        for p in symbols
    }
    return eval(code, {}, params)  # the catalogue's formula, as spyndex.computeIndex runs it


@functools.cache
def formula_code(name: str) -> tuple[Any, tuple[str, ...]]:
    """The catalogue formula of ``name`` compiled, and the symbols it reads: once per process
    (``spyndex.computeIndex`` reads its JSON catalogue and compiles the formula per call)."""
    index = catalogue()[name]
    return compile(index.formula, f"<index {name}>", "eval"), tuple(index.bands)

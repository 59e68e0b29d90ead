"""Archive profiles (``stac.profile``): an archive's item conventions mapped to what the cube reads.

The cube reads Earth Search's shape: asset keys ``red``, ``nir``, ``scl``...; each reflectance
asset's ``raster:bands`` scale and offset; hrefs that can be read as they are. Other archives
of the same Sentinel-2 L2A products differ:

- ``earth-search`` (the default): Earth Search v1 ``sentinel-2-c1-l2a``; items are used as found.
- ``planetary-computer``: Microsoft Planetary Computer ``sentinel-2-l2a``. Its items name
  assets by band (``B04``, ``B08``, ``SCL``), carry no ``raster:bands``, and its hrefs on Azure
  Blob Storage need a SAS token.

A profile works in two places. The search job *normalises* items (:func:`normalised`): assets
are renamed to Earth Search's keys and given the ``raster:bands`` the cube needs, so
``items.json`` and everything after it have one shape. The cube job *signs* hrefs in memory
just before reading (:func:`signed`), so no token is written to ``items.json``, the cube's
provenance or a log (URL query strings are redacted there too).

Planetary Computer's reflectance is ``DN * 0.0001 + offset`` like Earth Search's: the scale is
L2A's quantification value (10000, the same at every processing baseline), and since baseline
04.00 ESA adds ``BOA_ADD_OFFSET`` = -1000 DN, i.e. an offset of -0.1; before 04.00 the offset is
0. The baseline comes from ``s2:processing_baseline``. An item with neither that property nor a
``raster:bands`` offset is left without one, and the cube job refuses it by name (or skips it
under ``on_missing_asset: skip``): the offset is never guessed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

import pystac

from ndvicube.errors import ConfigError, SourceUnreachableError
from ndvicube.logs import redact_urls

EARTH_SEARCH, PLANETARY_COMPUTER = "earth-search", "planetary-computer"
PROFILES = (EARTH_SEARCH, PLANETARY_COMPUTER)

#: ndvicube's (Earth Search's) asset key -> Planetary Computer's.
PC_ASSET_KEYS: Mapping[str, str] = {
    "coastal": "B01",
    "blue": "B02",
    "green": "B03",
    "red": "B04",
    "rededge1": "B05",
    "rededge2": "B06",
    "rededge3": "B07",
    "nir": "B08",
    "nir08": "B8A",
    "nir09": "B09",
    "swir16": "B11",
    "swir22": "B12",
    "scl": "SCL",
}
#: L2A digital numbers per unit of reflectance (``BOA_QUANTIFICATION_VALUE``).
L2A_QUANTIFICATION = 10000
#: ``BOA_ADD_OFFSET`` in DN from processing baseline 04.00 on (0 before).
L2A_ADD_OFFSET_DN = -1000
OFFSET_SINCE_BASELINE = (4, 0)


def check_profile(profile: str) -> None:
    """Only the profiles above exist (the schema checks this too; scripts call it directly)."""
    if profile not in PROFILES:
        raise ConfigError(
            f"stac.profile is {profile!r}; use one of {', '.join(map(repr, PROFILES))}: "
            "earth-search for Earth Search v1, planetary-computer for Microsoft Planetary "
            "Computer."
        )


def normalised(items: Iterable[pystac.Item], profile: str) -> list[pystac.Item]:
    """Items in Earth Search's shape (copies); unchanged under ``earth-search``."""
    check_profile(profile)
    if profile == EARTH_SEARCH:
        return list(items)
    return [_from_planetary_computer(item) for item in items]


def _from_planetary_computer(item: pystac.Item) -> pystac.Item:
    """A copy of a Planetary Computer item with Earth Search's asset keys and raster:bands."""
    copy = item.clone()
    offset = baseline_offset(item)
    for ours, theirs in PC_ASSET_KEYS.items():
        asset = copy.assets.pop(theirs, None)
        if asset is None or ours in copy.assets:
            continue
        bands = asset.extra_fields.get("raster:bands") or [{}]
        band = {"nodata": 0} | bands[0]
        if ours == "scl":
            band.setdefault("data_type", "uint8")
        else:
            band.setdefault("data_type", "uint16")
            if "offset" not in band and offset is not None:
                band |= {"scale": band.get("scale", 1 / L2A_QUANTIFICATION), "offset": offset}
        asset.extra_fields["raster:bands"] = [band, *bands[1:]]
        copy.add_asset(ours, asset)
    return copy


def baseline_offset(item: pystac.Item) -> float | None:
    """L2A reflectance offset from ``s2:processing_baseline``: -0.1 from 04.00 on, else 0;
    None when the item does not say its baseline."""
    baseline = item.properties.get("s2:processing_baseline")
    numbers = re.fullmatch(r"\s*(\d+)\.(\d+)\s*", str(baseline)) if baseline else None
    if numbers is None:
        return None
    since = (int(numbers[1]), int(numbers[2])) >= OFFSET_SINCE_BASELINE
    return L2A_ADD_OFFSET_DN / L2A_QUANTIFICATION if since else 0.0


def signed(items: Iterable[pystac.Item], profile: str) -> list[pystac.Item]:
    """Items whose hrefs can be read: signed copies under ``planetary-computer``.

    Signing is the ``planetary-computer`` package's: it asks Planetary Computer's token
    endpoint (``PC_SDK_SAS_URL``; with ``PC_SDK_SUBSCRIPTION_KEY`` if set) for one token per
    storage container, caches it in the process, and appends it to hrefs on Azure Blob Storage
    (other hrefs are left as they are).
    """
    check_profile(profile)
    items = list(items)
    if profile == EARTH_SEARCH:
        return items
    import planetary_computer
    import requests

    try:
        return [planetary_computer.sign(item) for item in items]
    except (requests.RequestException, ValueError) as error:
        raise _no_token(error) from None


def _no_token(error: BaseException) -> Exception:
    """The one-paragraph error for a token that could not be had."""
    from planetary_computer.settings import Settings

    return SourceUnreachableError(
        f"Cannot get a Planetary Computer SAS token to read the scenes from "
        f"{Settings.get().sas_url} ({redact_urls(str(error))[:300]}). Check the network; if "
        "the endpoint refuses anonymous requests (401/403, or 429 for too many), set "
        "PC_SDK_SUBSCRIPTION_KEY to your Planetary Computer key, and run again: nothing "
        "computed so far is lost."
    )

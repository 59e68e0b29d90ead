"""Planetary Computer as the archive (``stac.profile: planetary-computer``, issue 16).

The demo catalog is rewritten in Planetary Computer's shape (``ndvicube.demo.pc``: asset keys
``B04``/``B08``/``SCL``, no ``raster:bands``, ids from the product name) with hrefs on
``http://ndvicubedemo.blob.core.windows.net/sentinel2-l2/...``, the host the
``planetary-computer`` package signs. Its items are served by the pgstac API; the COGs by a
Range server that refuses any request without the SAS token, reached as an HTTP proxy
(``http_proxy``), so requests for that host land on loopback; the token comes from a loopback
token endpoint (``PC_SDK_SAS_URL``). The cube built that way must equal, byte for byte, the one
built from the Earth-Search-shaped catalog.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ndvicube.compute import Compute
from ndvicube.cube.spec import Chunking
from ndvicube.demo.pc import planetary_computer_copy
from ndvicube.errors import ItemMetadataError
from ndvicube.jobs import build_cube
from ndvicube.search.items import band_scaling
from ndvicube.search.profiles import PC_ASSET_KEYS, normalised
from ndvicube.search.stac import read_items, write_items
from ndvicube.testing.faults import Faults
from ndvicube.testing.pgstacserver import PgstacServer
from ndvicube.testing.rangeserver import RangeHTTPServer
from ndvicube.testing.sasserver import FAKE_SAS_TOKEN, SasTokenServer
from tests.workflow_helpers import demo_config, inline_points, kept_items, snakemake, write_config

BLOB = "http://ndvicubedemo.blob.core.windows.net/sentinel2-l2"
SIGNATURE = "FAKE-SAS-SIGNATURE"


@pytest.fixture(scope="module")
def pc_catalog(catalog, tmp_path_factory):
    """The demo catalog in Planetary Computer's shape, hrefs on Azure Blob Storage."""
    return planetary_computer_copy(catalog, tmp_path_factory.mktemp("pc"), blob_url=BLOB)


# --- the profile's mapping ------------------------------------------------------------------


def test_planetary_computer_items_are_normalised_to_earth_search_keys_and_scaling(pc_catalog):
    item = read_items(pc_catalog.items)[0]
    assert "raster:bands" not in item.assets["B04"].extra_fields and "red" not in item.assets
    (out,) = normalised([item], "planetary-computer")
    assert {"red", "nir", "scl", "blue", "green", "rededge1", "swir16", "swir22"} <= set(out.assets)
    assert not {"B04", "B08", "SCL"} & set(out.assets)
    red = band_scaling(out, "red")
    assert (red.scale, red.offset, red.nodata) == (0.0001, -0.1, 0.0)  # baseline 05.10
    assert out.assets["red"].href == item.assets["B04"].href
    assert out.assets["scl"].extra_fields["raster:bands"] == [{"nodata": 0, "data_type": "uint8"}]
    assert normalised([item], "earth-search") == [item]  # today's behaviour: used as found


@pytest.mark.parametrize(("baseline", "offset"), [("03.01", 0.0), ("04.00", -0.1), ("05.11", -0.1)])
def test_the_offset_comes_from_the_processing_baseline(pc_catalog, baseline, offset):
    item = read_items(pc_catalog.items)[0]
    item.properties["s2:processing_baseline"] = baseline
    (out,) = normalised([item], "planetary-computer")
    assert band_scaling(out, "nir").offset == offset


def test_an_offset_the_item_declares_is_kept(pc_catalog):
    item = read_items(pc_catalog.items)[0]
    item.assets["B04"].extra_fields["raster:bands"] = [{"scale": 0.0002, "offset": -0.2}]
    (out,) = normalised([item], "planetary-computer")
    assert (band_scaling(out, "red").scale, band_scaling(out, "red").offset) == (0.0002, -0.2)


def test_without_baseline_or_raster_bands_the_offset_is_never_guessed(pc_catalog):
    item = read_items(pc_catalog.items)[0]
    del item.properties["s2:processing_baseline"]
    (out,) = normalised([item], "planetary-computer")
    with pytest.raises(ItemMetadataError) as error:
        band_scaling(out, "red")
    message = str(error.value)
    assert item.id in message and "s2:processing_baseline" in message and "guessing" in message


def test_earth_search_profile_on_planetary_computer_items_names_the_setting(pc_catalog):
    with pytest.raises(ItemMetadataError, match=r"stac\.profile: planetary-computer"):
        band_scaling(read_items(pc_catalog.items)[0], "red")


def test_every_mapped_key_is_a_sentinel2_band_name():
    assert PC_ASSET_KEYS["red"] == "B04" and PC_ASSET_KEYS["nir08"] == "B8A"
    assert all(re.fullmatch(r"B(0[1-9]|1[0-2]|8A)|SCL", v) for v in PC_ASSET_KEYS.values())
    assert len(set(PC_ASSET_KEYS.values())) == len(PC_ASSET_KEYS)


# --- signing, with the package's own code against a loopback token endpoint ------------------

SIGN = """
import json, sys
import pystac
from ndvicube.search.profiles import signed
items = list(pystac.ItemCollection.from_file(sys.argv[1]))
print(json.dumps([a.href for i in signed(items, sys.argv[2]) for a in i.assets.values()]))
"""


def sign_in_subprocess(items: Path, profile: str, sas_url: str) -> subprocess.CompletedProcess:
    """``profiles.signed`` in a fresh process (the package reads PC_SDK_SAS_URL once)."""
    env = os.environ | {"PC_SDK_SAS_URL": sas_url}
    return subprocess.run([sys.executable, "-c", SIGN, str(items), profile], env=env,
                          capture_output=True, text=True, check=False)  # fmt: skip


def test_hrefs_on_blob_storage_are_signed_with_one_token_per_container(pc_catalog):
    with SasTokenServer() as sas:
        result = sign_in_subprocess(pc_catalog.items, "planetary-computer", sas.url)
        assert result.returncode == 0, result.stderr
        hrefs = json.loads(result.stdout)
        assert len(hrefs) == 8 * len(read_items(pc_catalog.items))
        assert all(h.startswith(BLOB) and h.endswith(f".tif?{FAKE_SAS_TOKEN}") for h in hrefs)
        asked = [(r.account, r.container) for r in sas.requests]
        assert asked == [("ndvicubedemo", "sentinel2-l2")]
        unsigned = sign_in_subprocess(pc_catalog.items, "earth-search", sas.url)
        assert all("?" not in h for h in json.loads(unsigned.stdout))
        assert len(sas.requests) == 1  # earth-search asks for no token


def test_a_refused_token_fails_at_once_naming_the_endpoint_and_the_key(pc_catalog):
    with SasTokenServer(refuse=403) as sas:
        url = sas.url
        result = sign_in_subprocess(pc_catalog.items, "planetary-computer", url)
    assert result.returncode == 1 and len(sas.requests) == 1  # a 403 is not retried
    last = result.stderr.strip().splitlines()[-1]
    assert "Cannot get a Planetary Computer SAS token" in last and url in last
    assert "PC_SDK_SUBSCRIPTION_KEY" in last and "403" in last


# --- the workflow, end to end -----------------------------------------------------------------


@pytest.fixture(scope="module")
def pc_served(catalog, pc_catalog, tmp_path_factory):
    """Planetary Computer on loopback: the token endpoint, the private container (a Range
    server demanding the token, reached as the proxy of the blob host: the container is the
    first folder, holding hard links of the COGs) and the pgstac API."""
    account = tmp_path_factory.mktemp("account")
    shutil.copytree(catalog.root / "cogs", account / "sentinel2-l2/cogs", copy_function=os.link)
    with (
        SasTokenServer() as sas,
        RangeHTTPServer(account, sas_token=FAKE_SAS_TOKEN) as blobs,
        PgstacServer(pc_catalog.collection, pc_catalog.items) as api,
    ):
        env = {"http_proxy": blobs.url, "no_proxy": "127.0.0.1,localhost",
               "PC_SDK_SAS_URL": sas.url}  # fmt: skip
        yield {"sas": sas, "blobs": blobs, "api": api, "env": env}


@pytest.fixture(scope="module")
def earth_search_cube(catalog, tmp_path_factory):
    """The reference: the workflow's cube from the Earth-Search-shaped catalog (local files)."""
    work = tmp_path_factory.mktemp("es")
    config = demo_config(str(catalog.items), inline_points(catalog))
    result = snakemake(work, write_config(work / "c.yaml", config), "--cores", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    return work / "results/seed/ndvi.zarr"


def pc_config(url: str, catalog, reader: str) -> dict:
    """The demo config searching ``url`` under the planetary-computer profile."""
    config = demo_config(url, inline_points(catalog))
    config["stac"] |= {"collection": "sentinel-2-l2a", "profile": "planetary-computer"}
    return config | {"compute": {"reader": reader}}


def same_cube(pc_store: Path, es_store: Path, pc_to_es: dict[str, str]) -> None:
    """Every file of the two stores is byte-identical, except the root attributes, which name
    the items as each archive does (ids, hrefs) and the stac config; mapped, those are equal."""
    files = sorted(p.relative_to(pc_store) for p in pc_store.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(es_store) for p in es_store.rglob("*") if p.is_file())
    root = {Path(".zattrs"), Path(".zmetadata")}
    for name in (f for f in files if f not in root):
        assert (pc_store / name).read_bytes() == (es_store / name).read_bytes(), name
    pc, es = (json.loads((s / ".zattrs").read_text()) for s in (pc_store, es_store))
    for attrs in (pc, es):
        attrs["ndvicube:config"] = json.loads(attrs["ndvicube:config"]) | {"stac": None}
        items = json.loads(attrs["ndvicube:items"])
        for item in items:
            item["id"] = pc_to_es.get(item["id"], item["id"])
            item["hrefs"] = {k: h.split("/cogs/", 1)[1] for k, h in item["hrefs"].items()}
        attrs["ndvicube:items"] = items
        days = json.loads(attrs["ndvicube:days"])
        attrs["ndvicube:days"] = {d: sorted(pc_to_es.get(i, i) for i in v) for d, v in days.items()}
    assert pc == es


def ids_pc_to_es(catalog, pc_catalog) -> dict[str, str]:
    es = json.loads(catalog.items.read_text())["features"]
    pc = json.loads(pc_catalog.items.read_text())["features"]
    return {p["id"]: e["id"] for p, e in zip(pc, es, strict=True)}


@pytest.mark.workflow
@pytest.mark.parametrize(
    ("source", "reader"), [("pgstac", "range"), ("pgstac", "gdal"), ("static-json", "range")]
)
def test_the_planetary_computer_cube_equals_the_earth_search_cube_byte_for_byte(
    pc_served, catalog, pc_catalog, earth_search_cube, tmp_path, source, reader
):
    sas, blobs = pc_served["sas"], pc_served["blobs"]
    asked_before, blobs_before = len(sas.requests), len(blobs.requests)
    url = pc_served["api"].url if source == "pgstac" else str(pc_catalog.items)
    config = write_config(tmp_path / "c.yaml", pc_config(url, catalog, reader))
    result = snakemake(tmp_path, config, "--cores", "2", env=pc_served["env"])
    assert result.returncode == 0, result.stderr[-3000:]
    results = tmp_path / "results/seed"
    same_cube(results / "ndvi.zarr", earth_search_cube, ids_pc_to_es(catalog, pc_catalog))
    # One token for the cube job; every COG request was signed (the server refuses others).
    assert len(sas.requests) - asked_before == 1
    cog_requests = [r for r in blobs.requests[blobs_before:] if r.path.endswith(".tif")]
    assert cog_requests and {r.host for r in cog_requests} == {"ndvicubedemo.blob.core.windows.net"}
    assert all(r.query == FAKE_SAS_TOKEN and r.status in (200, 206) for r in cog_requests)
    searched = json.loads((results / "items.json").read_text())["features"]
    assert len(searched) == len(kept_items(catalog))
    # No token anywhere the run wrote: items, store metadata, logs, tables.
    for path in (p for p in results.rglob("*") if p.is_file()):
        text = path.read_text(errors="replace")
        assert SIGNATURE not in text and "sig=" not in text, path
    assert SIGNATURE not in result.stderr + result.stdout


@pytest.mark.workflow
def test_a_failing_signed_read_is_reported_without_the_token(
    pc_served, catalog, pc_catalog, tmp_path
):
    blobs = pc_served["blobs"]
    first = kept_items(catalog)[0]
    victim = f"/sentinel2-l2/cogs/{first['id']}/SCL.tif"
    config = write_config(tmp_path / "c.yaml", pc_config(pc_served["api"].url, catalog, "range"))
    blobs.faults = Faults(missing=[victim])
    try:
        result = snakemake(tmp_path, config, "--cores", "2", env=pc_served["env"])
    finally:
        blobs.faults = None
    assert result.returncode == 1
    pc_id = {v: k for k, v in ids_pc_to_es(catalog, pc_catalog).items()}[first["id"]]
    log = (tmp_path / "results/seed/logs/cube.log").read_text()
    assert f"Cannot read asset 'scl' of item '{pc_id}' ({BLOB}/cogs/{first['id']}/SCL.tif)" in log
    assert f"item '{pc_id}'" in result.stderr
    for text in (log, result.stderr, result.stdout):
        assert SIGNATURE not in text and "sig=" not in text
    assert not (tmp_path / "results/seed/ndvi.zarr").exists()


# --- SAS tokens that expire mid-job (issue 27) ------------------------------------------------

TOKEN_S = 5  # the loopback endpoint's token lifetime; Planetary Computer's: about 45 minutes
#: Per request: GDAL makes 3 to 4 requests per COG one after another, the range reader 2 at once.
LATENCY_S = {"range": 1.6, "gdal": 0.5}


@pytest.fixture(scope="module")
def expiring(catalog, pc_catalog, tmp_path_factory):
    """Six PC items normalised as the search job stores them, the cube of their Earth-Search
    twins from local files (one solar day per block: a job of many round trips), and a private
    container that takes a token only until its ``se=``."""
    from tests.fault_helpers import CUBE, items_subset

    work = tmp_path_factory.mktemp("expiring")
    es = json.loads(items_subset(catalog, work / "es.json").read_text())
    es["features"] = es["features"][:6]
    (work / "es.json").write_text(json.dumps(es))
    spec = dataclasses.replace(CUBE, cube=Chunking(time_chunk=1))
    build_cube(spec, items_path=work / "es.json", out=work / "clean.zarr")
    es_to_pc = {e: p for p, e in ids_pc_to_es(catalog, pc_catalog).items()}
    wanted = {es_to_pc[f["id"]] for f in es["features"]}
    items = normalised([i for i in read_items(pc_catalog.items) if i.id in wanted], PROFILE)
    write_items(items, work / "pc.json")
    account = work / "account"
    shutil.copytree(catalog.root / "cogs", account / "sentinel2-l2/cogs", copy_function=os.link)
    return {"spec": spec, "items": work / "pc.json", "clean": work / "clean.zarr",
            "account": account}  # fmt: skip


PROFILE = "planetary-computer"


@pytest.mark.parametrize(
    ("reader", "scheduler", "margin"),
    [("range", "threads", None), ("range", "threads", -3.0), ("gdal", "threads", None),
     ("range", "local", None)],
)  # fmt: skip
def test_tokens_are_renewed_before_they_expire_and_after_a_403(
    expiring, tmp_path, monkeypatch, reader, scheduler, margin
):
    """Tokens of 5 s, a job of more: before, every read after the first token's expiry was
    refused (403) and the job failed. Now hrefs are signed again within half the token's
    lifetime of its expiry (no 403 at all), or - with a margin of -3 s, as a clock 3 s behind
    the store's would use it - once a read is refused on an expired token; in every worker
    process under a local cluster too."""
    from ndvicube.read import remote
    from ndvicube.search import profiles
    from tests.fault_helpers import ndvi_chunks

    if margin is not None:
        monkeypatch.setattr(profiles, "TOKEN_MARGIN_S", margin)
    monkeypatch.setattr(profiles, "_TOKENS", {})
    latency = LATENCY_S[reader]
    with (
        SasTokenServer(valid_s=TOKEN_S, expiring=True) as sas,
        RangeHTTPServer(expiring["account"], sas_token=sas.accepts, latency_s=latency) as blobs,
    ):
        for name, value in {"http_proxy": blobs.url, "no_proxy": "127.0.0.1,localhost",
                            "PC_SDK_SAS_URL": sas.url}.items():  # fmt: skip
            monkeypatch.setenv(name, value)
        remote.reset()  # stores made afresh, through the proxy
        started = time.monotonic()
        build_cube(
            expiring["spec"],
            items_path=expiring["items"],
            out=tmp_path / "ndvi.zarr",
            compute=Compute(reader=reader, scheduler=scheduler, threads=2),
            profile=PROFILE,
        )
        took = time.monotonic() - started
        cogs = [r for r in blobs.requests if r.path.endswith(".tif")]
        tokens = len(sas.requests)
    remote.reset()
    assert ndvi_chunks(tmp_path / "ndvi.zarr") == ndvi_chunks(expiring["clean"])
    assert took > TOKEN_S + 1  # the job outlived its first token
    refused = [r for r in cogs if r.status == 403]
    processes = 2 if scheduler == "local" else 1  # each worker asks for its own
    renewals = took / (TOKEN_S - (TOKEN_S / 2 if margin is None else margin)) + 1
    assert 2 <= tokens <= processes * (renewals + 1) + 1, (tokens, took)
    if margin is None:
        assert not refused  # renewed before expiry: no read was refused
    else:
        assert refused  # used up to expiry; each refused read signed again and asked again
    assert {r.path for r in cogs if r.status in (200, 206)} == {r.path for r in cogs}


def test_the_token_endpoint_can_issue_tokens_that_expire():
    import requests

    with SasTokenServer(valid_s=2, expiring=True) as sas:
        first, second = (requests.get(f"{sas.url}/acct/cont", timeout=5).json() for _ in "12")
    assert first["token"] != second["token"] and "se=" in first["token"]
    assert sas.accepts(first["token"]) and not sas.accepts(FAKE_SAS_TOKEN)
    time.sleep(2.1)  # past its expiry (2 s, its whole second rounded down: 1 to 2 s)
    assert not sas.accepts(first["token"])

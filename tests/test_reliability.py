"""Reliability, second round (issue 15): what a hostile but ordinary world does to a run.

Every case runs against a real server on loopback (a server that accepts and never answers, one
that answers HTML, one that redirects), a real SIGKILL of the whole Snakemake process group or a
real full filesystem, and checks that the run ends in a bounded time with a message naming the
cause, or recovers with nothing lost and nothing to clean up by hand.
"""

from __future__ import annotations

import collections
import json
import logging
import re
import subprocess
import sys
import time

import pytest
import yaml

from ndvicube.compute import Compute
from ndvicube.config import validate_config
from ndvicube.cube.store import read_attrs
from ndvicube.errors import (
    ConfigError,
    NoScenesError,
    ReadDeadlineError,
    SourceUnreachableError,
    StorageFullError,
    UnreadableAssetError,
)
from ndvicube.jobs import build_cube
from ndvicube.read.missing import read_skipped
from ndvicube.search.http import READ_TIMEOUT_S
from ndvicube.search.stac import read_items, search, write_items
from ndvicube.testing.faultproxy import FaultProxy, Refusal
from ndvicube.testing.faults import Faults
from ndvicube.testing.rangeserver import RangeHTTPServer
from ndvicube.testing.stacserver import StacApiServer
from tests.fault_helpers import (
    CUBE,
    cog_path,
    demo_request,
    items_subset,
    ndvi_chunks,
    served_features,
)
from tests.workflow_helpers import SNAKEFILE, demo_config

# --- the STAC API: a silent server, an HTML answer -------------------------------------------


def test_a_stac_api_that_never_answers_fails_within_two_minutes_naming_it(tmp_path):
    with RangeHTTPServer(tmp_path, faults=Faults(silent=["/stac"])) as server:
        url = f"{server.url}/stac"
        started = time.monotonic()
        with pytest.raises(SourceUnreachableError) as error:
            search(demo_request(url, "2023-01-31"))
        waited = time.monotonic() - started
    # Logged once the server stops (and the held connections end): the request and one retry.
    assert [r.path for r in server.requests] == ["/stac", "/stac"]
    assert 2 * READ_TIMEOUT_S <= waited < 120
    message = str(error.value)
    assert url in message and f"no answer within {READ_TIMEOUT_S:g} s" in message


def test_a_stac_url_answered_by_an_html_page_says_so(tmp_path):
    (tmp_path / "portal.html").write_text("<html><body>Please log in to the Wi-Fi</body></html>")
    with RangeHTTPServer(tmp_path) as server:
        url = f"{server.url}/portal.html"
        with pytest.raises(SourceUnreachableError) as error:
            search(demo_request(url, "2023-01-31"))
        asked = len(server.requests)
    message = str(error.value)
    assert url in message and "answered with an HTML page (HTTP 200)" in message
    assert "captive portal" in message and "JSONDecodeError" not in message
    assert asked == 1  # an HTML page is not retried


# --- COGs behind redirects ------------------------------------------------------------------


@pytest.mark.parametrize("reader", ["range", "gdal"])
def test_redirected_cogs_give_the_same_cube_with_both_readers(catalog, clean, tmp_path, reader):
    with (
        RangeHTTPServer(catalog.root) as files,
        RangeHTTPServer(catalog.root, faults=Faults(redirect_to=files.url, only=(".tif",))) as cdn,
    ):
        items = items_subset(catalog, tmp_path / "items.json", base_url=cdn.url)
        build_cube(
            CUBE, items_path=items, out=tmp_path / "ndvi.zarr", compute=Compute(reader=reader)
        )
    assert ndvi_chunks(tmp_path / "ndvi.zarr") == ndvi_chunks(clean)
    redirected = [r for r in cdn.requests if r.path.endswith(".tif")]
    assert redirected and {r.status for r in redirected} == {302}
    assert {r.status for r in files.requests} <= {200, 206}


@pytest.mark.parametrize(
    "reader, words",
    [("range", "too many redirects (more than 10"), ("gdal", "Maximum (10) redirects followed")],
)
def test_a_redirect_loop_fails_at_once_naming_the_file(catalog, tmp_path, reader, words):
    with RangeHTTPServer(catalog.root) as loop:
        loop.faults = Faults(redirect_to=loop.url, only=(".tif",))  # every COG to itself
        items = items_subset(catalog, tmp_path / "items.json", base_url=loop.url)
        started = time.monotonic()
        with pytest.raises(UnreadableAssetError) as error:
            build_cube(
                CUBE, items_path=items, out=tmp_path / "ndvi.zarr", compute=Compute(reader=reader)
            )
        waited = time.monotonic() - started
    assert words in str(error.value) and "/cogs/" in str(error.value)
    assert "retry" not in str(error.value) and waited < 20  # not retried


def test_credentials_are_not_forwarded_to_the_host_a_redirect_names(catalog, tmp_path, monkeypatch):
    """GDAL sends the user's header to the archive's host, never to the host it redirects to."""
    monkeypatch.setenv("GDAL_HTTP_HEADERS", "Authorization: Bearer SECRET-4242")
    with (
        RangeHTTPServer(catalog.root) as files,
        RangeHTTPServer(catalog.root, faults=Faults(redirect_to=files.url.replace(
            "127.0.0.1", "localhost"), only=(".tif",))) as cdn,
    ):  # fmt: skip
        items = items_subset(catalog, tmp_path / "items.json", base_url=cdn.url)
        build_cube(
            CUBE, items_path=items, out=tmp_path / "ndvi.zarr", compute=Compute(reader="gdal")
        )
    sent = {dict(r.headers).get("authorization") for r in cdn.requests if r.path.endswith(".tif")}
    assert sent == {"Bearer SECRET-4242"}
    assert files.requests and all("authorization" not in dict(r.headers) for r in files.requests)


# --- a COG that never answers: per-COG and per-job deadlines ---------------------------------


@pytest.mark.parametrize("reader, deadline", [("range", 3), ("gdal", 8)])
def test_a_cog_that_never_answers_fails_at_its_deadline_naming_it(
    catalog, tmp_path, reader, deadline
):
    """GDAL's requests get a share of the deadline each (8 s: 2 s, 1 retry after 0.5 s)."""
    with RangeHTTPServer(catalog.root) as probe:
        victim = served_features(catalog, tmp_path, probe.url)[2]
    stalled = cog_path(victim, "nir")
    with RangeHTTPServer(catalog.root, faults=Faults(silent=[stalled])) as server:
        items = items_subset(catalog, tmp_path / "items.json", base_url=server.url)
        started = time.monotonic()
        with pytest.raises(UnreadableAssetError) as error:
            compute = Compute(reader=reader, read_deadline_s=deadline)
            build_cube(CUBE, items_path=items, out=tmp_path / "ndvi.zarr", compute=compute)
        waited = time.monotonic() - started
    message = str(error.value)
    assert f"asset 'nir' of item '{victim['id']}'" in message and stalled in message
    assert f"read deadline of {deadline} s" in message and "FAKE-TOKEN" not in message
    assert waited < deadline + 15  # the deadline, and the rest of the build; not minutes
    assert not (tmp_path / "ndvi.zarr").exists()


def test_the_jobs_read_deadline_ends_stalled_reads_naming_a_file(catalog, tmp_path, monkeypatch):
    """Every COG answers within its own deadline, but the job as a whole is far too slow."""
    from ndvicube.read import retries

    monkeypatch.setattr(retries, "JOB_SECONDS_PER_COG", 0.0)  # the job's deadline: 2 s
    with RangeHTTPServer(catalog.root, latency_s=0.3) as slow:
        items = items_subset(catalog, tmp_path / "items.json", base_url=slow.url)
        started = time.monotonic()
        with pytest.raises(ReadDeadlineError) as error:
            compute = Compute(reader="gdal", read_deadline_s=2, io_threads=2)
            build_cube(CUBE, items_path=items, out=tmp_path / "ndvi.zarr", compute=compute)
        waited = time.monotonic() - started
    message = str(error.value)
    assert "reads stalled" in message and "/cogs/" in message and ".tif" in message
    assert "job's read deadline passed (2 s" in message and "FAKE-TOKEN" not in message
    assert waited < 2 + 15
    assert not (tmp_path / "ndvi.zarr").exists()


# --- on_missing_asset: skip costs one pass --------------------------------------------------


def test_skip_collects_every_unreadable_scene_in_one_build(catalog, tmp_path, caplog):
    with RangeHTTPServer(catalog.root) as probe:
        features = served_features(catalog, tmp_path, probe.url)
    victims = {features[1]["id"]: "red", features[5]["id"]: "nir", features[9]["id"]: "scl"}
    paths = [cog_path(f, victims[f["id"]]) for f in features if f["id"] in victims]
    faults = Faults(missing=paths[:2], silent=paths[2:])
    with RangeHTTPServer(catalog.root, faults=faults) as server:
        items = items_subset(catalog, tmp_path / "items.json", base_url=server.url)
        with caplog.at_level(logging.INFO):
            build_cube(
                CUBE,
                items_path=items,
                out=tmp_path / "ndvi.zarr",
                compute=Compute(read_deadline_s=3),
                on_missing_asset="skip",
                skipped_out=tmp_path / "skipped.csv",
            )
        reads = collections.Counter(r.path for r in server.requests if r.path.endswith(".tif"))
    skipped = {(r.item_id, r.asset) for r in read_skipped(tmp_path / "skipped.csv")}
    assert skipped == set(victims.items())
    # One pass over every scene, then one over the days of the skipped ones, without them.
    passes = [r.getMessage() for r in caplog.records if r.getMessage().startswith("cube: ")]
    assert len(passes) == 2 and "0 day(s) copied" in passes[0]
    by_id = {f["id"]: f for f in features}
    days = {by_id[v]["properties"]["datetime"][:10] for v in victims}
    again = [f for f in features if f["properties"]["datetime"][:10] in days]
    for feature in features:
        if feature["id"] in victims:
            continue
        times = 2 if feature in again else 1  # 2 requests (header, tiles) per read of a COG
        assert reads[cog_path(feature, "red")] == 2 * times, feature["id"]
    # The cube is exactly the one built from the other items.
    doc = json.loads(items_subset(catalog, tmp_path / "without.json").read_text())
    doc["features"] = [f for f in doc["features"] if f["id"] not in victims]
    (tmp_path / "without.json").write_text(json.dumps(doc))
    build_cube(CUBE, items_path=tmp_path / "without.json", out=tmp_path / "expected.zarr")
    assert ndvi_chunks(tmp_path / "ndvi.zarr") == ndvi_chunks(tmp_path / "expected.zarr")
    days_attr = read_attrs(tmp_path / "ndvi.zarr")["ndvicube:days"]
    assert days_attr == read_attrs(tmp_path / "expected.zarr")["ndvicube:days"]


def test_skip_with_every_scene_unreadable_names_the_area_and_the_failures(catalog, tmp_path):
    with RangeHTTPServer(catalog.root) as probe:
        features = served_features(catalog, tmp_path, probe.url)
    faults = Faults(missing=[cog_path(f, "red") for f in features])
    with RangeHTTPServer(catalog.root, faults=faults) as server:
        items = items_subset(catalog, tmp_path / "items.json", base_url=server.url)
        with pytest.raises(NoScenesError) as error:
            build_cube(
                CUBE,
                items_path=items,
                out=tmp_path / "ndvi.zarr",
                on_missing_asset="skip",
                area="seed",
            )
    message = str(error.value)
    assert f"No scene of area 'seed' could be used: all {len(features)} were left out" in message
    first = min(f["id"] for f in features)  # listed in the order of their URLs
    assert f"First reasons: {first} red: HTTP response code: 404" in message
    assert "FAKE-TOKEN" not in message
    assert not (tmp_path / "ndvi.zarr").exists()


# --- inputs users really have -----------------------------------------------------------------


def demo_with_points(points) -> dict:
    """The demo config with ``points`` (a CSV path or inline points) for its area."""
    config = demo_config("items.json", [{"id": "p", "lon": 82.608, "lat": 27.163}])
    config["areas"]["seed"]["points"] = points
    return config


def test_a_points_csv_saved_by_excel_as_csv_utf8_is_read(tmp_path):
    # Excel's "CSV UTF-8" starts with a byte-order mark; the ids keep their accents.
    (tmp_path / "pts.csv").write_bytes("\ufeffid,lon,lat\nchamp-é,82.608,27.163\n".encode())
    settings = validate_config(demo_with_points("pts.csv"), base_dir=tmp_path)
    assert [(p.id, p.lon, p.lat) for p in settings.areas["seed"].points] == [
        ("champ-é", 82.608, 27.163)
    ]


def test_a_latin1_points_csv_is_refused_naming_the_file_and_the_fix(tmp_path):
    (tmp_path / "pts.csv").write_bytes("id,lon,lat\nchamp-é,82.608,27.163\n".encode("latin-1"))
    with pytest.raises(ConfigError) as error:
        validate_config(demo_with_points("pts.csv"), base_dir=tmp_path)
    message = str(error.value)
    assert "pts.csv" in message and "not UTF-8" in message and "b'\\xe9'" in message
    assert "CSV UTF-8" in message and "iconv" in message


@pytest.mark.parametrize("pid", [".", "..", "_hidden", "a/b"])
def test_one_rule_for_point_ids_inline_and_in_csv(tmp_path, pid):
    with pytest.raises(ConfigError) as inline:
        validate_config(demo_with_points([{"id": pid, "lon": 82.608, "lat": 27.163}]))
    (tmp_path / "pts.csv").write_text(f"id,lon,lat\n{pid},82.608,27.163\n")
    with pytest.raises(ConfigError) as from_csv:
        validate_config(demo_with_points("pts.csv"), base_dir=tmp_path)
    rule = "must start with a letter or digit and use only letters, digits, '_', '.', '-'"
    assert f"point id {pid!r} {rule}" in str(inline.value) and "areas.seed.points" in str(
        inline.value
    )
    assert f"point id {pid!r} {rule}" in str(from_csv.value) and "line 2" in str(from_csv.value)
    assert "bbox" not in str(inline.value)  # not the area-level message of before


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("seed\n", "has '\\n' at position 4"),  # passed the schema's pattern ('$' before a \n)
        ("a b", "has ' ' at position 1"),
        ("_x", "has '_' at position 0"),
        (2023, "is not text (YAML read the unquoted key as int): quote it"),
    ],
)
def test_an_area_name_that_cannot_be_a_folder_is_named_with_the_rule(name, why):
    config = demo_config("items.json", [{"id": "p", "lon": 82.608, "lat": 27.163}])
    config["areas"] = {name: config["areas"]["seed"]}
    with pytest.raises(ConfigError) as error:
        validate_config(config)
    assert str(error.value) == (
        f"Invalid config at areas: area name {name!r} {why}. An area name must start with a "
        "letter or digit and use only letters, digits, '_' and '-' (ASCII; it becomes the folder "
        "results/<name>/ and a Snakemake wildcard). Rename the area."
    )


def test_an_impossible_unquoted_date_is_named_with_its_key(tmp_path):
    config = yaml.safe_dump(demo_config("items.json", [{"id": "p", "lon": 82.608, "lat": 27.163}]))
    (tmp_path / "config.yaml").write_text(
        "\n".join(
            "end: 2023-02-30" if line.startswith("end:") else line for line in config.splitlines()
        )
    )
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE), "--directory", str(tmp_path),
         "--dry-run"], cwd="/", capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode != 0
    said = result.stdout + result.stderr
    line = 1 + config.splitlines().index(
        next(x for x in config.splitlines() if x.startswith("end:"))
    )
    assert (
        f"Invalid config in config.yaml, line {line}: end: 2023-02-30 is not a date that exists "
        '(day is out of range for month). Write a real date, in quotes: end: "YYYY-MM-DD".'
    ) in said
    assert len(said.splitlines()) < 10  # not a 62-line traceback


def _dry_run(workdir, *args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE), "--directory", str(workdir),
         "--dry-run", *args], cwd="/", capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_a_yte_template_in_config_yaml_is_refused_before_its_code_runs(tmp_path):
    """The docs say the config is data: Snakemake's loader runs a YTE template's Python (a
    marker file appeared); ndvicube reads config.yaml first and refuses it."""
    config = yaml.safe_dump(demo_config("items.json", [{"id": "p", "lon": 82.608, "lat": 27.163}]))
    marker = tmp_path / "ran"
    template = f"__use_yte__: true\n__definitions__:\n  - open({str(marker)!r}, 'w').close()\n"
    (tmp_path / "config.yaml").write_text(template + config)
    result = _dry_run(tmp_path)
    said = result.stdout + result.stderr
    assert result.returncode != 0 and not marker.exists()
    assert (
        "Invalid config in config.yaml: it sets __use_yte__: true, which makes Snakemake's "
        "loader treat it as a YTE template and run its expressions as Python. The config is "
        "data, never code: ndvicube refuses templated config files. Remove __use_yte__"
    ) in said
    # A --configfile is Snakemake's to load, before any workflow code (docs/reliability.md):
    # its code has run once; the run is refused before any job would run it again.
    (tmp_path / "config.yaml").write_text(config)
    (tmp_path / "mine.yaml").write_text(template + config)
    result = _dry_run(tmp_path, "--configfile", str(tmp_path / "mine.yaml"))
    assert result.returncode != 0 and marker.exists()
    assert f"Invalid config in {tmp_path / 'mine.yaml'}: it sets __use_yte__: true" in (
        result.stdout + result.stderr
    )
    assert "Building DAG" not in result.stdout + result.stderr


def test_a_python_tag_in_config_yaml_is_named_with_its_line(tmp_path):
    config = yaml.safe_dump(demo_config("items.json", [{"id": "p", "lon": 82.608, "lat": 27.163}]))
    tagged = config.replace("max_cloud_cover: 30", "max_cloud_cover: !!python/object:int {}")
    (tmp_path / "config.yaml").write_text(tagged)
    result = _dry_run(tmp_path)
    line = 1 + next(i for i, x in enumerate(tagged.splitlines()) if "!!python" in x)
    assert result.returncode != 0
    assert (
        f"Invalid config in config.yaml, line {line} (max_cloud_cover: ...): the tag "
        "!!python/object:int constructs a Python object, and YAML tags that construct Python "
        "objects are refused: the config is data, never code. Remove the tag and write the "
        "value itself"
    ) in result.stdout + result.stderr
    assert "tab indentation" not in result.stdout + result.stderr  # Snakemake's message before


@pytest.mark.parametrize(
    ("value", "said"),
    [
        ("!!python/name:os.system", "the tag !!python/name:os.system constructs a Python object"),
        ("!!python/tuple [1, 2]", "the tag !!python/tuple constructs a Python object"),
        ("!vault secret", "the tag !vault is not a YAML type ndvicube reads"),
    ],
)
def test_tags_snakemake_would_construct_are_refused(tmp_path, value, said):
    """PyYAML's FullLoader (Snakemake's, through YTE) builds os.system and tuples from these."""
    from ndvicube.config import check_config_file

    (tmp_path / "c.yaml").write_text(f"start: '2023-01-01'\nstac:\n  url: {value}\n")
    with pytest.raises(ConfigError, match="line 3 \\(url: ...\\): " + re.escape(said)):
        check_config_file(tmp_path / "c.yaml")


def test_the_published_cube_as_a_target_names_the_target_to_ask_for(tmp_path):
    """`results/{area}/ndvi.zarr` was the cube rule's output; it is now a link no job makes."""
    config = demo_config("items.json", [{"id": "p", "lon": 82.608, "lat": 27.163}])
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    result = _dry_run(tmp_path, "results/seed/ndvi.zarr")
    said = result.stdout + result.stderr
    assert result.returncode != 0 and "MissingRuleException" not in said
    assert (
        "results/seed/ndvi.zarr is not a target: it is the link the cube job publishes for "
        "readers (no job's output, so Snakemake never deletes it while a job runs). Ask for the "
        "cube itself: snakemake results/seed/cube/workflow.zarr (or plain snakemake for "
        "everything); that job updates results/seed/ndvi.zarr when it is done."
    ) in " ".join(said.split())
    assert not (tmp_path / "results").exists()


def test_the_published_composites_as_a_target_name_the_target_to_ask_for(tmp_path):
    """`results/{area}/composites.zarr` was the composites rule's output; now a link no job
    makes (published as versions, like the cube)."""
    config = demo_config("items.json", [{"id": "p", "lon": 82.608, "lat": 27.163}])
    config["composites"] = {"period": "1MS", "statistic": "median", "indices": ["NDVI"]}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    result = _dry_run(tmp_path, "results/seed/composites.zarr")
    said = " ".join((result.stdout + result.stderr).split())
    assert result.returncode != 0 and "MissingRuleException" not in said
    assert (
        "results/seed/composites.zarr is not a target: it is the link the composites job "
        "publishes for readers (no job's output, so Snakemake never deletes it while a job "
        "runs). Ask for the composites themselves: snakemake "
        "results/seed/composites.versions/workflow.zarr (or plain snakemake for everything); "
        "that job updates results/seed/composites.zarr when it is done."
    ) in said
    assert not (tmp_path / "results").exists()


def test_a_full_disk_while_storing_search_results_leaves_nothing_half_written(catalog, tiny_disk):
    items = read_items(catalog.items) * 2  # twice half a year: 2 MB of JSON on a 1 MB disk
    with pytest.raises(StorageFullError, match=r"No space left .* while writing the search"):
        write_items(items, tiny_disk / "items.json")
    assert list(tiny_disk.iterdir()) == []  # no items.json, no items.json.partial


def test_a_static_catalog_whose_child_never_answers_fails_in_bounded_time(tmp_path, monkeypatch):
    """pystac reads a static catalog's links with ``urlopen`` and no timeout; ndvicube's own
    reader has the STAC timeouts (shortened here to 2 s)."""
    from ndvicube.search import http

    monkeypatch.setattr(http, "READ_TIMEOUT_S", 2.0)
    catalog = {"type": "Catalog", "id": "c", "stac_version": "1.0.0", "description": "d",
               "links": [{"rel": "item", "href": "./stalled/item.json"}]}  # fmt: skip
    (tmp_path / "catalog.json").write_text(json.dumps(catalog))
    with RangeHTTPServer(tmp_path, faults=Faults(silent=["/stalled/item.json"])) as server:
        started = time.monotonic()
        with pytest.raises(SourceUnreachableError) as error:
            search(demo_request(f"{server.url}/catalog.json", "2023-01-31"))
        waited = time.monotonic() - started
    assert waited < 10 and "/stalled/item.json" in str(error.value)
    assert "sent no answer within 2 s, 2 times" in str(error.value)


# --- issue 27: messages say what happened ---------------------------------------------------


@pytest.mark.parametrize(
    ("refusal", "said"),
    [
        # A later page's paging token refused: the search starts, then page 2 is refused.
        (
            Refusal("skip"),
            'refused the request (HTTP 400 Bad Request to POST {url}/search), saying: "invalid '
            'token". This is the answer of the server, not a network fault, so it was not asked '
            "again. Check stac.url, stac.collection",
        ),
        # The whole API refused, its reason in "message": no access, not no network.
        (
            Refusal("/", status=403, body=b'{"message": "token expired"}'),
            'refused the request (HTTP 403 Forbidden to GET {url}/), saying: "token expired". '
            "This is the answer of the server, not a network fault, so it was not asked again. "
            "It wants credentials or a valid token",
        ),
    ],
)
def test_a_stac_servers_refusal_quotes_its_reason_and_does_not_blame_the_network(
    catalog, refusal, said
):
    with (
        StacApiServer(catalog.collection, catalog.items) as api,
        FaultProxy(api.url, Faults(), refusal=refusal) as proxy,
    ):
        url = proxy.url
        with pytest.raises(SourceUnreachableError) as error:
            search(demo_request(url, "2023-01-31", page_size=4))  # 13 items: 4 pages
        answers = [r.status for r in proxy.records]
    message = str(error.value)
    assert f"The STAC source {url} " + said.format(url=url) in message
    assert "Cannot reach" not in message and "check the network" not in message.lower()
    assert answers.count(refusal.status) == 1  # not asked again
    assert answers[-1] == refusal.status and set(answers[:-1]) <= {200}


def test_items_repeated_across_pages_are_counted_as_duplicates(catalog, tmp_path, caplog):
    """Every item listed twice by the API (rustac serves a file loaded twice twice), plus one
    genuine older processing of a scene: each drop is logged as what it is."""
    doc = json.loads(catalog.items.read_text())
    doc["features"] = [f for f in doc["features"] if f["properties"]["datetime"] < "2023-02"]
    kept = [f["id"] for f in doc["features"] if f["properties"]["eo:cloud_cover"] < 30]
    older = json.loads(json.dumps(next(f for f in doc["features"] if f["id"] == kept[0])))
    older["id"] = older["id"].replace("_L2A", "_OLD_L2A")
    older["properties"]["s2:processing_baseline"] = "02.14"
    doc["features"].append(older)
    (tmp_path / "items.json").write_text(json.dumps(doc))
    with (
        StacApiServer(catalog.collection, tmp_path / "items.json", tmp_path / "items.json") as api,
        caplog.at_level(logging.INFO, logger="ndvicube.search.stac"),
    ):
        found = search(demo_request(api.url, "2023-01-31", page_size=4))
    logged = [r.getMessage() for r in caplog.records]
    assert sorted(i.id for i in found) == sorted(kept) and len(kept) == 9
    repeats = [m for m in logged if "repeated across pages" in m]
    listed = sorted([*kept, older["id"]])
    assert repeats == [f"10 item(s) repeated across pages were dropped as duplicates: {listed}"]
    older_processings = [m for m in logged if "older processing" in m]
    assert older_processings == [
        f"dropped 1 older processing(s) of reprocessed scenes: ['{older['id']}']"
    ]

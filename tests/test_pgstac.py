"""The search path users take, through a production STAC API: stac-fastapi-pgstac (issue 16).

pgstac implements what ``rustac serve`` does not: the Query extension, CQL2 ``filter``,
``sortby``, ``fields`` and token pagination. So here the main job's search takes the branch it
takes against Earth Search: the cloud filter is sent to the server and applied there. A
recording proxy in front of the API (``FaultProxy`` without faults) shows what the server
answered.
"""

from __future__ import annotations

import dataclasses
import json
import logging

import numpy as np
import pandas as pd
import pytest
from pystac_client import Client
from pystac_client.conformance import ConformanceClasses

from ndvicube.demo import rewrite_hrefs
from ndvicube.search.stac import search
from ndvicube.testing.faultproxy import FaultProxy
from ndvicube.testing.faults import Faults
from ndvicube.testing.pgstacserver import PgstacServer
from ndvicube.testing.rangeserver import RangeHTTPServer
from ndvicube.testing.stacserver import StacApiServer
from tests.fault_helpers import demo_request
from tests.workflow_helpers import (
    END,
    POINTS,
    demo_config,
    inline_points,
    kept_items,
    snakemake,
    truth_on_cube_days,
    write_config,
)


@pytest.fixture(scope="module")
def served(catalog, tmp_path_factory):
    """The catalog's COGs on a Range server; its items behind pgstac and behind rustac."""
    work = tmp_path_factory.mktemp("pgstac")
    with RangeHTTPServer(catalog.root) as cogs:
        items = rewrite_hrefs(catalog.items, work / "items_http.json", cogs.url, catalog.root)
        with (
            PgstacServer(catalog.collection, items) as pgstac,
            StacApiServer(catalog.collection, items) as rustac,
        ):
            yield {"pgstac": pgstac, "rustac": rustac, "items": items, "work": work}


def searched(url: str, page_size: int = 100) -> tuple[list, list]:
    """The items ndvicube's search finds at ``url`` (through a recording proxy), and what the
    proxy saw."""
    with FaultProxy(url, Faults()) as proxy:
        items = search(dataclasses.replace(demo_request(proxy.url, END), page_size=page_size))
        return items, proxy.records


def test_pgstac_conforms_to_query_filter_sort_and_fields(served):
    client = Client.open(served["pgstac"].url)
    for conformance in ("QUERY", "FILTER", "FIELDS"):
        assert client.conforms_to(getattr(ConformanceClasses, conformance)), conformance
    # Sort as of STAC API 1.1 ("v1.1.0/item-search#sort"), which pystac-client 0.9's
    # SORT pattern (v1.0.*) does not match.
    assert any(c.endswith("/item-search#sort") for c in client.get_conforms_to())
    assert not Client.open(served["rustac"].url).conforms_to(ConformanceClasses.QUERY)


def test_the_server_applies_the_cloud_filter(served, catalog, caplog):
    with caplog.at_level(logging.INFO):
        items, records = searched(served["pgstac"].url)
    assert "does not conform to the STAC Query extension" not in caplog.text
    searches = [r for r in records if r.path.startswith("/search")]
    sent = json.loads(searches[0].body)
    assert sent["query"] == {"eo:cloud_cover": {"lt": 30}}
    answered = sum(r.features for r in searches)
    assert [i.id for i in items] == [f["id"] for f in kept_items(catalog)]
    assert answered == len(items)  # the server sent only what passes the filter
    _, fallback = searched(served["rustac"].url)
    all_items = len(json.loads(catalog.items.read_text())["features"])
    assert sum(r.features for r in fallback if r.path.startswith("/search")) == all_items
    assert answered < all_items


def test_small_pages_return_every_item_once_by_token(served, catalog):
    items, records = searched(served["pgstac"].url, page_size=4)
    searches = [r for r in records if r.path.startswith("/search")]
    ids = [i.id for i in items]
    assert ids == [f["id"] for f in kept_items(catalog)] and len(set(ids)) == len(ids)
    assert len(searches) >= len(ids) // 4 and all(r.features <= 4 for r in searches)
    assert all("token" in json.loads(r.body) for r in searches[1:])  # pgstac's next links


def test_the_same_items_as_through_rustac_and_the_static_json(served):
    def essence(items) -> list:
        """What the cube reads of each item. pgstac writes ``datetime`` with microseconds
        ("05:11:48.612000Z" for "05:11:48.612Z"), so the instant is compared, not the text."""
        return [(i.id, i.datetime, {k: v for k, v in i.properties.items() if k != "datetime"},
                 {k: a.to_dict() for k, a in i.assets.items()}) for i in items]  # fmt: skip

    pgstac, _ = searched(served["pgstac"].url)
    rustac, _ = searched(served["rustac"].url)
    static = search(demo_request(str(served["items"]), END))
    assert essence(pgstac) == essence(rustac) == essence(static)


@pytest.mark.workflow
def test_the_workflow_through_pgstac_gives_the_true_series(served, catalog, tmp_path):
    config = demo_config(served["pgstac"].url, inline_points(catalog))
    result = snakemake(tmp_path, write_config(tmp_path / "c.yaml", config), "--cores", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    log = (tmp_path / "results/seed/logs/search.log").read_text()
    assert "does not conform" not in log
    raw = pd.read_csv(tmp_path / "results/seed/series_raw.csv", parse_dates=["time"])
    want = truth_on_cube_days(catalog, sorted(raw["time"].unique()))
    merged = raw.merge(want, on=["point", "time"], suffixes=("", "_truth"), validate="1:1")
    assert len(merged) == len(raw) == len(POINTS) * raw["time"].nunique()
    np.testing.assert_array_equal(merged["ndvi"].isna(), merged["ndvi_truth"].isna())
    np.testing.assert_allclose(merged["ndvi"], merged["ndvi_truth"], atol=1e-5, equal_nan=True)

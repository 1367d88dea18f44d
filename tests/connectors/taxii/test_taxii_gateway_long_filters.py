"""The gateway's TAXII endpoint under long `match[...]` filters (hostile or careless query strings).

match[version] became one SQL clause per value, OR-ed: past 1,000 values SQLite refused the expression ("Expression
tree is too large (maximum depth 1000)") and the request was a 500 Internal Server Error (a 33 KB query string
does it). The kinds are one clause each now, the timestamps one IN list, and every filter's values are taken once.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import requests
from strategies import event_dicts

from wia_security.connectors.gateway import GatewaySettings
from wia_security.connectors.gateway.server import GatewayServer
from wia_security.connectors.gateway.taxii_server import COLLECTION_ID, MEDIA_TAXII

TOKEN = "taxii-filters-token-0123456789"
TAXII = {"Authorization": f"Bearer {TOKEN}", "Accept": MEDIA_TAXII}


@pytest.fixture(scope="module")
def objects_url(tmp_path_factory):
    folder = tmp_path_factory.mktemp("filters")
    server = GatewayServer(GatewaySettings(tokens=[TOKEN], store=f"sqlite:///{folder}/events.db",
                                           dead_letter=str(folder / "dead.ndjson"))).start()
    r = requests.post(server.url + "/v1/events", json=event_dicts(3, seed=1258, event_type="threat_intel"),
                      headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200, r.text
    yield f"{server.url}/taxii2/wia/collections/{COLLECTION_ID}/objects/"
    server.stop()


def get(url: str, **params: str) -> requests.Response:
    r = requests.get(url, headers=TAXII, params={"limit": "1000", **params})
    assert r.status_code == 200, (r.status_code, r.text[:200])
    return r


def test_a_thousand_timestamps_in_match_version_are_answered(objects_url):
    everything = get(objects_url).json()["objects"]
    target = everything[-1]
    start = datetime(2020, 1, 1, tzinfo=timezone.utc)
    others = [(start + timedelta(microseconds=n)).strftime("%Y-%m-%dT%H:%M:%S.%fZ") for n in range(1100)]
    r = get(objects_url, **{"match[version]": ",".join([*others, target["modified"]]), "match[id]": target["id"]})
    assert r.json()["objects"] == [target]                     # before: 500 Internal Server Error


def test_a_kind_repeated_a_thousand_times_is_that_kind(objects_url):
    first = get(objects_url, **{"match[version]": "first"}).json()
    assert get(objects_url, **{"match[version]": ",".join(["first"] * 1500)}).json() == first
    assert get(objects_url, **{"match[version]": ",".join(["last", "first"] * 800)}).json()["objects"]
    assert get(objects_url, **{"match[type]": ",".join(["indicator"] * 3000)}).json() == \
        get(objects_url, **{"match[type]": "indicator"}).json()

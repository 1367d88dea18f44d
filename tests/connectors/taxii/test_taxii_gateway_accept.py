"""The gateway's TAXII endpoint reads the Accept header as RFC 9110 says (section 12.5.1; TAXII 2.1 section 1.6.8).

It compared the text: `application/taxii+json;q=0.5` (the media type without its optional version, the latest the
server has, with a weight) and `version="2.1"` (a quoted value is the same value) were answered 406, while
`application/taxii+json;version=2.1;q=0` (q=0: not acceptable) was served.
"""
from __future__ import annotations

import pytest
import requests
from strategies import event_dicts

from wia_security.connectors.gateway import GatewaySettings
from wia_security.connectors.gateway.server import GatewayServer
from wia_security.connectors.gateway.taxii_server import COLLECTION_ID, MEDIA_TAXII

TOKEN = "taxii-accept-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def objects_url(tmp_path_factory):
    folder = tmp_path_factory.mktemp("accept")
    server = GatewayServer(GatewaySettings(tokens=[TOKEN], store=f"sqlite:///{folder}/events.db",
                                           dead_letter=str(folder / "dead.ndjson"))).start()
    r = requests.post(server.url + "/v1/events", json=event_dicts(2, seed=1256, event_type="threat_intel"),
                      headers=AUTH)
    assert r.status_code == 200, r.text
    yield f"{server.url}/taxii2/wia/collections/{COLLECTION_ID}/objects/"
    server.stop()


@pytest.mark.parametrize("accept", [
    MEDIA_TAXII,
    "application/taxii+json",
    "application/taxii+json;q=0.5",
    'application/taxii+json;version="2.1"',
    "Application/TAXII+JSON; Version=2.1",
    "text/html, application/taxii+json;version=2.1;q=0.9",
    "application/taxii+json;version=2.1;charset=utf-8",
    "*/*;q=0.1",
])
def test_an_accept_taking_taxii_2_1_is_served(objects_url, accept):
    r = requests.get(objects_url, headers={**AUTH, "Accept": accept})
    assert r.status_code == 200 and r.headers["Content-Type"] == MEDIA_TAXII and r.json()["objects"]


@pytest.mark.parametrize("accept", [
    "application/json",
    "application/taxii+json;version=2.0",
    "application/taxii+json;version=2.1;q=0",
    "application/taxii+json;version=2.1;q=0.000",
    "application/*;q=0",
    "application/taxii+json;version=2.1;q=high",
])
def test_an_accept_refusing_taxii_2_1_is_406_with_a_taxii_error(objects_url, accept):
    r = requests.get(objects_url, headers={**AUTH, "Accept": accept})
    assert r.status_code == 406 and r.json() == {"title": "Not Acceptable", "http_status": "406",
                                                 "description": f"this server answers {MEDIA_TAXII}"}

"""The gateway's TAXII 2.1 endpoint, driven by taxii2-client (through TaxiiClient/TaxiiSource) on a running gateway."""
from __future__ import annotations

import copy
import time

import pytest
import requests
from strategies import event_dicts

from wia_security import convert
from wia_security.connectors.dead_letter import DeadLetterFile
from wia_security.connectors.gateway import GatewaySettings
from wia_security.connectors.gateway.server import GatewayServer
from wia_security.connectors.gateway.taxii_server import COLLECTION_ID, MEDIA_TAXII
from wia_security.connectors.sqlite import SqliteSink
from wia_security.connectors.taxii import TaxiiClient, TaxiiPagingError, TaxiiSource
from wia_security.pipeline import normalize

TOKEN = "taxii-test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def gateway(tmp_path):
    server = GatewayServer(GatewaySettings(tokens=[TOKEN], store=f"sqlite:///{tmp_path}/events.db",
                                           dead_letter=str(tmp_path / "dead.ndjson"))).start()
    yield server
    server.stop()


def post(gw, events) -> None:
    r = requests.post(gw.url + "/v1/events", json=events, headers=AUTH)
    assert r.status_code == 200, r.text


def stix_ids(events) -> set[str]:
    return {o["id"] for e in events for o in convert(e, to="stix")["objects"]}


def collection_url(gw) -> str:
    return f"{gw.url}/taxii2/wia/collections/{COLLECTION_ID}/"


def test_discovery_api_root_collection_and_objects(gateway):
    intel = event_dicts(20, seed=40, event_type="threat_intel")
    alerts = event_dicts(5, seed=41, event_type="alert")
    post(gateway, intel + alerts)
    client = TaxiiClient(gateway.url + "/taxii2/", token=TOKEN)
    info = client.discover()
    root = f"{gateway.url}/taxii2/wia/"
    assert info["api_roots"] == [root] and info["default"] == root
    [collection] = client.collections(root)
    assert collection["id"] == COLLECTION_ID and collection["can_read"] and not collection["can_write"]
    with client.api_root(root) as api_root:
        assert api_root.versions == [MEDIA_TAXII] and api_root.max_content_length > 0
    coll = client.collection(collection_url(gateway))
    served = {o["id"] for o in client.objects(coll)}
    assert served == stix_ids(intel)                 # threat intel only, every object once
    manifest = list(client.manifest(coll))
    assert {m["id"] for m in manifest} == served
    assert all(m["media_type"] == "application/stix+json;version=2.1" and m["date_added"] for m in manifest)


def test_paging_many_objects_sharing_one_date_added(gateway):
    intel = event_dicts(40, seed=42, event_type="threat_intel")
    post(gateway, intel)
    client = TaxiiClient(collection_url(gateway), token=TOKEN)
    coll = client.collection()
    pages = list(client.pages(coll, page_size=10))
    ids = [o["id"] for p in pages for o in p.items]
    assert len(pages) > 3 and len({p.date_added_last for p in pages}) == 1      # one sync: one date_added
    assert len(ids) == len(set(ids)) == len(stix_ids(intel))


def test_paging_without_next_falls_back_to_dates_and_says_when_it_cannot(gateway):
    first, second = event_dicts(3, seed=43, event_type="threat_intel"), event_dicts(3, seed=44, event_type="threat_intel")
    post(gateway, first)
    gateway.gateway.taxii.sync()
    time.sleep(0.01)
    post(gateway, second)
    gateway.gateway.taxii.sync()                 # two date_added values
    gateway.gateway.taxii.use_next = False       # a server that pages by date only
    client = TaxiiClient(collection_url(gateway), token=TOKEN)
    coll = client.collection()
    per_date = max(len(stix_ids(first)), len(stix_ids(second)))
    ids = [o["id"] for o in client.objects(coll, page_size=per_date + 1)]
    assert len(ids) == len(set(ids)) == len(stix_ids(first) | stix_ids(second))
    with pytest.raises(TaxiiPagingError, match="share date_added"):
        list(client.objects(coll, page_size=5))


def test_filters_type_id_added_after_and_versions(gateway):
    older = event_dicts(4, seed=45, event_type="threat_intel")
    post(gateway, older)
    gateway.gateway.taxii.sync()
    client = TaxiiClient(collection_url(gateway), token=TOKEN)
    coll = client.collection()
    [cut] = {p.date_added_last for p in client.pages(coll)}
    newer = event_dicts(3, seed=46, event_type="threat_intel")
    time.sleep(0.01)
    post(gateway, newer)
    assert {o["id"] for o in client.objects(coll, added_after=cut)} == stix_ids(newer) - stix_ids(older)
    assert {o["type"] for o in client.objects(coll, type="indicator")} <= {"indicator"}
    some = sorted(stix_ids(newer))[0]
    assert [o["id"] for o in client.objects(coll, id=some)] == [some]
    versions = coll.object_versions(some)["versions"]
    assert len(versions) == 1
    assert [o["id"] for o in client.objects(coll, id=some, version=versions[0])] == [some]


def test_source_reads_the_gateway_collection_back_into_wia_events(gateway, tmp_path):
    intel = event_dicts(15, seed=47, event_type="threat_intel")
    post(gateway, intel)
    store = SqliteSink(str(tmp_path / "copy.db"))
    source = TaxiiSource(collection_url(gateway), token=TOKEN, page_size=25, settle=0)
    with store, DeadLetterFile(str(tmp_path / "dead.ndjson")) as dead:
        assert source.run(store, dead, str(tmp_path / "cp.json"))["events"] == 15
        got = {s.id: s.event for s in store.store.query(limit=None)}
    assert got == {e["id"]: normalize(copy.deepcopy(e)) for e in intel}
    source.close()


def test_auth_media_type_and_read_only(gateway):
    post(gateway, event_dicts(2, seed=48, event_type="threat_intel"))
    url = collection_url(gateway) + "objects/"
    taxii = {"Accept": MEDIA_TAXII}
    assert requests.get(url, headers=taxii).status_code == 401
    assert requests.get(url, headers={**taxii, "Authorization": "Bearer wrong-token-0123456789"}).status_code == 401
    r = requests.get(url, headers=taxii, auth=("anyone", TOKEN))            # Basic with the token as password
    assert r.status_code == 200 and r.headers["Content-Type"] == MEDIA_TAXII and r.json()["objects"]
    assert r.headers["X-TAXII-Date-Added-First"] and r.headers["X-TAXII-Date-Added-Last"]
    assert requests.get(url, headers={**AUTH, "Accept": "application/json"}).status_code == 406
    r = requests.post(url, json={"objects": []}, headers={**AUTH, **taxii, "Content-Type": MEDIA_TAXII})
    assert r.status_code == 403 and r.json()["http_status"] == "403"
    r = requests.get(url, params={"next": "bogus!"}, headers={**AUTH, **taxii})
    assert r.status_code == 400
    assert requests.get(f"{gateway.url}/taxii2/wia/collections/nope/objects/", headers={**AUTH, **taxii}).status_code == 404

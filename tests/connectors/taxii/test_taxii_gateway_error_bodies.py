"""Every error status of the gateway's TAXII endpoint carries a TAXII error message (TAXII 2.1 section 3.6.1: "The
error message is provided by TAXII Servers in the response body when returning an HTTP error status").

A path under /taxii2/ that is no endpoint (the status resource among them: the collection takes no Add) and a
method an endpoint does not take were answered by the framework: `Not Found` / `Method Not Allowed` as
text/plain, which a TAXII client cannot read as an error message.
"""
from __future__ import annotations

import pytest
import requests
from strategies import event_dicts

from wia_security.connectors.gateway import GatewaySettings
from wia_security.connectors.gateway.server import GatewayServer
from wia_security.connectors.gateway.taxii_server import COLLECTION_ID, MEDIA_TAXII

TOKEN = "taxii-errors-token-0123456789"
TAXII = {"Authorization": f"Bearer {TOKEN}", "Accept": MEDIA_TAXII}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    folder = tmp_path_factory.mktemp("errors")
    server = GatewayServer(GatewaySettings(tokens=[TOKEN], store=f"sqlite:///{folder}/events.db",
                                           dead_letter=str(folder / "dead.ndjson"))).start()
    r = requests.post(server.url + "/v1/events", json=event_dicts(2, seed=1257, event_type="threat_intel"),
                      headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200, r.text
    yield server
    server.stop()


def error_message(r: requests.Response, status: int) -> dict:
    assert r.status_code == status and r.headers["Content-Type"] == MEDIA_TAXII, (r.status_code, r.text)
    doc = r.json()
    assert doc["http_status"] == str(status) and doc["title"]
    return doc


@pytest.mark.parametrize("path", ["/taxii2/wia/status/2d086da7-4bdc-4f91-900e-d77486753710/", "/taxii2/nope/",
                                  "/taxii2/wia/collections/{c}/objects/indicator--x/versions/extra/"])
def test_a_path_that_is_no_endpoint_is_404_with_a_taxii_error_message(gateway, path):
    doc = error_message(requests.get(gateway.url + path.format(c=COLLECTION_ID), headers=TAXII), 404)
    assert doc["title"] == "Not Found" and path.format(c=COLLECTION_ID) in doc["description"]


@pytest.mark.parametrize("method, path, allowed", [
    ("PUT", "/taxii2/wia/collections/{c}/objects/", "GET, HEAD, POST"),
    ("DELETE", "/taxii2/wia/collections/{c}/objects/indicator--0d1e2b3c-0000-4000-8000-000000000001/", "GET, HEAD"),
    ("POST", "/taxii2/wia/collections/", "GET, HEAD"),
    ("PATCH", "/taxii2/", "GET, HEAD"),
])
def test_a_method_an_endpoint_does_not_take_is_405_with_a_taxii_error_message(gateway, method, path, allowed):
    r = requests.request(method, gateway.url + path.format(c=COLLECTION_ID), headers=TAXII)
    assert error_message(r, 405)["title"] == "Method Not Allowed" and r.headers["Allow"] == allowed


def test_without_credentials_those_are_401_and_tell_nothing(gateway):
    for method, path in (("GET", "/taxii2/wia/status/x/"), ("PUT", f"/taxii2/wia/collections/{COLLECTION_ID}/objects/")):
        r = requests.request(method, gateway.url + path, headers={"Accept": MEDIA_TAXII})
        assert error_message(r, 401)["title"] == "Unauthorized"


def test_an_endpoint_without_its_final_slash_still_redirects_to_it(gateway):
    url = f"{gateway.url}/taxii2/wia/collections/{COLLECTION_ID}/objects?limit=1"
    r = requests.get(url, headers=TAXII, allow_redirects=False)
    assert r.status_code == 307 and r.headers["Location"].endswith(f"/collections/{COLLECTION_ID}/objects/?limit=1")
    followed = requests.get(url, headers=TAXII)
    assert followed.status_code == 200 and len(followed.json()["objects"]) == 1


def test_a_store_held_by_another_writer_is_503_with_retry_after_not_a_plain_500(tmp_path):
    """Another process writing the store file past the busy timeout (30 s in use, 0.2 s here)."""
    import sqlite3

    server = GatewayServer(GatewaySettings(tokens=[TOKEN], store=f"sqlite:///{tmp_path}/events.db",
                                           dead_letter=str(tmp_path / "dead.ndjson"))).start()
    try:
        requests.post(server.url + "/v1/events", json=event_dicts(1, seed=1260, event_type="threat_intel"),
                      headers={"Authorization": f"Bearer {TOKEN}"})
        collection = server.gateway.taxii
        collection._db.execute("PRAGMA busy_timeout = 200")
        other = sqlite3.connect(str(tmp_path / "events.db"), isolation_level=None)
        other.execute("BEGIN IMMEDIATE")                  # another writer holds the file
        try:
            collection.mark_dirty()                       # this read must sync first: it needs the write lock
            r = requests.get(f"{server.url}/taxii2/wia/collections/{COLLECTION_ID}/objects/", headers=TAXII)
        finally:
            other.execute("ROLLBACK")
            other.close()
        assert error_message(r, 503)["description"] == "the event store is busy; ask again"
        assert r.headers["Retry-After"] == "1"
        r = requests.get(f"{server.url}/taxii2/wia/collections/{COLLECTION_ID}/objects/", headers=TAXII)
        assert r.status_code == 200 and r.json()["objects"]            # once the file is free
    finally:
        server.stop()

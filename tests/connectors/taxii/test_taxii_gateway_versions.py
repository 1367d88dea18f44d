"""The gateway's TAXII 2.1 collection after the store replaced a threat-intel event by a newer version.

TAXII 2.1 (sections 3.4.2, 5.3-5.8): every version of an object has the `date_added` at which the server
added that version, so a poll by `added_after` sees a new version; `match[version]` defaults to `last`, the
newest; the versions endpoint and the manifest list each version. The STIX `modified` of the event's objects
is the event's timestamp, so it moves with each version (objects shared by all events keep theirs).
"""
from __future__ import annotations

import copy
import json
import sqlite3

import pytest
import requests
from strategies import event_dicts

from wia_security import convert
from wia_security.connectors.gateway import GatewaySettings
from wia_security.connectors.gateway.server import GatewayServer
from wia_security.connectors.gateway.taxii_server import COLLECTION_ID, MEDIA_TAXII
from wia_security.connectors.sqlite import epoch_us

TOKEN = "taxii-versions-token-0123456789"
HEADERS = {"Authorization": f"Bearer {TOKEN}", "Accept": MEDIA_TAXII}
FIRST, SECOND = "2026-02-01T08:00:00.000Z", "2026-02-01T09:30:00.000Z"


def start(tmp_path) -> GatewayServer:
    return GatewayServer(GatewaySettings(tokens=[TOKEN], store=f"sqlite:///{tmp_path}/events.db",
                                         dead_letter=str(tmp_path / "dead.ndjson"))).start()


@pytest.fixture
def gateway(tmp_path):
    server = start(tmp_path)
    yield server
    server.stop()


def intel_versions() -> tuple[dict, dict]:
    [first] = event_dicts(1, seed=90, event_type="threat_intel")
    first["timestamp"] = FIRST
    second = copy.deepcopy(first)
    second["timestamp"] = SECOND
    second["severity"] = 9.0 if first["severity"] != 9.0 else 8.0
    return first, second


def post(gw, events) -> None:
    reply = requests.post(gw.url + "/v1/events", json=events, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
    assert reply.status_code == 200, reply.text


def get(gw, path: str, **params) -> requests.Response:
    reply = requests.get(f"{gw.url}/taxii2/wia/collections/{COLLECTION_ID}/{path}", params=params, headers=HEADERS,
                         timeout=30)
    assert reply.status_code == 200, reply.text
    return reply


def versioned(event: dict) -> dict[str, str]:
    """id -> modified of the event's objects that carry a version of their own (not shared by all events)."""
    return {o["id"]: o["modified"] for o in convert(event, to="stix")["objects"] if o["modified"] == event["timestamp"]}


def test_a_newer_version_is_polled_by_added_after_and_served_as_the_last(gateway):
    first, second = intel_versions()
    post(gateway, [first])
    page = get(gateway, "objects/")
    cut = page.headers["X-TAXII-Date-Added-Last"]
    assert {o["id"]: o["modified"] for o in page.json()["objects"]}.items() >= versioned(first).items()

    post(gateway, [second])
    polled = get(gateway, "objects/", added_after=cut).json().get("objects", [])
    assert {o["id"]: o["modified"] for o in polled} == versioned(second)     # every moved object, its new version
    assert versioned(second).keys() == versioned(first).keys() and set(versioned(second).values()) == {SECOND}

    last = get(gateway, "objects/").json()["objects"]                         # match[version]=last by default
    assert sorted(o["id"] for o in last) == sorted({o["id"] for o in last})   # one version of each object
    assert {o["id"]: o["modified"] for o in last}.items() >= versioned(second).items()
    indicator = sorted(versioned(second))[0]                                  # the event's own object
    assert get(gateway, f"objects/{indicator}/versions/").json()["versions"] == [FIRST, SECOND]
    [old] = get(gateway, f"objects/{indicator}/", **{"match[version]": "first"}).json()["objects"]
    assert old["modified"] == FIRST
    manifest = get(gateway, "manifest/", **{"match[id]": indicator, "match[version]": "all"}).json()["objects"]
    assert [m["version"] for m in manifest] == [FIRST, SECOND]
    assert manifest[0]["date_added"] <= cut < manifest[1]["date_added"]

    newest = get(gateway, "objects/").headers["X-TAXII-Date-Added-Last"]
    post(gateway, [first, second])                                            # older and same: nothing new
    assert "objects" not in get(gateway, "objects/", added_after=newest).json()


def test_an_event_replaced_before_this_version_is_served_in_its_newest_version(tmp_path):
    """A store the previous gateway wrote: it replaced the event in place and never converted it again (its
    taxii_synced had no row number). The next gateway adds the newer version, once."""
    first, second = intel_versions()
    [unchanged] = event_dicts(1, seed=91, event_type="threat_intel")
    gateway = start(tmp_path)
    try:
        post(gateway, [first, unchanged])
        cut = get(gateway, "objects/").headers["X-TAXII-Date-Added-Last"]
    finally:
        gateway.stop()
    db = sqlite3.connect(tmp_path / "events.db", isolation_level=None)
    db.execute("ALTER TABLE taxii_synced DROP COLUMN event_row")               # the previous table
    db.execute("UPDATE events SET timestamp = ?, ts_us = ?, body = ? WHERE id = ?",   # the previous in-place upsert
               (SECOND, epoch_us(SECOND), json.dumps(second), second["id"]))
    gateway = start(tmp_path)
    try:
        # filled without converting: the unchanged event's version is held; the replaced one's is not (0)
        filled = dict(db.execute("SELECT s.event_id, s.event_row = e.rowid FROM taxii_synced s "
                                 "JOIN events e ON e.id = s.event_id"))
        assert filled == {unchanged["id"]: 1, second["id"]: 0}
        polled = get(gateway, "objects/", added_after=cut).json().get("objects", [])
        assert {o["id"]: o["modified"] for o in polled} == versioned(second)
        again = get(gateway, "objects/").headers["X-TAXII-Date-Added-Last"]
        gateway.gateway.taxii.sync()
        assert "objects" not in get(gateway, "objects/", added_after=again).json()
    finally:
        gateway.stop()
        db.close()

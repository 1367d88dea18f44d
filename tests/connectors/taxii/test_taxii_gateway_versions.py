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
    [first] = event_dicts(1, seed=90, event_type="threat_intel", times="legacy")
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
    """A store the previous gateway (0.1.0) wrote: it replaced the event in place and never converted it again
    (it kept no row numbers). The next gateway adds the newer version, once."""
    first, second = intel_versions()
    [unchanged] = event_dicts(1, seed=91, event_type="threat_intel", times="legacy")
    gateway = start(tmp_path)
    try:
        post(gateway, [first, unchanged])
        cut = get(gateway, "objects/").headers["X-TAXII-Date-Added-Last"]
    finally:
        gateway.stop()
    db = sqlite3.connect(tmp_path / "events.db", isolation_level=None)
    db.execute("DROP TABLE taxii_synced_rows")                                # 0.1.0 kept no row numbers
    db.execute("UPDATE events SET timestamp = ?, ts_us = ?, body = ? WHERE id = ?",   # the previous in-place upsert
               (SECOND, epoch_us(SECOND), json.dumps(second), second["id"]))
    gateway = start(tmp_path)
    try:
        # filled without converting: the unchanged event's version is held; the replaced one's is not (0)
        filled = dict(db.execute("SELECT r.event_id, r.event_row = e.rowid FROM taxii_synced_rows r "
                                 "JOIN events e ON e.id = r.event_id"))
        assert filled == {unchanged["id"]: 1, second["id"]: 0}
        polled = get(gateway, "objects/", added_after=cut).json().get("objects", [])
        assert {o["id"]: o["modified"] for o in polled} == versioned(second)
        again = get(gateway, "objects/").headers["X-TAXII-Date-Added-Last"]
        gateway.gateway.taxii.sync()
        assert "objects" not in get(gateway, "objects/", added_after=again).json()
    finally:
        gateway.stop()
        db.close()


def test_a_newer_version_keeps_created_and_created_by_ref_of_the_first_and_reads_back_exactly(gateway):
    """STIX 2.1 section 3.6: `created` (and, in the stix2 library's versioning, `created_by_ref`) never change
    between versions of an object. The converter sets `created` to the event's timestamp and `created_by_ref` to
    the event source's identity, so the collection keeps the first version's; the event the primary object
    carries (the WIA extension) keeps its own timestamp, so the newest version still reads back exactly."""
    import stix2
    from stix2.versioning import new_version
    from wia_security import parse
    first, second = intel_versions()
    second["source"] = {**second["source"], "name": "renamed-feed"}          # another source identity
    post(gateway, [first])
    get(gateway, "objects/")                                                  # the first version converted
    post(gateway, [second])
    moved = sorted(versioned(second))
    assert moved
    for object_id in moved:
        v1, v2 = get(gateway, f"objects/{object_id}/", **{"match[version]": "all"}).json()["objects"]
        assert (v1["modified"], v2["modified"]) == (FIRST, SECOND)
        assert v2["created"] == v1["created"] == FIRST
        if "created_by_ref" in v1:
            assert v2["created_by_ref"] == v1["created_by_ref"]
        # the stix2 library's own rule for a new version: it refuses one whose created or created_by_ref moved
        changes = {k: v for k, v in v2.items() if k not in ("modified", "created", "created_by_ref") and v1.get(k) != v}
        expected = new_version(stix2.parse(v1, allow_custom=True), modified=v2["modified"], allow_custom=True, **changes)
        assert json.loads(expected.serialize()) == v2
    bundle = {"type": "bundle", "id": "bundle--7f1c3d4e-0000-4000-8000-000000000001",
              "objects": get(gateway, "objects/").json()["objects"]}
    stored = requests.get(gateway.url + "/v1/events", params={"id": second["id"]}, timeout=30,
                          headers={"Authorization": f"Bearer {TOKEN}"}).json()["events"]   # as the gateway keeps it
    assert stored[0]["timestamp"] == SECOND
    assert [e.to_dict() for e in parse(bundle, from_="stix")] == stored


def test_a_version_added_after_a_restart_comes_after_every_date_added_served_before(tmp_path):
    """date_added orders what a client polls with added_after: a version added later must not get an earlier
    date_added than one already served, whatever the clock did. Here the previous gateway's clock was an hour
    ahead (corrected since, as NTP steps a clock back); its objects keep their date_added."""
    from datetime import datetime, timedelta
    first, second = intel_versions()
    gateway = start(tmp_path)
    try:
        post(gateway, [first])
        get(gateway, "objects/")
    finally:
        gateway.stop()
    hour = 3_600_000_000
    with sqlite3.connect(tmp_path / "events.db", isolation_level=None) as db:
        for seq, added_us in db.execute("SELECT seq, added_us FROM taxii_objects").fetchall():
            ahead = (datetime(1970, 1, 1) + timedelta(microseconds=added_us + hour)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            db.execute("UPDATE taxii_objects SET added_us = ?, date_added = ? WHERE seq = ?", (added_us + hour, ahead, seq))
    db.close()
    gateway = start(tmp_path)
    try:
        served = get(gateway, "objects/").headers["X-TAXII-Date-Added-Last"]
        post(gateway, [second])
        polled = get(gateway, "objects/", added_after=served)
        assert {o["id"]: o["modified"] for o in polled.json().get("objects", [])} == versioned(second)
        assert polled.headers["X-TAXII-Date-Added-First"] > served
    finally:
        gateway.stop()


def test_versions_before_1970_a_second_apart_from_later_ones_are_two_versions(gateway):
    """Object versions are told apart by their instant in epoch microseconds, floored: 1969-12-31T23:59:59.5Z is
    not 1970-01-01T00:00:00.5Z (rounded toward zero, both were 500,000 and the second version was dropped)."""
    first, second = intel_versions()
    first["timestamp"], second["timestamp"] = "1969-12-31T23:59:59.500Z", "1970-01-01T00:00:00.500Z"
    post(gateway, [first])
    get(gateway, "objects/")
    post(gateway, [second])
    indicator = sorted(versioned(second))[0]
    assert get(gateway, f"objects/{indicator}/versions/").json()["versions"] == [first["timestamp"], second["timestamp"]]
    [at] = get(gateway, f"objects/{indicator}/", **{"match[version]": first["timestamp"]}).json()["objects"]
    assert at["modified"] == first["timestamp"]


# What released 0.1.0's gateway runs on the collection's tables (connectors/gateway/taxii_server.py of 0.1.0):
# a record, never edit. A 0.1.0 gateway may still have the file open when this version starts (a rolling
# upgrade), or be brought back.
RELEASED_0_1_0_DDL = """
CREATE TABLE IF NOT EXISTS taxii_objects (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id     TEXT NOT NULL,
    stix_id      TEXT NOT NULL,
    stix_type    TEXT NOT NULL,
    version      TEXT NOT NULL,
    version_us   INTEGER NOT NULL,
    spec_version TEXT NOT NULL,
    date_added   TEXT NOT NULL,
    added_us     INTEGER NOT NULL,
    body         TEXT NOT NULL,
    UNIQUE (stix_id, version_us)
);
CREATE INDEX IF NOT EXISTS taxii_objects_added ON taxii_objects (added_us, seq);
CREATE INDEX IF NOT EXISTS taxii_objects_id ON taxii_objects (stix_id, version_us);
CREATE TABLE IF NOT EXISTS taxii_synced (event_id TEXT PRIMARY KEY, objects INTEGER NOT NULL, error TEXT);
"""
RELEASED_0_1_0_SYNCED = "INSERT OR REPLACE INTO taxii_synced VALUES (?, ?, NULL)"
RELEASED_0_1_0_FAILED = "INSERT OR REPLACE INTO taxii_synced VALUES (?, 0, ?)"


def test_a_0_1_0_gateway_on_the_same_file_still_syncs_and_its_events_are_served_once(tmp_path):
    """0.1.0's gateway inserts three values into taxii_synced: a column added there failed every one of its syncs
    ('table taxii_synced has 4 columns but 3 values were supplied'), so its TAXII requests all failed. An event it
    converted is then served by this version once, in the version it holds."""
    first, second = intel_versions()
    [other] = event_dicts(1, seed=92, event_type="threat_intel", times="legacy")
    gateway = start(tmp_path)
    try:
        post(gateway, [first])
        cut = get(gateway, "objects/").headers["X-TAXII-Date-Added-Last"]
    finally:
        gateway.stop()
    db = sqlite3.connect(tmp_path / "events.db", isolation_level=None)
    try:
        db.executescript(RELEASED_0_1_0_DDL)
        db.execute(RELEASED_0_1_0_FAILED, ("3f1d2a40-0000-4000-8000-000000000001", "cannot convert"))
        db.execute(RELEASED_0_1_0_SYNCED, (other["id"], 0))
        gateway = start(tmp_path)
        try:
            post(gateway, [other, second])
            polled = get(gateway, "objects/", added_after=cut).json().get("objects", [])
            ids = [o["id"] for o in polled]
            assert len(ids) == len(set(ids))
            assert {o["id"]: o["modified"] for o in polled}.items() >= versioned(second).items()
            assert {o["id"] for o in polled} >= set(versioned(other))
        finally:
            gateway.stop()
    finally:
        db.close()

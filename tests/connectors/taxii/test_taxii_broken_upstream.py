"""TAXII 2.1 against broken upstream data and misbehaving servers, driven by taxii2-client.

medallion (the OASIS reference server) serves collections that mix readable and unreadable STIX;
what medallion will not misbehave at (a stuck `next` cursor, objects that are not objects, status
resources that contradict themselves) comes from a small scripted contract server: it answers the
TAXII 2.1 endpoints the client calls (collection, objects, add, status) with the envelopes a test
scripts.
"""
from __future__ import annotations

import copy
import json
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from servers.medallion import PASSWORD, USER, WRITABLE
from strategies import event_dicts

from wia_security import convert
from wia_security.connectors.dead_letter import DeadLetterFile
from wia_security.connectors.delivery import DeliveryPolicy
from wia_security.connectors.sqlite import SqliteSink
from wia_security.connectors.taxii import TaxiiClient, TaxiiPagingError, TaxiiSink, TaxiiSource
from wia_security.errors import ConfigError
from wia_security.pipeline import normalize

sys.path.append(str(Path(__file__).resolve().parents[2] / "servers"))
from intel_http import ContractServer  # noqa: E402

STAMP = "2025-03-01T12:00:00.000000Z"
COLLECTION = "91a7b528-80eb-42ed-a74d-c6fbd5a26116"
TAXII = {"Content-Type": "application/taxii+json;version=2.1"}
DATES = {"X-TAXII-Date-Added-First": STAMP, "X-TAXII-Date-Added-Last": STAMP}
FAST = DeliveryPolicy(max_attempts=2, initial_backoff=0.01, max_backoff=0.02)


def indicator(n: int, pattern: str | None = None) -> dict[str, Any]:
    return {"type": "indicator", "spec_version": "2.1", "id": f"indicator--{uuid.UUID(int=n + 1)}",
            "created": "2025-03-01T00:00:00.000Z", "modified": "2025-03-01T00:00:00.000Z", "name": f"bad ip {n}",
            "pattern": pattern or f"[ipv4-addr:value = '198.51.100.{n % 250}']", "pattern_type": "stix",
            "valid_from": "2025-03-01T00:00:00Z", "indicator_types": ["malicious-activity"]}


def vulnerability_without_cve(n: int) -> dict[str, Any]:
    return {"type": "vulnerability", "spec_version": "2.1", "id": f"vulnerability--{uuid.UUID(int=n + 1)}",
            "created": "2025-03-01T00:00:00.000Z", "modified": "2025-03-01T00:00:00.000Z", "name": "no CVE here"}


class ScriptedTaxii(ContractServer):
    """Get Objects answers `pages` in turn (the last one repeats); Add Objects / Get Status answer `statuses`."""

    def __init__(self, pages: list[dict[str, Any]], statuses: list[Any] | None = None) -> None:
        super().__init__()
        self.pages, self.statuses = pages, statuses or []
        self.object_requests = self.status_requests = 0
        self.dates = dict(DATES)

    def handle(self, req: Any, headers: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        if req.path == f"/api1/collections/{COLLECTION}/":
            return 200, {"id": COLLECTION, "title": "scripted", "can_read": True, "can_write": True,
                         "media_types": ["application/stix+json;version=2.1"]}, dict(TAXII)
        if req.path == "/api1/":
            return 200, {"title": "api1", "versions": ["application/taxii+json;version=2.1"],
                         "max_content_length": 1_000_000}, dict(TAXII)
        if req.path.endswith("/objects/") and req.method == "GET":
            page = self.pages[min(self.object_requests, len(self.pages) - 1)]
            self.object_requests += 1
            return 200, page, {**TAXII, **self.dates}
        if req.path.endswith("/objects/") and req.method == "POST" or "/status/" in req.path:
            status = self.statuses[min(self.status_requests, len(self.statuses) - 1)]
            self.status_requests += 1
            return (202 if req.method == "POST" else 200), status, dict(TAXII)
        return 404, {"title": "not found"}, dict(TAXII)

    @property
    def collection_url(self) -> str:
        return f"{self.url}/api1/collections/{COLLECTION}/"


def dead_records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_a_stuck_next_cursor_is_an_error_not_an_endless_walk():
    stuck = {"more": True, "next": "cursor-1", "objects": [indicator(1)]}
    last = {"more": False, "objects": []}
    # the same page for the same cursor 30 times, then the end: a client that does not notice walks all 30
    with ScriptedTaxii([stuck] * 30 + [last]) as server:
        client = TaxiiClient(server.collection_url)
        with pytest.raises(TaxiiPagingError, match="same page again"):
            list(client.pages(client.collection(), page_size=1))
        assert server.object_requests == 2


def test_a_reused_cursor_that_makes_progress_is_followed(medallion):
    # medallion hands out one `next` value for a whole walk: that is progress, not a loop
    medallion.load(WRITABLE, [indicator(i) for i in range(30)], STAMP)
    client = TaxiiClient(medallion.collection_url(), user=USER, password=PASSWORD)
    ids = [o["id"] for o in client.objects(client.collection(), page_size=10)]
    assert len(ids) == len(set(ids)) == 30


def test_one_unreadable_object_rejects_only_itself_with_its_objects_and_where(medallion, tmp_path):
    good = [indicator(i) for i in range(5)]
    bad_pattern = indicator(90, pattern="[x-unknown:thing = 'zzz']")
    no_cve = vulnerability_without_cve(91)
    medallion.load(WRITABLE, good[:3] + [bad_pattern] + good[3:] + [no_cve], STAMP)
    dead = tmp_path / "dead.ndjson"
    source = TaxiiSource(medallion.collection_url(), user=USER, password=PASSWORD)
    with SqliteSink(str(tmp_path / "events.db")) as store, DeadLetterFile(str(dead)) as dead_letter:
        totals = source.run(store, dead_letter, str(tmp_path / "checkpoint.json"))
        assert store.store.count() == 5                  # every good indicator arrived
    records = dead_records(dead)
    assert totals["objects"] == 7 and totals["summary"].delivered == 5 and len(records) == 2
    by_object = {json.loads(r["raw"])["objects"][0]["id"]: r for r in records}
    assert set(by_object) == {bad_pattern["id"], no_cve["id"]}      # the objects themselves are kept
    for oid, record in by_object.items():
        # the path points into the record's raw group ({"objects": [...]}), the reason names the object
        assert record["reason"].startswith("stix conversion failed: stix at /objects/") and oid in record["reason"]
        pointer = record["reason"].split(" at ", 1)[1].split(":", 1)[0]
        assert json.loads(record["raw"])["objects"][int(pointer.split("/")[2])]["id"] == oid
        assert oid in record["where"] and medallion.collection_url() in record["where"]
    source.close()


def test_objects_that_are_not_stix_objects_are_dead_lettered_not_a_traceback(tmp_path):
    objects = [indicator(1), "not an object", {"type": "indicator"}, None, indicator(2)]
    dead = tmp_path / "dead.ndjson"
    with ScriptedTaxii([{"more": False, "objects": objects}]) as server:
        source = TaxiiSource(server.collection_url)
        with SqliteSink(str(tmp_path / "events.db")) as store, DeadLetterFile(str(dead)) as dead_letter:
            totals = source.run(store, dead_letter, str(tmp_path / "checkpoint.json"))
            assert store.store.count() == 2
    records = dead_records(dead)
    assert totals["summary"].delivered == 2 and len(records) == 3 and totals["summary"].dead_lettered == 3
    assert all("needs a string `type` and `id`" in r["reason"] for r in records)
    assert sorted(json.dumps(json.loads(r["raw"])["objects"][0]) for r in records) == \
        sorted(json.dumps(o) for o in ("not an object", {"type": "indicator"}, None))


def test_an_objects_member_that_is_not_a_list_is_a_paging_error():
    with ScriptedTaxii([{"more": False, "objects": {"id": "indicator--1"}}]) as server:
        client = TaxiiClient(server.collection_url)
        with pytest.raises(TaxiiPagingError, match="`objects` as a dict, not a list"):
            list(client.objects(client.collection()))


def status(**changes: Any) -> dict[str, Any]:
    return {"id": "status-1", "status": "complete", "total_count": 1, "success_count": 1, "failure_count": 0,
            "pending_count": 0, **changes}


def test_a_complete_status_that_still_lists_pending_objects_is_retried_not_counted_delivered():
    events = event_dicts(2, seed=7, event_type="threat_intel")
    shared = {o["id"] for o in convert(events[1], to="stix")["objects"]}
    waiting = next(o for o in convert(events[0], to="stix")["objects"]
                   if o["id"] not in shared and o["type"] != "extension-definition")
    named = status(total_count=2, pending_count=1, pendings=[{"id": waiting["id"], "version": waiting.get("modified", "")}])
    unnamed = status(total_count=2, pending_count=1)
    for answer, retried in ((named, [events[0]]), (unnamed, events)):
        with ScriptedTaxii([{"more": False, "objects": []}], [answer]) as server:
            sink = TaxiiSink(server.collection_url, delivery=FAST, status_timeout=1)
            report = sink.send(events).merge(sink.flush())
        assert report.delivered == len(events) - len(retried) and [f.event for f in report.failed] == retried
        assert all("is complete but lists 1 object(s) as pending" in f.reason for f in report.failed)


@pytest.mark.parametrize("answer, why", [
    (status(total_count=5), "unusable TAXII status resource: ValidationError: (success_count=1"),
    ({"status": "complete"}, "unusable TAXII status resource: KeyError: 'id'"),
    (["not", "a", "status"], "unusable TAXII status resource: TypeError"),
])
def test_a_status_resource_that_does_not_add_up_fails_with_the_reason(answer, why):
    events = event_dicts(2, seed=8, event_type="threat_intel")
    with ScriptedTaxii([{"more": False, "objects": []}], [answer]) as server:
        sink = TaxiiSink(server.collection_url, delivery=FAST, status_timeout=1)
        report = sink.send(events).merge(sink.flush())
    assert report.delivered == 0 and len(report.failed) == 2
    assert all(why in f.reason and f.event in events for f in report.failed)


@pytest.mark.parametrize("text, why", [
    ("{not json", "unreadable TAXII checkpoint"),
    ("[1, 2]", "a TAXII checkpoint is a JSON object, not list"),
    ('{"added_after": "yesterday", "seen": []}', "added_after 'yesterday' is not a timestamp"),
    ('{"added_after": 5, "seen": []}', "added_after '5' is not a timestamp"),
    ('{"added_after": "2025-03-01T12:00:00Z", "seen": [1, 2]}', r"`seen` is not a list of \[id, version\] pairs"),
])
def test_a_damaged_checkpoint_stops_the_poll_with_a_config_error_naming_the_file(medallion, tmp_path, text, why):
    checkpoint = tmp_path / "checkpoint.json"
    checkpoint.write_text(text)
    source = TaxiiSource(medallion.collection_url(), user=USER, password=PASSWORD)
    with SqliteSink(str(tmp_path / "events.db")) as store, DeadLetterFile(str(tmp_path / "dead.ndjson")) as dead:
        with pytest.raises(ConfigError, match=why) as caught:
            source.run(store, dead, str(checkpoint))
    assert caught.value.source == str(checkpoint) and checkpoint.read_text() == text     # left as it was
    source.close()


def test_reading_group_by_group_gives_the_events_a_whole_read_gives(medallion, tmp_path):
    # 120 wild events (shared identities, sightings, relationships) plus one unreadable object: the
    # fallback must bring back exactly the 120 events, as the whole collection would without it.
    events = event_dicts(120, seed=11, wild=True)
    with TaxiiSink(medallion.collection_url(), user=USER, password=PASSWORD) as sink:
        assert sink.send(events).merge(sink.flush()).delivered == 120
    medallion.load(WRITABLE, [indicator(99, pattern="[x-nothing:at = 'all']")], STAMP)
    dead = tmp_path / "dead.ndjson"
    source = TaxiiSource(medallion.collection_url(), user=USER, password=PASSWORD, settle=0)
    with SqliteSink(str(tmp_path / "events.db")) as store, DeadLetterFile(str(dead)) as dead_letter:
        totals = source.run(store, dead_letter, str(tmp_path / "checkpoint.json"))
        got = {e.id: e.event for e in store.store.query(limit=None)}
    source.close()
    assert totals["summary"].delivered == 120 and len(dead_records(dead)) == 1
    assert got == {e["id"]: normalize(copy.deepcopy(e)) for e in events}


def test_a_garbled_date_added_header_never_reaches_the_checkpoint(tmp_path):
    checkpoint = tmp_path / "checkpoint.json"
    with ScriptedTaxii([{"more": False, "objects": [indicator(1)]}]) as server:
        server.dates = {"X-TAXII-Date-Added-First": "soon", "X-TAXII-Date-Added-Last": "garbage"}
        source = TaxiiSource(server.collection_url)
        with SqliteSink(str(tmp_path / "events.db")) as store, DeadLetterFile(str(tmp_path / "dead.ndjson")) as dead:
            assert source.run(store, dead, str(checkpoint))["events"] == 1
            assert source.run(store, dead, str(checkpoint))["events"] == 1     # readable: re-read, not stuck
    assert json.loads(checkpoint.read_text())["added_after"] is None
    with ScriptedTaxii([{"more": True, "objects": [indicator(1)]}]) as server:
        server.dates = {"X-TAXII-Date-Added-Last": "garbage"}
        client = TaxiiClient(server.collection_url)
        with pytest.raises(TaxiiPagingError, match="neither `next` nor X-TAXII-Date-Added-Last"):
            list(client.pages(client.collection()))


def test_an_object_two_events_share_refuses_only_the_event_it_breaks(tmp_path):
    # a sighting of indicator 1 and a malware that indicators 1 and 2 indicate are linked by references
    # (one group, both dead-lettered before); indicator 2 cannot be read, so only the malware is refused
    good, bad = indicator(1), indicator(2, pattern="[x-unknown:thing = 'zzz']")
    malware = {"type": "malware", "spec_version": "2.1", "id": f"malware--{uuid.UUID(int=50)}", "is_family": True,
               "created": "2025-03-01T00:00:00.000Z", "modified": "2025-03-01T00:00:00.000Z", "name": "family"}
    sighting = {"type": "sighting", "spec_version": "2.1", "id": f"sighting--{uuid.UUID(int=51)}",
                "created": "2025-03-01T00:00:00.000Z", "modified": "2025-03-01T00:00:00.000Z",
                "sighting_of_ref": good["id"]}
    rels = [{"type": "relationship", "spec_version": "2.1", "id": f"relationship--{uuid.UUID(int=60 + n)}",
             "created": "2025-03-01T00:00:00.000Z", "modified": "2025-03-01T00:00:00.000Z",
             "relationship_type": "indicates", "source_ref": ind["id"], "target_ref": malware["id"]}
            for n, ind in enumerate((good, bad))]
    dead = tmp_path / "dead.ndjson"
    with ScriptedTaxii([{"more": False, "objects": [sighting, good, malware, bad, *rels]}]) as server:
        source = TaxiiSource(server.collection_url)
        with SqliteSink(str(tmp_path / "events.db")) as store, DeadLetterFile(str(dead)) as dead_letter:
            totals = source.run(store, dead_letter, str(tmp_path / "checkpoint.json"))
            assert [e.event["type"] for e in store.store.query(limit=None)] == ["alert"]
    (record,) = dead_records(dead)
    assert totals["summary"].delivered == 1 and totals["summary"].dead_lettered == 1
    raw = json.loads(record["raw"])["objects"]
    assert {o["id"] for o in raw} == {malware["id"], good["id"], bad["id"], *(r["id"] for r in rels)}
    pointer = record["reason"].split(" at ", 1)[1].split(":", 1)[0]
    assert pointer.endswith("/pattern") and raw[int(pointer.split("/")[2])]["id"] == bad["id"]

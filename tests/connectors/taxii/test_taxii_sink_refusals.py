"""TAXII sink: what the `failures` of a status resource mean (TAXII 2.1 section 4.3.1: status details carry the
object's id and version, and the server's message).

A refused object the collection already holds in that version is a duplicate (a re-send); any other refusal
fails its event with the server's reason, for the dead letter. The sink asks Get Manifest which versions the
collection holds. It used to ask for every refused id in one `match[id]` (a large re-send's URL was longer than
servers take) and to take any version held as the one refused (a server refusing a new version of an object
had the event counted delivered or a duplicate: the update lost, with nothing dead-lettered).
"""
from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import Any

from servers.medallion import PASSWORD, USER
from strategies import event_dicts

from wia_security import convert
from wia_security.connectors.dead_letter import DeadLetterFile
from wia_security.connectors.delivery import DeliveryPolicy
from wia_security.connectors.taxii import TaxiiClient, TaxiiSink

sys.path.append(str(Path(__file__).resolve().parents[2] / "servers"))
from intel_http import ContractServer  # noqa: E402

FAST = DeliveryPolicy(max_attempts=2, initial_backoff=0.01, max_backoff=0.02)
COLLECTION = "c4f4b0a3-5b9e-4f0e-9d43-7e0b8a3f1c55"
TAXII = {"Content-Type": "application/taxii+json;version=2.1"}
STAMP = "2025-03-01T12:00:00.000000Z"


def test_medallion_a_large_resend_is_all_duplicates(medallion):
    """300 threat-intel events are ~1,500 objects: re-sent, each is refused as held, and the sink asked which in one
    Get Manifest whose match[id] made a 76 KB URL: medallion answered 414 and most events failed after retries."""
    events = event_dicts(300, seed=1251, event_type="threat_intel", times="legacy")
    with TaxiiSink(medallion.collection_url(), user=USER, password=PASSWORD, delivery=FAST) as sink:
        first = sink.send(events).merge(sink.flush())
        again = sink.send(events).merge(sink.flush())
    assert (first.delivered, first.failed) == (300, [])
    assert (again.delivered, again.duplicates, again.failed) == (0, 300, [])


class RefusingCollection(ContractServer):
    """A collection that stores what it is given, refuses an id and version it holds (as medallion does: 'Unable
    to process object'), and refuses any object `refuse` names with its own message (a server's policy, a
    validator), answering the status at once; Get Manifest filters match[id] and match[version]=all."""

    def __init__(self, refuse: dict[str, str]) -> None:
        super().__init__()
        self.refuse = refuse
        self.held: list[dict[str, Any]] = []

    def handle(self, req: Any, headers: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        base = f"/api1/collections/{COLLECTION}/"
        if req.path == "/api1/":
            return 200, {"title": "api1", "versions": ["application/taxii+json;version=2.1"],
                         "max_content_length": 1_000_000}, dict(TAXII)
        if req.path == base:
            return 200, {"id": COLLECTION, "title": "refusing", "can_read": True, "can_write": True,
                         "media_types": ["application/stix+json;version=2.1"]}, dict(TAXII)
        if req.path == base + "objects/" and req.method == "POST":
            successes, failures = [], []
            for obj in req.body["objects"]:
                entry = {"id": obj["id"], "version": obj["modified"]}
                if any(h["id"] == obj["id"] and h["modified"] == obj["modified"] for h in self.held):
                    failures.append({**entry, "message": "Unable to process object"})
                elif obj["id"] in self.refuse:
                    failures.append({**entry, "message": self.refuse[obj["id"]]})
                else:
                    self.held.append(obj)
                    successes.append(entry)
            total = len(successes) + len(failures)
            return 202, {"id": "status-1", "status": "complete", "request_timestamp": STAMP, "total_count": total,
                         "success_count": len(successes), "successes": successes, "failure_count": len(failures),
                         "failures": failures, "pending_count": 0}, dict(TAXII)
        if req.path == base + "manifest/":
            wanted = set(req.query.get("match[id]", [""])[0].split(","))
            entries = [{"id": h["id"], "date_added": STAMP, "version": h["modified"],
                        "media_type": "application/stix+json;version=2.1"} for h in self.held if h["id"] in wanted]
            return 200, {"more": False, "objects": entries}, dict(TAXII)
        return 404, {"title": "not found", "http_status": "404"}, dict(TAXII)

    @property
    def collection_url(self) -> str:
        return f"{self.url}/api1/collections/{COLLECTION}/"


def newer(event: dict[str, Any]) -> dict[str, Any]:
    """The same event an hour later (its objects' next version: same ids, a later `modified`)."""
    later = copy.deepcopy(event)
    later["timestamp"] = later["timestamp"][:11] + f"{(int(later['timestamp'][11:13]) + 1) % 24:02d}" + later["timestamp"][13:]
    return later


def test_contract_a_new_version_the_server_refuses_fails_with_its_reason_though_an_older_one_is_held(tmp_path):
    [event] = event_dicts(1, seed=1252, event_type="threat_intel", times="legacy")
    update = newer(event)
    v1 = {o["id"]: o for o in convert(event, to="stix")["objects"]}
    v2 = {o["id"]: o for o in convert(update, to="stix")["objects"]}
    changed = sorted(i for i in v2 if i in v1 and v2[i]["modified"] != v1[i]["modified"])
    assert changed                                         # the update is a new version of held objects
    with RefusingCollection({}) as server:
        with TaxiiSink(server.collection_url, delivery=FAST) as sink:
            assert sink.send([event]).merge(sink.flush()).delivered == 1
        server.refuse = {changed[0]: "refused: the pattern fails this server's validation"}
        with TaxiiSink(server.collection_url, delivery=FAST) as sink, DeadLetterFile(str(tmp_path / "dl.ndjson")) as dl:
            report = sink.send([update]).merge(sink.flush())
            for rejected in report.failed:
                dl.put(rejected)
    # before: counted delivered (the event's other objects were new) though the refused version was never stored,
    # since an older version of it was held; nothing dead-lettered
    assert (report.delivered, report.duplicates, len(report.failed)) == (0, 0, 1)
    assert report.failed[0].reason == (f"TAXII server refused {changed[0]}: refused: the pattern fails this server's "
                                       "validation")
    [record] = [json.loads(line) for line in (tmp_path / "dl.ndjson").read_text().splitlines()]
    assert changed[0] in record["reason"] and record["event"] == update        # the event, whole, to send again


def test_contract_the_same_version_refused_again_is_a_duplicate():
    [event] = event_dicts(1, seed=1253, event_type="threat_intel", times="legacy")
    with RefusingCollection({}) as server, TaxiiSink(server.collection_url, delivery=FAST) as sink:
        first = sink.send([event]).merge(sink.flush())
        again = sink.send([event]).merge(sink.flush())
    assert (first.delivered, again.duplicates, again.failed) == (1, 1, [])


def refuse_bodies_over(medallion, limit: int) -> None:
    """medallion answers 413 to an Add larger than its API root's max_content_length: lowered here after the sink
    read the larger one, as a proxy before a server (nginx: 1 MiB by default) refuses less than it advertises."""
    medallion.app.medallion_backend.data["api1"]["information"]["max_content_length"] = limit


def test_medallion_a_413_splits_the_batch_and_later_batches_are_smaller(medallion, tmp_path, caplog):
    events = event_dicts(24, seed=1254, event_type="threat_intel", times="legacy")
    sizes = [len(json.dumps([o for o in convert(e, to="stix")["objects"] if o["type"] != "extension-definition"]))
             for e in events]
    limit = 3 * max(sizes)
    with TaxiiSink(medallion.collection_url(), user=USER, password=PASSWORD, delivery=FAST) as sink:
        refuse_bodies_over(medallion, limit)
        report = sink.send(events).merge(sink.flush())
        # before: every event of the batch failed with 'HTTP 413' (permanent), dead-lettered
        assert (report.delivered, report.failed) == (24, [])
        assert sink.policy.max_bytes < sum(sizes)              # later batches are smaller than the refused ones
    assert "batching to" in caplog.text
    stored = {o["id"] for o in TaxiiClient(medallion.collection_url(), user=USER, password=PASSWORD).objects(
        TaxiiClient(medallion.collection_url(), user=USER, password=PASSWORD).collection())}
    assert stored == {o["id"] for e in events for o in convert(e, to="stix")["objects"] if o["type"] != "extension-definition"}


def test_medallion_one_event_over_the_limit_fails_alone_with_the_reason(medallion):
    events = event_dicts(6, seed=1255, event_type="threat_intel", times="legacy")
    sizes = [len(json.dumps([o for o in convert(e, to="stix")["objects"] if o["type"] != "extension-definition"]))
             for e in events]
    big = sizes.index(max(sizes))
    with TaxiiSink(medallion.collection_url(), user=USER, password=PASSWORD, delivery=FAST) as sink:
        refuse_bodies_over(medallion, sorted(sizes)[-2] + 100)       # every event but the largest fits alone
        report = sink.send(events).merge(sink.flush())
    assert report.delivered == 5 and [f.event for f in report.failed] == [events[big]]
    assert "HTTP 413" in report.failed[0].reason and "over the server's or a proxy's request size limit" in \
        report.failed[0].reason and not report.failed[0].retryable


class RefusingWithoutManifest(RefusingCollection):
    """The same collection without Get Manifest (404, as many servers leave it out); Get Objects filters match[id]."""

    def handle(self, req: Any, headers: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        if req.path.endswith("/manifest/"):
            return 404, {"title": "Not Found", "http_status": "404"}, dict(TAXII)
        if req.path.endswith("/objects/") and req.method == "GET":
            wanted = set(req.query.get("match[id]", [""])[0].split(","))
            return 200, {"more": False, "objects": [h for h in self.held if h["id"] in wanted]}, \
                {**TAXII, "X-TAXII-Date-Added-First": STAMP, "X-TAXII-Date-Added-Last": STAMP}
        return super().handle(req, headers)


def test_contract_without_a_manifest_a_resend_is_still_a_duplicate_and_a_refused_update_still_fails(caplog):
    [event] = event_dicts(1, seed=1259, event_type="threat_intel", times="legacy")
    update = newer(event)
    v1 = {o["id"]: o for o in convert(event, to="stix")["objects"]}
    changed = sorted(o["id"] for o in convert(update, to="stix")["objects"] if o["id"] in v1
                     and o["modified"] != v1[o["id"]]["modified"])
    with RefusingWithoutManifest({}) as server, TaxiiSink(server.collection_url, delivery=FAST) as sink:
        assert sink.send([event]).merge(sink.flush()).delivered == 1
        again = sink.send([event]).merge(sink.flush())
        server.refuse = {changed[0]: "refused by policy"}
        refused = sink.send([update]).merge(sink.flush())
        manifests = len(server.calls(f"/api1/collections/{COLLECTION}/manifest/"))
    # before: the re-send failed ('I/O error: HTTPError: 404 ... manifest'), retried, then dead-lettered
    assert (again.duplicates, again.failed) == (1, [])
    assert [f.reason for f in refused.failed] == [f"TAXII server refused {changed[0]}: refused by policy"]
    assert manifests == 1 and "Get Manifest failed (HTTP 404)" in caplog.text       # asked once

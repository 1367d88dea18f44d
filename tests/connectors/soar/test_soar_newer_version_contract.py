"""Contract tests: a newer version of an event already in SOAR updates what is there; it is not a duplicate.

Events are updated and re-sent with the same id (an incident's status moves to closed, an alert's to
resolved: docs/connectors/delivery.md). Both sinks took any event whose id SOAR already held for a
duplicate: the closed incident stayed open in XSOAR and Splunk SOAR, the report said "duplicate", and
nothing said an update was dropped. Newer is the rule the SQLite store keeps: a later timestamp instant,
or the same instant and a later incident data.updated_at. A re-send or an older version still counts as
a duplicate and changes nothing."""
from __future__ import annotations

import copy
import json

from wia_security.connectors.delivery import DeliveryPolicy
from wia_security.connectors.soar.splunk_soar import SplunkSoarSink
from wia_security.connectors.soar.xsoar import XsoarSink

FAST = DeliveryPolicy(max_wait=0, max_attempts=3, initial_backoff=0.01, max_elapsed=30)


def _versions(sample_events) -> tuple[dict, dict]:
    """An incident and its next version: closed an hour later (data.updated_at), same id and timestamp."""
    first = copy.deepcopy(next(e for e in sample_events if e["type"] == "incident"))
    closed = copy.deepcopy(first)
    closed["data"]["status"] = "closed"
    closed["data"]["updated_at"] = "2025-12-14T04:00:00.000Z"
    return first, closed


def _send(sink, *events) -> tuple[int, int, list]:
    report = sink.send(list(events))
    report.merge(sink.flush())
    return report.delivered, report.duplicates, report.failed


def test_contract_xsoar_a_newer_version_updates_the_incident_and_an_older_one_is_a_duplicate(xsoar_server, sample_events):
    first, closed = _versions(sample_events)
    later_alert = copy.deepcopy(next(e for e in sample_events if e["type"] == "alert"))
    with XsoarSink(xsoar_server.url, token=xsoar_server.api_key, delivery=FAST, playbook="WIA Triage") as sink:
        assert _send(sink, first, later_alert) == (2, 0, [])
        assert _send(sink, closed) == (1, 0, [])                        # the update is delivered
        assert _send(sink, closed, first) == (0, 2, [])                 # re-send and older version: nothing changes
        later_alert["timestamp"] = "2025-12-14T09:31:00.000Z"           # a later instant is newer too
        later_alert["data"]["status"] = "resolved"
        assert _send(sink, later_alert) == (1, 0, [])
    assert len(xsoar_server.incidents) == 2
    by_event = {i["CustomFields"]["wiaeventid"]: i for i in xsoar_server.incidents.values()}
    incident = by_event[first["id"]]
    assert json.loads(incident["rawJSON"]) == closed and incident["CustomFields"]["wiastatus"] == "closed"
    assert incident["version"] == 2
    assert json.loads(by_event[later_alert["id"]]["rawJSON"])["data"]["status"] == "resolved"


def test_contract_splunk_soar_a_newer_version_updates_the_container_and_adds_its_event_artifact(soar_server, sample_events):
    first, closed = _versions(sample_events)
    with SplunkSoarSink(soar_server.url, token=soar_server.token, delivery=FAST, playbook="local/wia_triage") as sink:
        assert _send(sink, first) == (1, 0, [])
        assert _send(sink, closed) == (1, 0, [])
        assert _send(sink, closed, first) == (0, 2, [])
    (cid,) = soar_server.containers
    container = soar_server.containers[cid]
    assert container["data"]["wia_event"] == closed and container["description"]
    event_artifacts = [a for a in soar_server.artifacts.values() if a["container"] == cid and a["label"] == "event"]
    assert [a["data"]["data"]["status"] for a in event_artifacts] == ["containing", "closed"]
    assert len(soar_server.playbook_runs) == 1                          # the playbook ran on the new container only
    assert container["status"] == "new"                                 # the analysts' status is theirs


def test_contract_a_stored_event_that_cannot_be_read_keeps_the_duplicate_answer_and_says_so_once(
        soar_server, xsoar_server, sample_events, caplog):
    first, closed = _versions(sample_events)
    with SplunkSoarSink(soar_server.url, token=soar_server.token, delivery=FAST) as soar, \
            XsoarSink(xsoar_server.url, token=xsoar_server.api_key, delivery=FAST) as xsoar:
        assert _send(soar, first) == (1, 0, []) and _send(xsoar, first) == (1, 0, [])
        for container in soar_server.containers.values():
            container["data"] = {"edited": "by an analyst"}
        for incident in xsoar_server.incidents.values():
            incident["rawJSON"] = "not JSON"
        with caplog.at_level("WARNING"):
            assert _send(soar, closed, closed) == (0, 2, []) and _send(xsoar, closed, closed) == (0, 2, [])
    said = [r.getMessage() for r in caplog.records if "without checking whether it is a newer version" in r.getMessage()]
    assert len(said) == 2 and any("splunk-soar" in m for m in said) and any("xsoar" in m for m in said)


def test_contract_splunk_soar_a_container_it_may_not_read_keeps_the_duplicate_answer_and_says_so_once(
        soar_server, sample_events, caplog):
    from splunk_soar_contract import Fault

    first, closed = _versions(sample_events)
    refusal = {"failed": True, "message": "Permission denied: view container"}
    with SplunkSoarSink(soar_server.url, token=soar_server.token, delivery=FAST) as sink:
        assert _send(sink, first) == (1, 0, [])
        soar_server.faults += [Fault(403, refusal, path_prefix="/rest/container/")] * 2
        with caplog.at_level("WARNING"):
            assert _send(sink, closed, closed) == (0, 2, [])
    assert caplog.text.count("cannot be read") == 1 and soar_server.token not in caplog.text


def test_contract_splunk_soar_an_update_refused_for_a_while_is_retried_and_made_once(soar_server, sample_events):
    from splunk_soar_contract import Fault

    first, closed = _versions(sample_events)
    with SplunkSoarSink(soar_server.url, token=soar_server.token, delivery=FAST, sleep=lambda s: None) as sink:
        assert _send(sink, first) == (1, 0, [])
        soar_server.faults.append(Fault(503, {"failed": True, "message": "busy"}, path_prefix="/rest/container/1"))
        soar_server.faults.append(Fault(503, {"failed": True, "message": "busy"}, path_prefix="/rest/container/1"))
        assert _send(sink, closed) == (1, 0, [])          # GET refused, then the update POST refused, then made
    (cid,) = soar_server.containers
    assert soar_server.containers[cid]["data"]["wia_event"] == closed
    event_artifacts = [a for a in soar_server.artifacts.values() if a["container"] == cid and a["label"] == "event"]
    assert len(event_artifacts) == 2                      # the retry's artifact was the same one: not added twice


def test_contract_xsoar_an_incident_edited_between_search_and_update_is_updated_on_the_retry(sample_events):
    # XSOAR bumps an incident's version on every change (an analyst, a playbook task): the update then carries a
    # stale version and XSOAR refuses it (optimistic locking); the retry searches again and has the current one
    from xsoar_contract import XsoarServer

    class PlaybookEditing(XsoarServer):
        edits_left = 1

        def _search(self, body):
            answer = json.loads(json.dumps(super()._search(body)))     # as sent, before the edit below
            if self.edits_left and self.incidents:
                self.edits_left -= 1
                for incident in self.incidents.values():
                    incident["version"] += 1          # a task completed right after the search
            return answer

    first, closed = _versions(sample_events)
    with PlaybookEditing() as server:
        with XsoarSink(server.url, token=server.api_key, delivery=FAST, sleep=lambda s: None) as sink:
            server.edits_left = 0
            assert _send(sink, first) == (1, 0, [])
            server.edits_left = 1
            assert _send(sink, closed) == (1, 0, [])
        (incident,) = server.incidents.values()
    assert json.loads(incident["rawJSON"]) == closed and incident["version"] == 3

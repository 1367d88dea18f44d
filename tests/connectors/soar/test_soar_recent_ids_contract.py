"""Contract tests: what the SOAR sinks remember about sent events is bounded (a gateway fans out to SOAR for
weeks), and an event id pushed out of the tables is still answered right by the server's own lookup."""
from __future__ import annotations

import copy
import uuid

from wia_security.connectors.delivery import DeliveryPolicy
from wia_security.connectors.soar._recent import RECENT_IDS_KEPT
from wia_security.connectors.soar.splunk_soar import SplunkSoarSink
from wia_security.connectors.soar.xsoar import XsoarSink

from splunk_soar_contract import Fault

FAST = DeliveryPolicy(max_wait=0, max_attempts=2, initial_backoff=0.01, max_elapsed=30)
KEPT = 20
SENT = 60


def _distinct(sample_events, n: int) -> list[dict]:
    events = []
    for i in range(n):
        event = copy.deepcopy(sample_events[i % len(sample_events)])
        event["id"] = str(uuid.uuid4())
        events.append(event)
    return events


def test_contract_splunk_soar_tables_stay_at_the_bound_and_an_evicted_resend_makes_no_second_container(
        soar_server, sample_events):
    events = _distinct(sample_events, SENT)
    with SplunkSoarSink(soar_server.url, token=soar_server.token, delivery=FAST, playbook="local/wia_triage",
                        recent_ids_kept=KEPT) as sink:
        report = sink.send(events)
        assert (report.delivered, report.failed) == (SENT, [])
        assert len(sink.containers) == KEPT and len(sink.playbook_runs) == KEPT
        assert set(sink.containers) == {e["id"] for e in events[-KEPT:]}
        server_ids = {c["source_data_identifier"]: cid for cid, c in soar_server.containers.items()}

        recent = sink.send([copy.deepcopy(events[-1])])           # still remembered: as before
        evicted = sink.send([copy.deepcopy(events[0])])           # pushed out: SOAR's existing_container_id answers
        assert (recent.duplicates, evicted.duplicates) == (1, 1)
        assert len(soar_server.containers) == SENT                # no second container for either
        assert len(soar_server.playbook_runs) == SENT             # and no second playbook run
        assert sink.containers[events[0]["id"]] == server_ids[events[0]["id"]]
        assert len(sink.containers) == KEPT


def test_contract_splunk_soar_events_failing_for_good_are_not_remembered_for_ever(soar_server, sample_events):
    events = _distinct(sample_events, SENT)
    soar_server.faults += [Fault(503, {"failed": True, "message": "busy"}, path_prefix="/rest/container")] * (2 * SENT)
    with SplunkSoarSink(soar_server.url, token=soar_server.token, delivery=FAST, recent_ids_kept=KEPT,
                        sleep=lambda _s: None) as sink:
        report = sink.send(events)
        report.merge(sink.flush())
        assert len(report.failed) == SENT
        # each create went unanswered for good (the container may exist): kept for a retry only within the bound
        assert len(sink._unanswered) == KEPT


def test_contract_xsoar_incidents_stay_at_the_bound_and_an_evicted_resend_makes_no_second_incident(
        xsoar_server, sample_events):
    events = _distinct(sample_events, SENT)
    with XsoarSink(xsoar_server.url, token=xsoar_server.api_key, delivery=FAST, recent_ids_kept=KEPT) as sink:
        report = sink.send(events)
        assert (report.delivered, report.failed) == (SENT, [])
        assert len(sink.incidents) == KEPT
        assert set(sink.incidents) == {e["id"] for e in events[-KEPT:]}
        first_incident = next(i["id"] for i in xsoar_server.incidents.values()
                              if i["CustomFields"].get("wiaeventid") == events[0]["id"])

        recent = sink.send([copy.deepcopy(events[-1])])
        evicted = sink.send([copy.deepcopy(events[0])])           # the search before create finds it
        assert (recent.duplicates, evicted.duplicates) == (1, 1)
        assert len(xsoar_server.incidents) == SENT
        assert sink.incidents[events[0]["id"]] == str(first_incident)
        assert len(sink.incidents) == KEPT


def test_default_bound_is_documented_and_used():
    assert RECENT_IDS_KEPT == 10_000
    sink = SplunkSoarSink("https://soar.example.com", token="t")
    assert sink.containers.limit == sink.playbook_runs.limit == RECENT_IDS_KEPT

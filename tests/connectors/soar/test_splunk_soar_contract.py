"""Splunk SOAR sink, contract test: requests (the HTTP client the sink uses; Splunk SOAR has no
official REST client) against tests/servers/splunk_soar_contract.py, which enforces the documented
request shapes, the ph-auth-token header, labels/severities and the source_data_identifier rule."""
from __future__ import annotations

import copy
import json

import pytest

from wia_security import AlertBuilder
from wia_security.connectors import open_sink
from wia_security.connectors.delivery import DeliveryPolicy
from wia_security.connectors.soar.splunk_soar import SplunkSoarSink

from .conftest import Sleeps
from splunk_soar_contract import Fault

FAST = DeliveryPolicy(max_wait=0, max_attempts=4, initial_backoff=0.01, max_elapsed=30)


def _sink(server, **options) -> SplunkSoarSink:
    options.setdefault("token", server.token)
    options.setdefault("delivery", FAST)
    return SplunkSoarSink(server.url, **options)


def test_contract_every_sample_becomes_a_container_with_cef_artifacts(soar_server, sample_events):
    with _sink(soar_server) as sink:
        report = sink.send(sample_events)
        report.merge(sink.flush())
    assert (report.delivered, report.duplicates, report.failed) == (7, 0, [])
    assert len(soar_server.containers) == 7
    by_sdi = {c["source_data_identifier"]: c for c in soar_server.containers.values()}
    assert set(by_sdi) == {e["id"] for e in sample_events}
    alert = next(e for e in sample_events if e["type"] == "alert")
    container = by_sdi[alert["id"]]
    assert container["name"] == alert["data"]["title"] and container["label"] == "events"
    assert container["severity"] == "high" and container["status"] == "new"     # severity 7 -> band critical -> high
    assert container["data"]["wia_event"] == alert
    artifacts = [a for a in soar_server.artifacts.values() if a["container"] == container["id"]]
    event_artifact = next(a for a in artifacts if a["label"] == "event")
    assert event_artifact["cef"]["sourceAddress"] == "192.168.1.100"
    assert event_artifact["cef"]["destinationUserName"] == "jsmith"
    assert event_artifact["cef"]["mitreTechniqueId"] == "T1059.001"
    assert event_artifact["cef"]["wiaEventId"] == alert["id"]
    indicator_cef = {k: v for a in artifacts if a["label"] == "indicator" for k, v in a["cef"].items()}
    assert indicator_cef == {"fileHash": "d41d8cd98f00b204e9800998ecf8427e", "destinationAddress": "185.220.101.45",
                             "destinationDnsDomain": "malware-c2.evil.com"}
    assert all(a["cef_types"] for a in artifacts)
    # Every request carried the token header (masked in the server's log).
    assert all(r.headers.get("ph-auth-token") == "***" for r in soar_server.requests)


@pytest.mark.parametrize("duplicate_status", [200, 400])
def test_contract_dedupe_by_event_id(soar_server, sample_events, duplicate_status):
    soar_server.duplicate_status = duplicate_status
    with _sink(soar_server) as sink:
        first = sink.send(sample_events[:3])
        again = sink.send(sample_events[:3] + [copy.deepcopy(sample_events[3])] * 2)
        report = again.merge(sink.flush())
    assert first.delivered == 3
    assert (report.delivered, report.duplicates, report.failed) == (1, 4, [])
    assert len(soar_server.containers) == 4
    # The sink knows every event's container, new or found already there.
    assert set(sink.containers) == {e["id"] for e in sample_events[:4]}


def test_contract_playbook_runs_on_each_new_container_and_status_is_read(soar_server, sample_events):
    with _sink(soar_server, playbook="local/wia_triage") as sink:
        sink.send(sample_events[:2])
        sink.send(sample_events[:1])                         # duplicate: no second run
        runs = dict(sink.playbook_runs)
        assert len(runs) == 2 and all(isinstance(r, int) for r in runs.values())
        run_id = next(iter(runs.values()))
        assert sink.playbook_run_status(run_id) == "running"
        assert sink.playbook_run_status(run_id) == "success"
        container_id = sink.containers[sample_events[0]["id"]]
        assert sink.container_status(container_id) == "new"
        assert sink.find_container(sample_events[0]["id"])["id"] == container_id
        assert sink.find_container("no-such-event") is None
    assert {r["playbook"] for r in soar_server.playbook_runs.values()} == {"local/wia_triage"}
    assert {r["scope"] for r in soar_server.playbook_runs.values()} == {"new"}


def test_contract_unknown_playbook_keeps_the_container_and_records_why(soar_server, sample_events):
    with _sink(soar_server, playbook="local/nope") as sink:
        report = sink.send(sample_events[:1])
        report.merge(sink.flush())
    assert report.delivered == 1
    (reason,) = sink.playbook_runs.values()
    assert "not started" in reason and "local/nope" in reason


def test_contract_retries_503_honouring_retry_after(soar_server, sample_events):
    soar_server.faults += [Fault(503, {"failed": True, "message": "busy"}, {"Retry-After": "2"}, path_prefix="/rest/container")] * 2
    sleeps = Sleeps()
    with _sink(soar_server, sleep=sleeps) as sink:
        report = sink.send(sample_events[:1])
        report.merge(sink.flush())
    assert report.delivered == 1 and not report.failed
    assert len(soar_server.calls("/rest/container")) == 3
    assert len(sleeps) == 2 and all(s >= 2 for s in sleeps)


def test_contract_gives_up_after_the_policy_and_returns_every_event(soar_server, sample_events):
    soar_server.faults += [Fault(500, {"failed": True, "message": "internal error"}, path_prefix="/rest/container")] * 10
    with _sink(soar_server, sleep=Sleeps()) as sink:
        report = sink.send(sample_events[:2])
        report.merge(sink.flush())
    assert report.delivered == 0 and len(report.failed) == 2
    assert {r.event["id"] for r in report.failed} == {e["id"] for e in sample_events[:2]}
    assert all(r.retryable and "gave up after 4 attempt(s)" in r.reason and "internal error" in r.reason for r in report.failed)


def test_contract_bad_label_fails_without_retry_with_the_servers_reason(soar_server, sample_events):
    with _sink(soar_server, label="not-a-label", sleep=Sleeps()) as sink:
        report = sink.send(sample_events[:1])
        report.merge(sink.flush())
    (rejected,) = report.failed
    assert "Invalid label" in rejected.reason and not rejected.retryable
    assert len(soar_server.calls("/rest/container")) == 1


def test_contract_wrong_token_fails_and_is_never_echoed(soar_server, sample_events):
    secret = "wrong-token-1234567890"
    with _sink(soar_server, token=secret, sleep=Sleeps()) as sink:
        report = sink.send(sample_events[:2])
        report.merge(sink.flush())
        assert secret not in repr(sink)
    assert len(report.failed) == 2
    assert all("token" in r.reason and "401" in r.reason and secret not in r.reason for r in report.failed)
    assert soar_server.containers == {}


def test_contract_mixed_faults_lose_nothing(soar_server):
    """Accounting over a run with transient faults, duplicates and one bad request: every event is
    delivered, a duplicate, or returned failed -- and every delivered one is in SOAR exactly once."""
    events = [AlertBuilder().title(f"alert {n}").severity(n % 11).build().to_dict() for n in range(30)]
    soar_server.faults += [Fault(503, {"failed": True, "message": "busy"}, path_prefix="/rest/container"),
                           Fault(429, {"failed": True, "message": "slow down"}, {"Retry-After": "0"}, path_prefix="/rest/container")]
    with _sink(soar_server, sleep=Sleeps()) as sink:
        report = sink.send(events[:20])
        report.merge(sink.send(events[10:30]))           # 10 repeats
        report.merge(sink.flush())
    assert report.delivered + report.duplicates + len(report.failed) == 40
    assert (report.delivered, report.duplicates, len(report.failed)) == (30, 10, 0)
    sdis = [c["source_data_identifier"] for c in soar_server.containers.values()]
    assert sorted(sdis) == sorted(e["id"] for e in events)


def test_contract_open_sink_by_url_with_token_from_environment(soar_server, sample_events, monkeypatch):
    monkeypatch.setenv("SOAR_TOKEN", soar_server.token)
    url = soar_server.url.replace("http://", "phantom+http://") + "?token_env=SOAR_TOKEN&label=wia_security&max_wait=0"
    with open_sink(url) as sink:
        report = sink.send(sample_events[:1])
        report.merge(sink.flush())
    assert report.delivered == 1
    assert next(iter(soar_server.containers.values()))["label"] == "wia_security"
    with pytest.raises(Exception, match="token"):
        open_sink(soar_server.url.replace("http://", "splunksoar+http://") + "?token=literal")


def test_tls_verification_is_on_by_default():
    sink = SplunkSoarSink("https://soar.example.com", token="x", delivery=FAST)
    try:
        assert sink.session.verify is True
        assert "x" not in repr(sink).replace("example", "")
    finally:
        sink.close()


def test_connection_refused_is_retried_then_returned(sample_events):
    sink = SplunkSoarSink("http://127.0.0.1:9", token="x", delivery=DeliveryPolicy(max_wait=0, max_attempts=2, initial_backoff=0),
                          sleep=Sleeps())
    with sink:
        report = sink.send(sample_events[:1])
        report.merge(sink.flush())
    (rejected,) = report.failed
    assert rejected.retryable and "gave up after 2 attempt(s)" in rejected.reason


@pytest.mark.parametrize("path", ["/rest/container", "/rest/playbook_run"])
def test_contract_a_huge_failure_message_is_cut_in_the_reason(soar_server, sample_events, path):
    # SOAR's message goes into the reason, the dead-letter record and the playbook note: a server or proxy
    # answering megabytes there must not copy them into every record
    huge = "no such label " + "x" * 200_000
    soar_server.faults.append(Fault(400, {"failed": True, "message": huge}, path_prefix=path))
    with _sink(soar_server, playbook="local/wia_triage") as sink:
        report = sink.send(sample_events[:1])
        report.merge(sink.flush())
        notes = [r.reason for r in report.failed] + [str(v) for v in sink.playbook_runs.values()]
        records = [json.dumps(r.errors) for r in report.failed]
    assert any("no such label xxx" in note for note in notes)
    assert all(len(note) < 1_000 for note in notes)
    assert all(len(record) < 6_000 for record in records)      # the error document in the record is cut too

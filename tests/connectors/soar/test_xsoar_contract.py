"""XSOAR sink, contract test: demisto-py (XSOAR's official API client) against
tests/servers/xsoar_contract.py, which enforces createIncident/searchIncidents request shapes,
the Authorization (and XSOAR 8 x-xdr-auth-id) headers, incident types, severities and versions."""
from __future__ import annotations

import copy
import json

import pytest

from wia_security import AlertBuilder, IncidentBuilder
from wia_security.connectors import open_sink
from wia_security.connectors.delivery import DeliveryPolicy
from wia_security.connectors.soar.xsoar import XsoarSink
from wia_security.errors import DeliveryError

from .conftest import Sleeps
from xsoar_contract import Fault, XsoarServer

FAST = DeliveryPolicy(max_wait=0, max_attempts=4, initial_backoff=0.01, max_elapsed=30)


def _sink(server, **options) -> XsoarSink:
    options.setdefault("token", server.api_key)
    options.setdefault("delivery", FAST)
    return XsoarSink(server.url, **options)


def test_contract_incidents_carry_type_severity_labels_fields_and_raw_json(xsoar_server, sample_events):
    with _sink(xsoar_server) as sink:
        report = sink.send(sample_events)
        report.merge(sink.flush())
    assert (report.delivered, report.duplicates, report.failed) == (7, 0, [])
    incidents = list(xsoar_server.incidents.values())
    assert len(incidents) == 7 and {i["type"] for i in incidents} == {"WIA Security Event"}
    by_id = {i["CustomFields"]["wiaeventid"]: i for i in incidents}
    alert = next(e for e in sample_events if e["type"] == "alert")
    incident = by_id[alert["id"]]
    assert incident["name"] == alert["data"]["title"]
    assert incident["severity"] == 4                                    # WIA 7 -> band critical -> XSOAR 4
    assert json.loads(incident["rawJSON"]) == alert
    assert incident["occurred"] == alert["timestamp"]
    labels = {(l["type"], l["value"]) for l in incident["labels"]}
    assert {("wia_event_id", alert["id"]), ("wia_event_type", "alert"), ("environment", "production"),
            ("tag", "powershell")} <= labels
    assert incident["CustomFields"]["wiamitretechniqueid"] == "T1059"
    assert incident["CustomFields"]["wiamitresubtechniqueid"] == "T1059.001"
    assert incident["CustomFields"]["wiamitretactic"] == "Execution"
    assert "hash:d41d8cd98f00b204e9800998ecf8427e" in incident["CustomFields"]["wiaindicators"]
    severities = {json.loads(i["rawJSON"])["severity"]: i["severity"] for i in incidents}
    assert all(xs in (0.5, 1, 2, 3, 4) for xs in severities.values())
    assert all(r.headers["authorization"] == "***" for r in xsoar_server.requests)


def test_contract_dedupe_by_event_id(xsoar_server, sample_events):
    with _sink(xsoar_server) as sink:
        sink.send(sample_events[:3])
        report = sink.send(sample_events[:3] + [copy.deepcopy(sample_events[3])] * 2)
        report.merge(sink.flush())
    assert (report.delivered, report.duplicates) == (1, 4)
    assert len(xsoar_server.incidents) == 4
    assert set(sink.incidents) == {e["id"] for e in sample_events[:4]}


def test_contract_update_changes_the_incident_under_version_control(xsoar_server):
    builder = IncidentBuilder().title("Ransomware on FIN-01").category("ransomware").status("triaging").severity(9)
    event = builder.build().to_dict()
    with _sink(xsoar_server) as sink:
        sink.send([event])
        later = copy.deepcopy(event)
        later["data"]["status"] = "containing"
        later["severity"] = 6
        stored = sink.update(later)
        assert stored["version"] == 2 and stored["severity"] == 3
        assert stored["CustomFields"]["wiastatus"] == "containing"
        assert json.loads(stored["rawJSON"])["data"]["status"] == "containing"
        # A stale version is refused by XSOAR: the sink re-reads the current one on each update.
        again = sink.update(later)
        assert again["version"] == 3
        with pytest.raises(DeliveryError, match="no XSOAR incident"):
            sink.update(AlertBuilder().title("never sent").build().to_dict())
    assert len(xsoar_server.incidents) == 1


def test_contract_search(xsoar_server, sample_events):
    with _sink(xsoar_server) as sink:
        sink.send(sample_events)
        high = sink.search('type:"WIA Security Event" and severity:>=3')
        vulns = sink.search('wiaeventtype:"vulnerability"')
    assert {json.loads(i["rawJSON"])["id"] for i in vulns} == {e["id"] for e in sample_events if e["type"] == "vulnerability"}
    assert high and all(i["severity"] >= 3 for i in high)


def test_contract_retries_429_honouring_retry_after(xsoar_server, sample_events):
    xsoar_server.faults.append(Fault(429, {"id": "rate", "status": 429, "title": "Too Many Requests", "detail": "slow down"},
                                     {"Retry-After": "3"}, path_prefix="/incident"))
    sleeps = Sleeps()
    with _sink(xsoar_server, sleep=sleeps) as sink:
        report = sink.send(sample_events[:1])
        report.merge(sink.flush())
    assert report.delivered == 1 and sleeps and sleeps[0] >= 3
    assert len(xsoar_server.incidents) == 1


def test_contract_gives_up_and_returns_the_event(xsoar_server, sample_events):
    xsoar_server.faults += [Fault(502, {"id": "bad_gateway", "status": 502, "title": "Bad Gateway", "detail": "upstream"},
                                  path_prefix="/incident")] * 10
    with _sink(xsoar_server, sleep=Sleeps()) as sink:
        report = sink.send(sample_events[:1])
        report.merge(sink.flush())
    (rejected,) = report.failed
    assert rejected.retryable and "502" in rejected.reason and rejected.event == sample_events[0]


def test_contract_unknown_incident_type_fails_without_retry(xsoar_server, sample_events):
    with _sink(xsoar_server, incident_type="Nope", sleep=Sleeps()) as sink:
        report = sink.send(sample_events[:1])
        report.merge(sink.flush())
    (rejected,) = report.failed
    assert "does not exist" in rejected.reason and not rejected.retryable
    assert len([r for r in xsoar_server.requests if r.path == "/incident"]) == 1    # one create, no retry


def test_contract_wrong_key_fails_and_is_never_echoed(xsoar_server, sample_events):
    secret = "not-the-key-0123456789"
    with _sink(xsoar_server, token=secret, sleep=Sleeps()) as sink:
        report = sink.send(sample_events[:1])
        report.merge(sink.flush())
        assert secret not in repr(sink)
    (rejected,) = report.failed
    assert "401" in rejected.reason and "API key" in rejected.reason and secret not in rejected.reason


def test_contract_xsoar8_auth_id_and_api_path(sample_events):
    with XsoarServer(auth_id="17") as server:
        with _sink(server, auth_id="17") as sink:
            report = sink.send(sample_events[:1])
            report.merge(sink.flush())
        assert report.delivered == 1
        assert all(r.path.startswith("/xsoar/") and r.headers["x-xdr-auth-id"] == "***" for r in server.requests)
        with _sink(server, auth_id="18", sleep=Sleeps()) as sink:
            report = sink.send(sample_events[1:2])
            report.merge(sink.flush())
        assert report.failed and "401" in report.failed[0].reason


def test_contract_open_sink_by_url(xsoar_server, sample_events, monkeypatch):
    monkeypatch.setenv("XSOAR_KEY", xsoar_server.api_key)
    url = xsoar_server.url.replace("http://", "xsoar+http://") + "?token_env=XSOAR_KEY&max_wait=0"
    with open_sink(url) as sink:
        report = sink.send(sample_events[:2])
        report.merge(sink.flush())
    assert report.delivered == 2


def test_tls_verification_is_on_by_default():
    sink = XsoarSink("https://xsoar.example.com", token="k", delivery=FAST)
    try:
        assert sink.client.api_client.configuration.verify_ssl is True
    finally:
        sink.close()

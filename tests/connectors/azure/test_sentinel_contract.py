"""Sentinel connector, contract tests: the real azure-monitor-ingestion / azure-mgmt-securityinsight /
azure-identity clients against the TLS contract server (tests/servers/sentinel_contract.py)."""
from __future__ import annotations

import copy
import json
import logging
import uuid

import pytest

pytest.importorskip("azure.monitor.ingestion", reason="the azure extra is not installed")

from servers.sentinel_contract import MAX_INGESTION_REQUEST_BYTES, sentinel, sentinel_server  # noqa: E402,F401
from strategies import event_dicts  # noqa: E402

from wia_security import validate_event  # noqa: E402
from wia_security.connectors import open_sink  # noqa: E402
from wia_security.connectors.azure import sentinel as sentinel_mod  # noqa: E402
from wia_security.connectors.azure.sentinel import (COLUMNS, MAX_FIELD_BYTES, MAX_REQUEST_BYTES,  # noqa: E402
                                                    SentinelIncidents, SentinelSink, incident_to_event)
from wia_security.connectors.delivery.policy import DeliveryPolicy  # noqa: E402

DCR = "dcr-00000000000000000000000000000000"
FAST = DeliveryPolicy(max_wait=0, initial_backoff=0.001, max_backoff=0.01, max_attempts=4)


def make_sink(server, **options) -> SentinelSink:
    url = f"sentinel://localhost:{server.port}/{DCR}?ca_file={server.ca_file}"
    return open_sink(url, delivery=options.pop("delivery", FAST), **options)


def padded(event: dict, size: int) -> dict:
    """A copy of `event` about `size` bytes long (padding in meta.raw, a string field)."""
    event = copy.deepcopy(event)
    event["id"] = str(uuid.uuid4())
    event.setdefault("meta", {})["raw"] = "x" * max(0, size - len(json.dumps(event)))
    return event


def test_limits_are_the_documented_ones():
    assert MAX_REQUEST_BYTES == 1024 * 1024 == MAX_INGESTION_REQUEST_BYTES
    assert MAX_FIELD_BYTES == 64 * 1024
    assert SentinelSink.max_batch_bytes == MAX_REQUEST_BYTES


def test_contract_rows_land_in_the_stream_with_a_managed_identity_token(sentinel, samples):
    events = list(samples.values())
    with make_sink(sentinel) as sink:
        report = sink.send(events)
        report.merge(sink.flush())
    assert report.delivered == len(events) and not report.failed
    rows = sentinel.state.rows[(DCR, "Custom-WIASecurity")]
    assert sorted(r["EventId"] for r in rows) == sorted(e["id"] for e in events)
    by_id = {r["EventId"]: r for r in rows}
    alert = samples["alert-sample"]
    row = by_id[alert["id"]]
    assert row["Event"] == alert                      # the whole event survives, lossless
    assert row["Title"] == alert["data"]["title"] and row["MitreTechnique"] == "T1059.001"
    assert row["HostName"] == "WORKSTATION-001" and row["SeverityBand"] == "critical"
    assert set(row) <= {name for name, _, _ in COLUMNS}
    # the token came from the managed identity endpoint, for the Azure Monitor audience
    assert sentinel.state.token_requests[0]["resource"] == "https://monitor.azure.com"
    assert all(r.status == 204 for r in sentinel.state.requests)


def test_contract_chunks_requests_at_one_mib(sentinel, samples):
    base = samples["network-event-sample"]
    events = [padded(base, 40_000) for _ in range(100)]    # ~4 MB in all
    with make_sink(sentinel) as sink:
        report = sink.send(events)
        report.merge(sink.flush())
    assert report.delivered == 100 and not report.failed
    sizes = [r.body_bytes for r in sentinel.state.requests]
    assert len(sizes) >= 4, sizes
    assert all(0 < size <= MAX_REQUEST_BYTES for size in sizes), sizes
    assert max(sizes) > MAX_REQUEST_BYTES * 0.9         # batches are filled, not tiny
    received = [r["EventId"] for r in sentinel.state.all_rows()]
    assert sorted(received) == sorted(e["id"] for e in events)   # each exactly once


def test_contract_oversized_records_are_dead_lettered_not_fatal(sentinel, samples):
    small = [padded(samples["alert-sample"], 2_000) for _ in range(3)]
    over_field = padded(samples["alert-sample"], MAX_FIELD_BYTES + 1_000)
    over_request = padded(samples["alert-sample"], MAX_REQUEST_BYTES + 10_000)
    with make_sink(sentinel) as sink:
        report = sink.send([small[0], over_request, small[1], over_field, small[2]])
        report.merge(sink.flush())
    assert report.delivered == 3
    failed = {r.event["id"]: r for r in report.failed}
    assert set(failed) == {over_field["id"], over_request["id"]}
    assert all(not r.retryable and "64" in r.reason for r in failed.values())
    assert sorted(r["EventId"] for r in sentinel.state.all_rows()) == sorted(e["id"] for e in small)
    assert all(r.status == 204 for r in sentinel.state.requests)     # nothing too big was ever sent


def test_contract_retries_503_and_honours_retry_after(sentinel, samples):
    sentinel.state.fail_next(503, times=2, retry_after="2")
    slept: list[float] = []
    sink = make_sink(sentinel)
    sink._sleep = slept.append                      # record the backoff instead of waiting
    events = list(samples.values())
    report = sink.send(events)
    report.merge(sink.flush())
    sink.close()
    assert report.delivered == len(events) and not report.failed
    assert [r.status for r in sentinel.state.requests] == [503, 503, 204]
    assert slept and all(s >= 2 for s in slept)     # Retry-After is a floor


def test_contract_retry_budget_spent_reports_retryable_failures(sentinel, samples):
    sentinel.state.fail_next(429, times=10, retry_after="0", code="TooManyRequests")
    events = list(samples.values())
    with make_sink(sentinel, delivery=DeliveryPolicy(max_wait=0, max_attempts=2, initial_backoff=0)) as sink:
        report = sink.send(events)
        report.merge(sink.flush())
    assert report.delivered == 0 and len(report.failed) == len(events)
    assert all(r.retryable and "429" in r.reason for r in report.failed)


def test_contract_permanent_errors_are_not_retried(sentinel, samples):
    url = f"sentinel://localhost:{sentinel.port}/{DCR}/Custom-Undeclared?ca_file={sentinel.ca_file}"
    with open_sink(url, delivery=FAST) as sink:
        report = sink.send(list(samples.values()))
        report.merge(sink.flush())
    assert len(report.failed) == 7 and not report.delivered
    assert all(not r.retryable and "400 InvalidStream" in r.reason for r in report.failed)
    assert len(sentinel.state.requests) == 0 or all(r.status == 400 for r in sentinel.state.requests)


def test_contract_token_never_logged_or_reported(sentinel, samples, caplog):
    caplog.set_level(logging.DEBUG)
    sentinel.state.fail_next(500, times=10)
    with make_sink(sentinel, delivery=DeliveryPolicy(max_wait=0, max_attempts=2, initial_backoff=0)) as sink:
        report = sink.send([samples["alert-sample"]])
        report.merge(sink.flush())
        text = repr(sink) + " ".join(r.reason + json.dumps(r.errors, default=str) for r in report.failed)
    assert sentinel.state.authorizations, "the client did authenticate"
    assert sentinel.state.token not in text
    assert sentinel.state.token not in caplog.text


def test_tls_is_verified_by_default(sentinel, samples):
    """Without trusting the contract server's throwaway CA the request fails (TLS verification on)."""
    url = f"sentinel://localhost:{sentinel.port}/{DCR}"
    with open_sink(url, delivery=FAST) as sink:
        report = sink.send([samples["alert-sample"]])
        report.merge(sink.flush())
    assert not report.delivered and report.failed
    assert "TLS verification failed" in report.failed[0].reason and not report.failed[0].retryable
    assert not sentinel.state.requests


def test_url_errors_name_the_problem():
    from wia_security.errors import ConfigError
    with pytest.raises(ConfigError, match="dcr-"):
        open_sink("sentinel://dce.example/not-a-dcr")
    with pytest.raises(ConfigError, match="unknown option"):
        open_sink(f"sentinel://dce.example/{DCR}?bogus=1")


# -- incidents ---------------------------------------------------------------------------------------

def incidents_client(server) -> SentinelIncidents:
    ws = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg-sec/providers/" \
         "Microsoft.OperationalInsights/workspaces/ws-sec"
    return open_sink(f"sentinel-incidents://{ws}?base_url={server.endpoint}&ca_file={server.ca_file}")


def test_contract_incidents_upsert_list_and_close(sentinel, samples):
    client = incidents_client(sentinel)
    incident, alert = samples["incident-sample"], samples["alert-sample"]
    report = client.send([incident, alert, samples["network-event-sample"]])
    assert report.delivered == 2
    assert len(report.failed) == 1 and "network_event" in report.failed[0].reason
    stored = sentinel.state.incidents[incident["id"]]["properties"]
    assert stored["title"] == incident["data"]["title"]
    assert stored["severity"] == "High" and stored["status"] == "Active"
    # re-sending updates the same incident (its id is the event's id), no duplicate
    client.send([incident])
    assert len(sentinel.state.incidents) == 2
    events = list(client.list_events(top=1))        # forces nextLink paging
    assert len(events) == 2
    for event in events:
        assert validate_event(event).valid, validate_event(event).errors
    back = {e["id"]: e for e in events}[incident["id"]]
    assert back["severity"] == incident["severity"]
    assert back["data"]["category"] == "ransomware" and back["data"]["priority"] == "critical"
    closed = client.set_status(incident["id"], "Closed", classification="TruePositive")
    assert closed["properties"]["status"] == "Closed"
    assert sentinel.state.incidents[incident["id"]]["properties"]["classification"] == "TruePositive"
    client.close()


def test_incident_mapping_of_a_foreign_incident_is_valid():
    foreign = {"id": "/subscriptions/s/.../incidents/abc", "name": "abc",
               "properties": {"title": "Brute force", "severity": "Medium", "status": "New",
                              "incidentNumber": 7, "createdTimeUtc": "2025-01-02T03:04:05Z"}}
    event = incident_to_event(foreign)
    assert validate_event(event).valid, validate_event(event).errors
    assert event["severity"] == sentinel_mod.SEVERITY_SCORE["Medium"]
    assert event["data"]["incident_id"] == "SENTINEL-7"


def test_rows_for_generated_events_fit_the_columns():
    names = {name for name, _, _ in COLUMNS}
    for event in event_dicts(200, seed=5):
        row = sentinel_mod.to_row(event)
        assert set(row) <= names
        assert row["Event"] is event and row["EventId"] == event["id"]

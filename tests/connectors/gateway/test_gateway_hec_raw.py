"""Contract test: `POST /services/collector/raw`, Splunk HEC's raw endpoint, as forwarders (Vector's splunk_hec_logs
sink, Fluent Bit's splunk output with Splunk_Send_Raw, OpenTelemetry's splunk_hec exporter) send to it: a channel
in `X-Splunk-Request-Channel` or `?channel=`, metadata in `?sourcetype=`/`index`/`source`/`host`, `Authorization:
Splunk <token>`, newline-separated records, maybe gzip. Each value of the body is a WIA event; text that is none is
dead-lettered with its reason and answered HEC code 6. Real gateway, requests as the client."""
from __future__ import annotations

import gzip
import json
import uuid

import pytest
import requests
from gateway_helpers import AUTH, TOKEN
from strategies import event_dicts

SPLUNK = {"Authorization": f"Splunk {TOKEN}"}
RAW = "/services/collector/raw"


def stored_ids(gw) -> set[str]:
    r = requests.get(gw.url + "/v1/events", params={"limit": 1000}, headers=AUTH)
    return {e["id"] for e in r.json()["events"]}


def dead_letters(tmp_path) -> list[dict]:
    path = tmp_path / "dead.ndjson"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def metric(gw, line: str) -> float:
    text = requests.get(gw.url + "/metrics", headers=AUTH).text
    return float(next(x for x in text.splitlines() if x.startswith(line + " ")).split()[-1])


@pytest.mark.parametrize("path", [RAW, RAW + "/1.0"])
def test_contract_ndjson_with_a_channel_and_metadata_parameters_is_taken_with_an_ack(make_gateway, path):
    gw = make_gateway()
    events = event_dicts(5, seed=134)
    channel = str(uuid.uuid4())
    r = requests.post(gw.url + path, params={"channel": channel, "sourcetype": "wia:security", "index": "main",
                                             "source": "vector", "host": "edge-1"},
                      data="\n".join(json.dumps(e) for e in events) + "\n", headers=SPLUNK)
    assert (r.status_code, r.json()) == (200, {"text": "Success", "code": 0, "ackId": 0})
    assert stored_ids(gw) == {e["id"] for e in events}
    ack = requests.post(gw.url + "/services/collector/ack", params={"channel": channel}, json={"acks": [0, 1]},
                        headers=SPLUNK)
    assert ack.json() == {"acks": {"0": True, "1": False}}


def test_contract_channel_header_gzip_array_and_a_pretty_printed_event(make_gateway):
    gw = make_gateway()
    events = event_dicts(4, seed=135)
    headers = {**SPLUNK, "X-Splunk-Request-Channel": str(uuid.uuid4())}
    r = requests.post(gw.url + RAW, data=gzip.compress(json.dumps(events[:3]).encode()),
                      headers={**headers, "Content-Encoding": "gzip"})
    assert r.json() == {"text": "Success", "code": 0, "ackId": 0}
    r = requests.post(gw.url + RAW, data=json.dumps(events[3], indent=2), headers=headers)
    assert r.json() == {"text": "Success", "code": 0, "ackId": 1}
    assert stored_ids(gw) == {e["id"] for e in events}


def test_contract_without_a_channel_is_code_10_and_nothing_is_taken(make_gateway, tmp_path):
    gw = make_gateway()
    r = requests.post(gw.url + RAW, data=json.dumps(event_dicts(1, seed=136)[0]), headers=SPLUNK)
    assert (r.status_code, r.json()) == (400, {"text": "Data channel is missing", "code": 10})
    assert stored_ids(gw) == set() and dead_letters(tmp_path) == []
    assert metric(gw, 'wia_gateway_requests_refused_total{source="hec",reason="no_channel"}') == 1


def test_contract_text_that_is_no_wia_event_is_code_6_dead_lettered_and_the_rest_is_taken(make_gateway, tmp_path):
    gw = make_gateway()
    events = event_dicts(3, seed=137)
    invalid = {**events[2], "severity": 99}
    body = "\n".join([json.dumps(events[0]), "2026-12-06 10:00:01 INFO sshd[22]: Accepted publickey for root",
                      json.dumps(invalid), json.dumps(events[1])])
    r = requests.post(gw.url + RAW, params={"channel": str(uuid.uuid4())}, data=body, headers=SPLUNK)
    assert (r.status_code, r.json()) == (400, {"text": "Invalid data format", "code": 6, "invalid-event-number": 1})
    # nothing dropped: the events on either side are stored, each refused line is in the dead letter with its reason
    assert stored_ids(gw) == {events[0]["id"], events[1]["id"]}
    records = dead_letters(tmp_path)
    assert [r["reason"].split(":")[0] for r in records] == ["unparseable input", "invalid"]
    assert [r["where"].rsplit(":", 1)[1] for r in records] == ["2", "3"]       # the body's line numbers
    assert "Accepted publickey" in records[0]["raw"]
    assert records[1]["event"]["id"] == invalid["id"]
    assert metric(gw, 'wia_gateway_events_accepted_total{source="hec"}') == 2
    assert metric(gw, 'wia_gateway_events_rejected_total{source="hec",reason="unparseable"}') == 1
    assert metric(gw, 'wia_gateway_events_rejected_total{source="hec",reason="invalid"}') == 1
    # a forwarder that re-sends the batch after the 400 stores nothing twice
    r = requests.post(gw.url + RAW, params={"channel": str(uuid.uuid4())}, data=body, headers=SPLUNK)
    assert r.json()["code"] == 6
    assert len(requests.get(gw.url + "/v1/events", headers=AUTH).json()["events"]) == 2


def test_contract_auth_empty_and_too_many_values(make_gateway):
    gw = make_gateway(max_request_events=3)
    url, params = gw.url + RAW, {"channel": str(uuid.uuid4())}
    body = json.dumps(event_dicts(1, seed=138)[0])
    cases = [({}, 401, 2), ({"Authorization": "Splunk"}, 401, 3), ({"Authorization": "Splunk wrong-token-0123456789"}, 403, 4)]
    for headers, status, code in cases:
        r = requests.post(url, params=params, data=body, headers=headers)
        assert (r.status_code, r.json()["code"]) == (status, code), headers
    r = requests.post(url, params={**params, "token": TOKEN}, data=body)
    assert r.json()["code"] == 16                          # a token in the query string is never taken
    r = requests.post(url, params=params, data=" \n", headers=SPLUNK)
    assert (r.status_code, r.json()) == (400, {"text": "No data", "code": 5})
    r = requests.post(url, params=params, data="\n".join(["{}"] * 4), headers=SPLUNK)
    assert (r.status_code, r.json()) == (413, {"text": "Content too large", "code": 6})
    assert stored_ids(gw) == set()


@pytest.mark.parametrize(("path", "body", "expected"), [
    ("/services/collector/event", lambda e: json.dumps({"event": e}), {"text": "Internal server error", "code": 8}),
    (RAW + "?channel=c", json.dumps, {"text": "Internal server error", "code": 8}),
    ("/v1/events", json.dumps, {"error": {"code": "E5001",
                                          "message": "internal error handling this request (logged on the gateway)"}}),
])
def test_contract_an_internal_fault_is_hec_code_8_not_a_text_500(make_gateway, monkeypatch, path, body, expected):
    """Starlette answered any unexpected fault with a text/plain 500, on HEC paths too: Splunk's answer is code 8."""
    gw = make_gateway()

    async def broken(verdicts):
        raise RuntimeError("secret detail of the fault")
    monkeypatch.setattr(gw.gateway, "ingest", broken)
    r = requests.post(gw.url + path, data=body(event_dicts(1, seed=139)[0]),
                      headers=SPLUNK if path.startswith("/services") else AUTH)
    assert (r.status_code, r.json()) == (500, expected)
    assert "secret detail" not in r.text

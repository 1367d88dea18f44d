"""Contract test: the gateway's Splunk-HEC-compatible endpoint, driven by plain HTTP and by the project's HEC sink."""
from __future__ import annotations

import gzip
import json
import uuid

import pytest
import requests
from gateway_helpers import AUTH, TOKEN
from strategies import event_dicts

SPLUNK = {"Authorization": f"Splunk {TOKEN}"}


def hec_body(events, **extra) -> str:
    return "".join(json.dumps({"time": 1735689600.123, "sourcetype": f"wia:security:{e['type']}", "event": e, **extra})
                   for e in events)


def stored_ids(gw) -> set[str]:
    r = requests.get(gw.url + "/v1/events", params={"limit": 1000}, headers=AUTH)
    return {e["id"] for e in r.json()["events"]}


@pytest.mark.parametrize("path", ["/services/collector/event", "/services/collector", "/services/collector/event/1.0"])
def test_contract_concatenated_events_are_accepted(make_gateway, path):
    gw = make_gateway()
    events = event_dicts(20, seed=60)
    r = requests.post(gw.url + path, data=hec_body(events), headers=SPLUNK)
    assert (r.status_code, r.json()) == (200, {"text": "Success", "code": 0})
    assert stored_ids(gw) == {e["id"] for e in events}


def test_contract_event_as_a_json_string_and_gzip(make_gateway):
    gw = make_gateway()
    events = event_dicts(5, seed=61)
    body = "\n".join(json.dumps({"event": json.dumps(e)}) for e in events).encode()
    r = requests.post(gw.url + "/services/collector/event", data=gzip.compress(body),
                      headers={**SPLUNK, "Content-Encoding": "gzip"})
    assert r.json()["code"] == 0 and stored_ids(gw) == {e["id"] for e in events}


def test_contract_auth_codes(make_gateway):
    gw = make_gateway()
    body = hec_body(event_dicts(1, seed=62))
    url = gw.url + "/services/collector/event"
    cases = [({}, 401, 2), ({"Authorization": "Splunk"}, 401, 3), ({"Authorization": "Splunk wrong-token-0123456789"}, 403, 4)]
    for headers, status, code in cases:
        r = requests.post(url, data=body, headers=headers)
        assert (r.status_code, r.json()["code"]) == (status, code), headers
        assert TOKEN not in r.text
    r = requests.post(url, data=body, auth=("x", TOKEN))          # Basic with the token as password
    assert r.json()["code"] == 0
    assert requests.post(url, data=body, headers=AUTH).json()["code"] == 0   # Bearer too


def test_contract_invalid_event_is_named_like_splunk_and_the_rest_is_taken(make_gateway, tmp_path):
    gw = make_gateway()
    events = event_dicts(6, seed=63)
    bad = {**events[3], "timestamp": "yesterday"}
    body = hec_body(events[:3]) + hec_body([bad]) + hec_body(events[4:])
    r = requests.post(gw.url + "/services/collector/event", data=body, headers=SPLUNK)
    assert (r.status_code, r.json()) == (400, {"text": "Invalid data format", "code": 6, "invalid-event-number": 3})
    # Before it and after it: taken (Fluent Bit, the OTel exporter and kafka-connect never re-send after a 400)
    assert stored_ids(gw) == {e["id"] for e in events[:3] + events[4:]}
    # A forwarder that re-sends from the bad one on (as Splunk's rule says) sends stored events: nothing twice
    r = requests.post(gw.url + "/services/collector/event", data=hec_body(events[4:]), headers=SPLUNK)
    assert r.json()["code"] == 0 and len(stored_ids(gw)) == len(events) - 1
    [dead] = [json.loads(line) for line in (tmp_path / "dead.ndjson").read_text().splitlines()]
    assert dead["event"]["timestamp"] == "yesterday" and "/timestamp" in dead["reason"]
    # the batch is one line (as forwarders send it): the record names the event number, as the reply does
    assert dead["where"] == "hec:127.0.0.1[3]"


@pytest.mark.parametrize("refused, code", [({"time": 1}, 12), ({"event": "{not json"}, 6), ({"event": {}}, 13)])
def test_contract_dead_letter_records_name_the_hec_event_number(make_gateway, tmp_path, refused, code):
    """Every record said `hec:<client>:1` for a one-line batch, whichever event was refused."""
    gw = make_gateway()
    body = hec_body(event_dicts(2, seed=67)) + json.dumps(refused)
    r = requests.post(gw.url + "/services/collector/event", data=body, headers=SPLUNK)
    assert (r.json()["code"], r.json()["invalid-event-number"]) == (code, 2)
    [dead] = [json.loads(line) for line in (tmp_path / "dead.ndjson").read_text().splitlines()]
    assert dead["where"] == "hec:127.0.0.1[2]"


@pytest.mark.parametrize("body, code, index", [
    ('{"event": {}}', 13, 0), ('{"time": 1}', 12, 0), ('{"event": "x"} not json', 6, 1), ("", 5, None),
    ("[]", 5, None), ("\n[ ]\n", 5, None)])     # no event at all: these were answered Success (with an ackId)
def test_contract_malformed_bodies(make_gateway, body, code, index):
    gw = make_gateway()
    if code == 6:
        body = hec_body(event_dicts(1, seed=64)) + "{bad"
    r = requests.post(gw.url + "/services/collector/event", data=body, headers=SPLUNK)
    assert r.status_code == 400 and r.json()["code"] == code
    if index is not None:
        assert r.json()["invalid-event-number"] == index


def test_contract_channels_ack_and_health(make_gateway):
    gw = make_gateway()
    channel = str(uuid.uuid4())
    headers = {**SPLUNK, "X-Splunk-Request-Channel": channel}
    acks = [requests.post(gw.url + "/services/collector/event", data=hec_body(event_dicts(2, seed=65 + i)),
                          headers=headers).json()["ackId"] for i in range(3)]
    assert acks == [0, 1, 2]
    r = requests.post(gw.url + "/services/collector/ack", json={"acks": [0, 2, 7]}, headers=headers)
    assert r.json() == {"acks": {"0": True, "2": True, "7": False}}
    # only integers are ackIds: true was taken for ackId 1, and "1" after 1 turned 1's answer to false
    r = requests.post(gw.url + "/services/collector/ack", json={"acks": [True, 1, "1", -1, 1.5]}, headers=headers)
    assert r.json() == {"acks": {"True": False, "1": True, "-1": False, "1.5": False}}
    assert requests.post(gw.url + "/services/collector/ack", json={"acks": [0]}, headers=SPLUNK).json()["code"] == 10
    r = requests.get(gw.url + "/services/collector/health")
    assert (r.status_code, r.json()) == (200, {"text": "HEC is healthy", "code": 17})


def test_contract_body_limit_is_413(make_gateway):
    gw = make_gateway(max_body_bytes=10_000)
    r = requests.post(gw.url + "/services/collector/event", data=hec_body(event_dicts(50, seed=66)), headers=SPLUNK)
    assert r.status_code == 413


def test_contract_the_projects_hec_sink_forwards_to_the_gateway(make_gateway, monkeypatch):
    """An existing HEC forwarder (our own Splunk sink, with gzip and indexer acknowledgement) pointed at the gateway."""
    hec = pytest.importorskip("wia_security.connectors.splunk.hec")
    gw = make_gateway()
    monkeypatch.setenv("GATEWAY_HEC_TOKEN", TOKEN)
    events = event_dicts(500, seed=67)
    events[100] = {**events[100], "severity": -1}                  # one the gateway refuses
    with hec.HecSink.from_url(f"splunk+http://127.0.0.1:{gw.port}?token_env=GATEWAY_HEC_TOKEN&gzip=1&ack=1"
                              "&max_events=200") as sink:
        report = sink.send(events)
        report.merge(sink.flush())
    assert report.delivered == 499
    [failed] = report.failed
    assert failed.event["id"] == events[100]["id"] and "Invalid data format" in failed.reason
    assert stored_ids(gw) == {e["id"] for i, e in enumerate(events) if i != 100}


def test_contract_a_large_ack_query_is_answered_off_the_event_loop(make_gateway):
    """A 9 MB /ack query (1.3 million ackIds) was parsed and answered on the event loop: 5 s during which no other
    request or stream was served. Now in a worker thread: a health check is answered while the query is worked on."""
    import threading

    gw = make_gateway()
    channel = str(uuid.uuid4())
    body = '{"acks":[' + ",".join(str(i) for i in range(300_000)) + "]}"
    budget = gw.gateway.body_budget
    answer: list[requests.Response] = []
    asking = threading.Thread(target=lambda: answer.append(requests.post(
        gw.url + "/services/collector/ack", data=body, headers={**SPLUNK, "X-Splunk-Request-Channel": channel},
        timeout=120)))
    asking.start()
    for _ in range(6000):                            # the whole body has arrived: the query is being worked on
        if budget.held == len(body):
            break
        threading.Event().wait(0.005)
    assert requests.get(gw.url + "/healthz", timeout=60).status_code == 200
    held_when_answered = budget.held                 # 0 once the ack request has been answered
    asking.join(120)
    assert answer[0].status_code == 200 and len(answer[0].json()["acks"]) == 300_000
    assert held_when_answered == len(body)           # before: the health check waited until the query was answered

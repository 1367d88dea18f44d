"""The HEC endpoint answers a token in the query string and an unusable channel as Splunk does (its status-code
table: 16 "Query string authorization is not enabled", 11 "Invalid data channel"), before reading the body.

A `?token=` used to be answered 401 code 2 "Token is required", which sent the admin looking for a missing token
instead of the query string (tokens there end up in proxy and access logs, and the gateway never takes them).
A channel had no bound: each of up to 10,000 remembered channels could hold a name as long as a request line
(~160 MB for a token holder to pin). Channels up to 128 characters without control characters are taken as
before (Splunk's are GUIDs; the gateway keeps accepting other names). Real gateway, requests."""
from __future__ import annotations

import json
import uuid

import requests
from gateway_helpers import AUTH, TOKEN
from strategies import event_dicts

SPLUNK = {"Authorization": f"Splunk {TOKEN}"}


def _body(n: int = 2) -> str:
    return "".join(json.dumps({"event": e}) for e in event_dicts(n, seed=77))


def _stored(gw) -> int:
    return len(requests.get(gw.url + "/v1/events", params={"after": "0"}, headers=AUTH, timeout=30).json()["events"])


def test_a_token_in_the_query_string_is_code_16_and_nothing_is_stored(make_gateway):
    gw = make_gateway()
    answer = requests.post(gw.url + f"/services/collector/event?token={TOKEN}", data=_body(), timeout=30)
    assert answer.status_code == 400 and answer.json() == {"text": "Query string authorization is not enabled",
                                                           "code": 16}
    assert TOKEN not in answer.text and _stored(gw) == 0
    no_token = requests.post(gw.url + "/services/collector/event", data=_body(), timeout=30)
    assert no_token.status_code == 401 and no_token.json()["code"] == 2           # still "Token is required"


def test_a_channel_too_long_or_with_a_control_character_is_code_11(make_gateway):
    gw = make_gateway()
    for channel in ("c" * 129, "a\tb"):
        answer = requests.post(gw.url + "/services/collector/event", params={"channel": channel}, data=_body(),
                               headers=SPLUNK, timeout=30)
        assert answer.status_code == 400 and answer.json() == {"text": "Invalid data channel", "code": 11}, channel
        ack = requests.post(gw.url + "/services/collector/ack", params={"channel": channel},
                            json={"acks": [0]}, headers=SPLUNK, timeout=30)
        assert ack.status_code == 400 and ack.json()["code"] == 11
    assert _stored(gw) == 0
    metrics = requests.get(gw.url + "/metrics", headers=AUTH, timeout=30).text.splitlines()
    assert 'wia_gateway_requests_refused_total{source="hec",reason="bad_channel"} 4' in metrics


def test_guids_and_short_names_are_channels_as_before(make_gateway):
    gw = make_gateway()
    for channel in (str(uuid.uuid4()), "c-1", "c" * 128):
        answer = requests.post(gw.url + "/services/collector/event", data=_body(1), timeout=30,
                               headers={**SPLUNK, "X-Splunk-Request-Channel": channel})
        assert answer.status_code == 200 and answer.json()["ackId"] == 0, answer.text
    assert _stored(gw) == 1                                   # the same event three times: stored once

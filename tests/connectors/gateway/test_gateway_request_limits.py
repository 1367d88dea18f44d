"""How many values one ingest request may carry (`max_request_events`): POST /v1/events, HEC, a stream `publish`.

Each refused value costs a result in the reply and a record in the dead letter, so before the limit a body of
`[0,0,...]` was an amplifier: 1 MB of it became an 80 MB reply, 150 MB of dead letter and 35 s of CPU (10 MiB,
the default body limit: gigabytes)."""
from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import pytest
import requests
from gateway_helpers import AUTH, TOKEN, recv_json
from strategies import event_dicts
from websockets.asyncio.client import connect

from wia_security.connectors.gateway.settings import DEFAULT_MAX_REQUEST_EVENTS

SPLUNK = {"Authorization": f"Splunk {TOKEN}"}


def dead_letter_lines(tmp_path) -> int:
    path = tmp_path / "dead.ndjson"
    return len(path.read_text().splitlines()) if path.exists() else 0


def refused_too_large(gw, source: str) -> float:
    text = requests.get(gw.url + "/metrics", headers=AUTH).text
    line = f'wia_gateway_requests_refused_total{{source="{source}",reason="too_large"}} '
    return float(next(x for x in text.splitlines() if x.startswith(line)).split()[-1])


@pytest.mark.parametrize("layout", ["array", "ndjson"])
def test_a_body_of_more_values_than_the_default_limit_is_refused_whole_and_small(make_gateway, tmp_path, layout):
    gw = make_gateway()
    count = DEFAULT_MAX_REQUEST_EVENTS + 1                  # 100 KB of `0`: each one a refused value before
    body = "[" + ",".join(["0"] * count) + "]" if layout == "array" else "0\n" * count
    r = requests.post(gw.url + "/v1/events", data=body, headers=AUTH, timeout=120)
    assert r.status_code == 413, (r.status_code, len(r.content))
    assert len(r.content) < 1000
    error = r.json()["error"]
    assert error["code"] == "E1001" and f"more than {DEFAULT_MAX_REQUEST_EVENTS}" in error["message"]
    assert dead_letter_lines(tmp_path) == 0                 # nothing was taken: the client still holds it all
    assert refused_too_large(gw, "http") == 1


@pytest.mark.parametrize("layout", ["array", "ndjson"])
def test_up_to_the_limit_each_value_gets_its_verdict_one_more_and_the_request_is_refused(make_gateway, tmp_path,
                                                                                         layout):
    gw = make_gateway(max_request_events=5)
    events = event_dicts(5, seed=127)

    def body(values: list) -> str:
        return json.dumps(values) if layout == "array" else "\n".join(json.dumps(v) for v in values)
    r = requests.post(gw.url + "/v1/events", data=body([*events[:4], 0]), headers=AUTH)
    assert r.status_code == 207 and (r.json()["accepted"], r.json()["rejected"]) == (4, 1)
    assert dead_letter_lines(tmp_path) == 1
    r = requests.post(gw.url + "/v1/events", data=body([*events, 0]), headers=AUTH)
    assert r.status_code == 413 and "more than 5" in r.json()["error"]["message"]
    assert dead_letter_lines(tmp_path) == 1
    got = requests.get(gw.url + "/v1/events", params={"id": events[4]["id"]}, headers=AUTH).json()
    assert got["count"] == 0                                # not even the valid ones of a refused request


def test_contract_hec_more_objects_than_the_limit_is_413_and_nothing_is_taken(make_gateway, tmp_path):
    gw = make_gateway(max_request_events=5)
    events = event_dicts(6, seed=128)
    body = "".join(json.dumps({"event": e}) for e in events)
    r = requests.post(gw.url + "/services/collector/event", data=body, headers=SPLUNK)
    assert (r.status_code, r.json()) == (413, {"text": "Content too large", "code": 6})
    assert requests.get(gw.url + "/v1/events", headers=AUTH).json()["count"] == 0
    assert dead_letter_lines(tmp_path) == 0 and refused_too_large(gw, "hec") == 1
    body = "".join(json.dumps({"event": e}) for e in events[:5])
    r = requests.post(gw.url + "/services/collector/event", data=body, headers=SPLUNK)
    assert (r.status_code, r.json()) == (200, {"text": "Success", "code": 0})
    # the default applies too: 50,001 tiny HEC objects (each would be refused: code 6 for the first)
    gw = make_gateway()
    r = requests.post(gw.url + "/services/collector/event", data='{"event":0}' * (DEFAULT_MAX_REQUEST_EVENTS + 1),
                      headers=SPLUNK, timeout=120)
    assert r.status_code == 413


def test_a_stream_publish_of_more_events_than_the_limit_is_an_error_and_the_connection_goes_on(make_gateway, tmp_path):
    gw = make_gateway(max_request_events=5)
    events = event_dicts(6, seed=129)

    async def scenario() -> None:
        async with connect(gw.ws_url, additional_headers=AUTH) as ws:
            await ws.send(json.dumps({"action": "publish", "events": events, "request_id": "too-many"}))
            reply = await recv_json(ws)
            assert (reply["action"], reply["code"], reply["request_id"]) == ("error", "E1001", "too-many")
            assert "at most 5" in reply["message"]
            await ws.send(json.dumps({"action": "publish", "events": events[:5], "request_id": "ok"}))
            reply = await recv_json(ws)
            assert (reply["action"], reply["accepted"], reply["request_id"]) == ("published", 5, "ok")
    asyncio.run(scenario())
    stored = requests.get(gw.url + "/v1/events", headers=AUTH).json()["events"]
    assert {e["id"] for e in stored} == {e["id"] for e in events[:5]}
    assert dead_letter_lines(tmp_path) == 0


def test_serve_checks_max_request_events():
    env = {**os.environ, "WIA_GATEWAY_TOKENS": TOKEN}
    r = subprocess.run([sys.executable, "-m", "wia_security", "serve", "--port", "1", "--max-request-events", "0"],
                       env=env, capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "--max-request-events: must be at least 1" in r.stderr, r.stderr

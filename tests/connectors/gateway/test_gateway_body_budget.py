"""Request bodies held at once (`max_inflight_body_bytes`): nothing bounded them. Each body is kept while it waits for
a worker thread and takes about 9 times its size while validated (88 MB of RSS for a 9.5 MiB body, 6 at once 380 MB),
so concurrent large uploads could take the process's memory. Beyond the budget an ingest request gets 503 with
Retry-After (HEC code 9), as beyond max_pending_events."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import requests
from gateway_helpers import AUTH, TOKEN
from strategies import event_dicts

SPLUNK = {"Authorization": f"Splunk {TOKEN}"}


def gauge(gw, name: str) -> float:
    text = requests.get(gw.url + "/metrics", headers=AUTH).text
    return float(next(x for x in text.splitlines() if x.startswith(name + " ")).split()[-1])


def wait_for(predicate, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_bodies_beyond_the_budget_get_503_until_the_held_ones_are_answered(make_gateway):
    gw = make_gateway(max_inflight_body_bytes=20_000)
    held_events = event_dicts(12, seed=1275)
    body = json.dumps(held_events).encode()
    assert 12_000 < len(body) < 20_000
    other = json.dumps(event_dicts(10, seed=1276)).encode()
    assert len(other) > 20_000 - len(body)
    with socket.create_connection((gw.host, gw.port)) as sock:
        # a body still arriving: all but its last byte (a slow uplink, or a client holding it on purpose)
        sock.sendall((f"POST /v1/events HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer {TOKEN}\r\n"
                      f"Content-Length: {len(body)}\r\n\r\n").encode() + body[:-1])
        wait_for(lambda: gauge(gw, "wia_gateway_request_body_bytes_in_flight") == len(body) - 1)
        r = requests.post(gw.url + "/v1/events", data=other, headers=AUTH)
        assert r.status_code == 503 and r.headers["retry-after"] == "1", r.text       # before: 200
        assert r.json()["error"]["code"] == "E3003" and "20000 bytes" in r.json()["error"]["message"]
        r = requests.post(gw.url + "/services/collector/event",
                          data="".join(json.dumps({"event": e}) for e in event_dicts(10, seed=1277)), headers=SPLUNK)
        assert (r.status_code, r.json()["code"]) == (503, 9)
        small = requests.post(gw.url + "/v1/events", json=event_dicts(1, seed=1278)[0], headers=AUTH)
        assert small.status_code == 200                       # what still fits is taken
        sock.sendall(body[-1:])
        sock.settimeout(30)
        assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")
    wait_for(lambda: gauge(gw, "wia_gateway_request_body_bytes_in_flight") == 0)
    assert requests.post(gw.url + "/v1/events", data=other, headers=AUTH).status_code == 200   # the retry
    assert gauge(gw, "wia_gateway_request_body_max_bytes_in_flight") == 20_000
    text = requests.get(gw.url + "/metrics", headers=AUTH).text
    assert 'wia_gateway_requests_refused_total{source="http",reason="busy"} 1' in text
    assert 'wia_gateway_requests_refused_total{source="hec",reason="busy"} 1' in text


def test_a_body_larger_than_the_budget_is_taken_when_it_is_alone(make_gateway):
    gw = make_gateway(max_inflight_body_bytes=1_000)
    events = event_dicts(20, seed=1279)
    r = requests.post(gw.url + "/v1/events", json=events, headers=AUTH)
    assert r.status_code == 200 and r.json()["accepted"] == 20
    wait_for(lambda: gauge(gw, "wia_gateway_request_body_bytes_in_flight") == 0)


def test_serve_checks_max_inflight_body_bytes():
    env = {**os.environ, "WIA_GATEWAY_TOKENS": TOKEN}
    r = subprocess.run([sys.executable, "-m", "wia_security", "serve", "--port", "1", "--max-inflight-body-bytes", "0"],
                       env=env, capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "--max-inflight-body-bytes: must be at least 1" in r.stderr, r.stderr

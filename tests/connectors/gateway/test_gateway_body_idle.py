"""A request body that stops arriving (`body_idle_seconds`): uvicorn waits for a body for ever, so a peer gone
mid-body without FIN or RST (a NAT that forgot the connection, a suspended host) held its request, its connection
and what it had sent until the gateway stopped. Raw sockets: a client library would not stop half-way."""
from __future__ import annotations

import json
import socket
import time

import pytest
import requests
from gateway_helpers import AUTH, TOKEN
from strategies import event_dicts

from wia_security.connectors.gateway import GatewaySettings
from wia_security.errors import ConfigError


def head(path: str, length: int, scheme: str = "Bearer") -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: gateway\r\nAuthorization: {scheme} {TOKEN}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n").encode()


def read_until_closed(sock: socket.socket, timeout: float) -> bytes:
    sock.settimeout(timeout)
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def refused(gw, source: str) -> float:
    text = requests.get(gw.url + "/metrics", headers=AUTH).text
    line = f'wia_gateway_requests_refused_total{{source="{source}",reason="timeout"}} '
    return float(next(x for x in text.splitlines() if x.startswith(line)).split()[-1])


@pytest.mark.parametrize("path, source", [("/v1/events", "http"), ("/services/collector/event", "hec")])
def test_a_body_that_stops_arriving_is_given_up_with_408_and_the_connection_closed(make_gateway, path, source):
    gw = make_gateway(body_idle_seconds=0.5)
    event = json.dumps({"event": event_dicts(1, seed=1273)[0]} if source == "hec" else event_dicts(1, seed=1273)[0])
    with socket.create_connection((gw.host, gw.port)) as sock:
        sock.sendall(head(path, len(event), "Splunk" if source == "hec" else "Bearer") + event[:40].encode())
        started = time.monotonic()
        answer = read_until_closed(sock, 30)        # failed before: the gateway waited for the rest for ever
    assert time.monotonic() - started < 20
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line == b"HTTP/1.1 408 Request Timeout", answer
    body = json.loads(rest.partition(b"\r\n\r\n")[2])
    if source == "hec":
        assert body == {"text": "Request timeout", "code": 6}
    else:
        assert body["error"]["code"] == "E1001" and "no byte of the request body arrived for 0.5 s" in \
            body["error"]["message"]
    assert requests.get(gw.url + "/v1/events", headers=AUTH).json()["count"] == 0
    assert refused(gw, source) == 1


def test_a_slow_body_that_keeps_arriving_is_taken(make_gateway):
    """The limit is between two pieces, not on the whole body: a slow uplink goes on as long as bytes arrive."""
    gw = make_gateway(body_idle_seconds=1.0)
    event = json.dumps(event_dicts(1, seed=1274)[0]).encode()
    pieces = [event[i:i + len(event) // 8 + 1] for i in range(0, len(event), len(event) // 8 + 1)]
    with socket.create_connection((gw.host, gw.port)) as sock:
        sock.sendall(head("/v1/events", len(event)))
        for piece in pieces:                        # ~2 s in all, 0.25 s between pieces
            time.sleep(0.25)
            sock.sendall(piece)
        sock.settimeout(30)
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 200 "), answer
    assert refused(gw, "http") == 0


@pytest.mark.parametrize("key", ["body_idle_seconds", "heartbeat_seconds"])
def test_intervals_must_be_a_positive_number(key):
    """heartbeat_seconds was checked by `serve` only: GatewaySettings(heartbeat_seconds=0), as a library user or a
    test builds it, queued heartbeats to every stream without pause (each closed with 4008 at once)."""
    for bad in (0, -1, float("inf"), float("nan")):
        with pytest.raises(ConfigError, match=key):
            GatewaySettings(tokens=[TOKEN], **{key: bad}).check()

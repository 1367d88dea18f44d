"""Request heads the gateway refuses before any route: a request line over MAX_REQUEST_LINE_BYTES is 414, a head over
MAX_REQUEST_HEAD_BYTES 431, a head h11 cannot parse 400, each with the gateway's JSON error, counted in
`wia_gateway_http_request_heads_refused_total`, and answered (not reset) whatever its size. Real gateway, driven by
requests, websockets and raw sockets.

Before: uvicorn's h11 looked only at a head still incomplete after a read (16 KiB), so on loopback a head of up to a
read (256 KiB) passed whole, one cut into pieces was refused at 16 KiB, and what it refused was a text/plain 400
written just before a close that left the rest of the request unread: the client got a reset."""
from __future__ import annotations

import asyncio
import json
import socket
import time

import pytest
import requests
from gateway_helpers import AUTH, TOKEN
from strategies import event_dicts
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from wia_security.connectors.gateway.server import MAX_REQUEST_HEAD_BYTES, MAX_REQUEST_LINE_BYTES

SPLUNK = {"Authorization": f"Splunk {TOKEN}"}


def refused_heads(gw) -> dict[str, float]:
    text = requests.get(gw.url + "/metrics", headers=AUTH).text
    prefix = "wia_gateway_http_request_heads_refused_total{reason=\""
    return {line[len(prefix):].split('"')[0]: float(line.split()[-1])
            for line in text.splitlines() if line.startswith(prefix)}


def raw_exchange(gw, pieces: list[bytes], pause: float = 0.0) -> bytes:
    """Sends `pieces` one by one (each its own TCP segment when `pause`), then reads the answer to the end (the
    gateway closes: a refused head, or `Connection: close`). It does not half-close: a FIN before the head is
    whole would end the request."""
    with socket.create_connection((gw.host, gw.port), timeout=20) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for piece in pieces:
            sock.sendall(piece)
            if pause:
                time.sleep(pause)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
        return answer


@pytest.mark.parametrize("extra", [1, 200_000])        # just over; far over (more than one read of the socket)
def test_a_request_line_over_the_limit_is_answered_414_with_a_reason(make_gateway, extra):
    gw = make_gateway()
    r = requests.get(gw.url + "/v1/events?id=" + "a" * (MAX_REQUEST_LINE_BYTES + extra), headers=AUTH, timeout=30)
    assert r.status_code == 414, r.status_code
    assert r.headers["connection"] == "close"
    assert r.json()["error"]["code"] == "E1001"
    assert f"longer than {MAX_REQUEST_LINE_BYTES} bytes" in r.json()["error"]["message"]
    assert refused_heads(gw)["uri_too_long"] == 1


@pytest.mark.parametrize("size", [MAX_REQUEST_HEAD_BYTES, 300_000, 3_000_000])
def test_headers_over_the_limit_are_answered_431_and_nothing_is_taken(make_gateway, tmp_path, size):
    gw = make_gateway()
    events = event_dicts(1, seed=134)
    r = requests.post(gw.url + "/v1/events", data=json.dumps(events[0]), headers={**AUTH, "X-Padding": "p" * size},
                      timeout=60)
    assert r.status_code == 431, r.status_code
    assert f"longer than {MAX_REQUEST_HEAD_BYTES} bytes" in r.json()["error"]["message"]
    assert requests.get(gw.url + "/v1/events", headers=AUTH).json()["count"] == 0
    assert refused_heads(gw)["headers_too_large"] == 1
    # the gateway goes on serving, on a new connection
    assert requests.post(gw.url + "/v1/events", data=json.dumps(events[0]), headers=AUTH).status_code == 200


def test_a_head_within_the_limit_is_taken_however_the_network_cuts_it(make_gateway):
    """A head just under the limit sent in 2 KB segments: h11 alone refused it at 16 KiB (a reset), a whole one passed."""
    gw = make_gateway()
    head = (f"GET /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nConnection: close\r\n"
            f"X-Padding: {'p' * (MAX_REQUEST_HEAD_BYTES - 4096)}\r\n\r\n").encode()
    answer = raw_exchange(gw, [head[i:i + 2048] for i in range(0, len(head), 2048)], pause=0.002)
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]
    assert refused_heads(gw)["headers_too_large"] == 0


def test_a_head_over_the_limit_is_refused_however_the_network_cuts_it(make_gateway):
    gw = make_gateway()
    head = (f"GET /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
            f"X-Padding: {'p' * MAX_REQUEST_HEAD_BYTES}\r\n\r\n").encode()
    whole = raw_exchange(gw, [head])
    pieces = raw_exchange(gw, [head[i:i + 2048] for i in range(0, len(head), 2048)], pause=0.002)
    for answer in (whole, pieces):
        assert answer.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n"), answer[:200]
    assert refused_heads(gw)["headers_too_large"] == 2


def test_a_malformed_head_gets_the_gateways_json_400(make_gateway):
    gw = make_gateway()
    answer = raw_exchange(gw, [b"GET /v1/events HTTP/1.1\r\nHost: x\r\nNot a header line\r\n\r\n"])
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 "), answer[:200]
    assert b"application/json" in head
    assert json.loads(body)["error"]["message"].startswith("malformed HTTP request")
    assert refused_heads(gw)["malformed"] == 1


def test_contract_hec_a_forwarder_with_oversized_headers_gets_an_answer(make_gateway):
    gw = make_gateway()
    r = requests.post(gw.url + "/services/collector/event", data=json.dumps({"event": event_dicts(1, seed=135)[0]}),
                      headers={**SPLUNK, "X-Splunk-Request-Channel": "a" * 100,
                               "X-Big": "b" * (MAX_REQUEST_HEAD_BYTES + 1)}, timeout=30)
    assert r.status_code == 431


def test_a_stream_handshake_with_oversized_headers_is_refused_431(make_gateway):
    gw = make_gateway()

    async def scenario() -> None:
        with pytest.raises(InvalidStatus) as refused:
            big = {**AUTH, "X-Big": "b" * (MAX_REQUEST_HEAD_BYTES + 1)}
            async with connect(gw.ws_url, additional_headers=big, open_timeout=20):
                pass
        assert refused.value.response.status_code == 431
        async with connect(gw.ws_url, additional_headers=AUTH) as ws:     # and an ordinary handshake still works
            await ws.send(json.dumps({"action": "ping"}))
            assert json.loads(await asyncio.wait_for(ws.recv(), 10))["action"] == "pong"
    asyncio.run(scenario())
    assert refused_heads(gw)["headers_too_large"] == 1


def test_over_tls_too_a_refused_head_is_answered(tmp_path):
    """TLS has no half-close: the gateway sends no FIN after the answer, it reads and drops until the client closes."""
    from servers.certificates import issue, make_ca, write_certificate, write_key

    from wia_security.connectors.gateway import GatewaySettings
    from wia_security.connectors.gateway.server import GatewayServer
    ca = make_ca("request heads test CA")
    key, cert = issue(ca, "127.0.0.1", server=True, hosts=("127.0.0.1",))
    write_certificate(tmp_path / "cert.pem", cert)
    write_key(tmp_path / "key.pem", key)
    write_certificate(tmp_path / "ca.pem", ca[1])
    settings = GatewaySettings(tokens=[TOKEN], store=f"sqlite:///{tmp_path}/events.db",
                               dead_letter=str(tmp_path / "dead.ndjson"), taxii=False)
    with GatewayServer(settings, ssl_certfile=str(tmp_path / "cert.pem"), ssl_keyfile=str(tmp_path / "key.pem")) as gw:
        url = f"https://127.0.0.1:{gw.port}/v1/events"
        r = requests.get(url, headers={**AUTH, "X-Big": "b" * 300_000}, verify=str(tmp_path / "ca.pem"), timeout=30)
        assert r.status_code == 431
        assert requests.get(url, headers=AUTH, verify=str(tmp_path / "ca.pem"), timeout=30).status_code == 200


def test_a_malformed_chunked_body_is_400_or_after_an_answer_only_the_close(make_gateway):
    """h11 refuses a bad chunk size too. Before the app has answered, the JSON 400; after it has (a refused token is
    answered before the body is read), nothing more: a second, unasked-for 400 used to follow the 401."""
    gw = make_gateway()

    def post(token: str) -> bytes:
        head = (f"POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
                "Transfer-Encoding: chunked\r\n\r\n").encode()
        with socket.create_connection((gw.host, gw.port), timeout=20) as sock:
            sock.sendall(head)
            time.sleep(0.3)                      # the app has the head (and, for a bad token, has answered)
            sock.sendall(b"zz\r\nnot a chunk\r\n")
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
            return answer
    answer = post(TOKEN)
    assert answer.startswith(b"HTTP/1.1 400 ") and b"chunked body" in answer, answer[:300]
    answer = post("wrong-token-0123456789")
    assert answer.startswith(b"HTTP/1.1 401 ") and answer.count(b"HTTP/1.1 ") == 1, answer
    assert refused_heads(gw)["malformed"] == 2


def test_a_head_that_does_not_arrive_in_time_is_closed_and_counted(make_gateway, monkeypatch):
    from wia_security.connectors.gateway import server as server_module
    monkeypatch.setattr(server_module, "REQUEST_HEAD_TIMEOUT_SECONDS", 0.5)
    gw = make_gateway()
    with socket.create_connection((gw.host, gw.port), timeout=20) as sock:
        sock.sendall(b"GET /v1/events HTTP/1.1\r\nHost: x\r\n")         # and nothing more
        assert sock.recv(65536) == b""                                  # closed without an answer
    assert refused_heads(gw)["timeout"] == 1


def test_a_refused_head_is_in_the_access_log_without_the_head(make_gateway, caplog):
    gw = make_gateway()
    with caplog.at_level("INFO", logger="wia_security.gateway.access"):
        r = requests.get(gw.url + "/v1/events", headers={**AUTH, "X-Big": "b" * (MAX_REQUEST_HEAD_BYTES + 1)},
                         timeout=30)
        assert r.status_code == 431
        lines = [rec.getMessage() for rec in caplog.records if rec.name == "wia_security.gateway.access"]
    assert lines == ["127.0.0.1 - - 431 (request refused before any route: headers_too_large)"]
    assert TOKEN not in caplog.text


@pytest.mark.parametrize("path, body", [("/v1/events?limit=1", b""), ("/v1/events", None)])
def test_a_client_that_half_closes_after_its_request_still_gets_the_answer(make_gateway, path, body):
    """`nc -N` and some scripts send the request, then their FIN: asyncio closed the connection at the FIN, before the
    answer was written, so they read nothing (on a loaded machine nearly always, for a POST that is validated)."""
    gw = make_gateway()
    if body is None:
        body = json.dumps(event_dicts(1, seed=142)[0]).encode()
        head = f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: {len(body)}\r\n\r\n"
    else:
        head = f"GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\r\n"
    with socket.create_connection((gw.host, gw.port), timeout=20) as sock:
        sock.sendall(head.encode() + body)
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]
    assert answer.count(b"HTTP/1.1 ") == 1


def test_pipelined_requests_before_the_fin_are_all_answered(make_gateway):
    """The FIN arrives while the first (a POST of 2,000 events, validated for a while) is handled: the requests
    sent before it are answered too, then the connection closes."""
    gw = make_gateway()
    body = json.dumps(event_dicts(2000, seed=143)).encode()
    post = (f"POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    get = f"GET /v1/events?limit=1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\r\n".encode()
    with socket.create_connection((gw.host, gw.port), timeout=60) as sock:
        sock.sendall(post + get * 2)
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.count(b"HTTP/1.1 200 ") == 3, answer[-500:]

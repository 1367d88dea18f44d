"""Peers that vanish without a FIN or RST (a network cut, a frozen process) or stop reading for good, with data
still to be written to them: the stream's keepalive (a WebSocket ping every `ping_interval_seconds`, close 1011
without a pong within `ping_timeout_seconds`) used to end in asyncio's close(), which waits until the peer has
taken what is buffered. Such a peer never does, so its transport, its stream task and its place of
--max-stream-clients stayed until TCP gave up (for ever against a zero window). A close now ends in an abort once
the peer takes nothing for CLOSE_STALL_SECONDS, which also bounds a shutdown held by a TLS peer that does not
answer the close. Real gateway (uvicorn in a thread), raw client sockets that stop reading."""
from __future__ import annotations

import base64
import json
import os
import socket
import ssl
import struct
import threading
import time

import pytest
import requests
from gateway_helpers import AUTH, TOKEN
from strategies import event_dicts

from wia_security.connectors.gateway import GatewaySettings
from wia_security.connectors.gateway import server as server_module
from wia_security.connectors.gateway.server import GatewayServer


def masked_text_frame(text: bytes) -> bytes:
    """A client's text frame (clients must mask)."""
    mask = os.urandom(4)
    n = len(text)
    head = bytes([0x81]) + (bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + struct.pack("!H", n))
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(text))


def read_head(sock: socket.socket) -> bytes:
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(1)
        if not chunk:
            break
        head += chunk
    return head


def stream_socket(gw: GatewayServer, *, rcvbuf: int = 4096, tls: ssl.SSLContext | None = None) -> socket.socket:
    """A subscribed stream connection on a raw socket that reads nothing after the handshake and answers no ping."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)   # before connect: a small window
    sock.settimeout(10)
    sock.connect((gw.host, gw.port))
    if tls is not None:
        sock = tls.wrap_socket(sock, server_hostname="127.0.0.1")
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET /v1/stream HTTP/1.1\r\nHost: gateway\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nAuthorization: Bearer {TOKEN}\r\n\r\n")
                 .encode())
    head = read_head(sock)
    assert head.startswith(b"HTTP/1.1 101 "), head
    sock.sendall(masked_text_frame(json.dumps({"action": "subscribe"}).encode()))
    return sock


def wait_for(predicate, timeout: float) -> float:
    """Seconds until `predicate()` held; AssertionError after `timeout`."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if predicate():
            return time.monotonic() - started
        time.sleep(0.02)
    raise AssertionError(f"not within {timeout} s")


def stream_protocols(gw: GatewayServer) -> list:
    return [c for c in gw.server.server_state.connections if isinstance(c, server_module._WebSocketProtocol)]


def test_a_peer_that_stops_reading_with_data_unsent_is_closed_and_frees_its_place(make_gateway, monkeypatch):
    """The peer completes the handshake and subscribes, then neither reads nor answers a ping while megabytes of
    events are on their way to it (its queue stays under --client-queue-bytes, so the slow-consumer rule never
    applies). Within ping interval + pong timeout + CLOSE_STALL_SECONDS its transport is gone and its place of
    --max-stream-clients (here 1) serves the next client."""
    monkeypatch.setattr(server_module, "CLOSE_STALL_SECONDS", 1.0)
    interval, timeout = 10.0, 1.0          # 3 s: at load 30 the 6 MB POST outlasted interval + timeout + stall
    gw = make_gateway(max_stream_clients=1, ping_interval_seconds=interval, ping_timeout_seconds=timeout)
    stuck = stream_socket(gw)
    wait_for(lambda: any(c.subscriptions for c in gw.gateway.hub.clients), 5)
    [client] = gw.gateway.hub.clients
    accepted_at = time.monotonic()
    events = event_dicts(100, seed=701)
    for e in events:
        e.setdefault("meta", {})["raw"] = "x" * 60000                # 6 MB: more than the sockets' buffers hold
    r = requests.post(gw.url + "/v1/events", json=events, headers=AUTH)
    assert r.status_code == 200, r.text[:300]
    [protocol] = stream_protocols(gw)
    # The case at issue: the keepalive has not fired yet, and what it closes has bytes still to write
    wait_for(lambda: protocol.transport.unsent() > 0, 5)
    assert not protocol.close_sent and client.queue, "set-up too slow: the keepalive fired before the data was queued"
    assert 0 < client.queued_chars < gw.settings.client_queue_bytes and not client.overflowed
    # The only place is taken: the next handshake is refused
    refused = requests.get(gw.url + "/v1/stream", headers={**AUTH, "Connection": "Upgrade", "Upgrade": "websocket",
                                                            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
                                                            "Sec-WebSocket-Version": "13"})
    assert refused.status_code == 503

    bound = interval + timeout + server_module.CLOSE_STALL_SECONDS
    wait_for(lambda: gw.gateway.open_streams == 0 and not stream_protocols(gw), bound + 5)
    freed_after = time.monotonic() - accepted_at
    assert freed_after < bound + 3, freed_after
    assert not gw.gateway.hub.clients
    assert (gw.gateway.metrics.stream_ping_timeouts, gw.gateway.metrics.connections_aborted) == (1, 1)
    # The place serves the next client
    fresh = stream_socket(gw)
    wait_for(lambda: gw.gateway.open_streams == 1, 5)
    fresh.close()
    # The vanished peer's connection was reset, not left for the kernel to keep trying
    stuck.settimeout(5)
    with pytest.raises(ConnectionResetError):
        while stuck.recv(1 << 20):
            pass
    stuck.close()


def test_an_idle_peer_that_answers_no_ping_is_closed_with_1011_and_frees_its_place(make_gateway):
    """Nothing to write to it: the close frame (1011) goes out at once and the place is free within interval +
    timeout. The settings reach uvicorn's keepalive (it is the gateway's own protocol class that is served)."""
    gw = make_gateway(max_stream_clients=1, ping_interval_seconds=0.5, ping_timeout_seconds=0.5)
    sock = stream_socket(gw, rcvbuf=65536)
    [protocol] = stream_protocols(gw)
    assert (protocol.ping_interval, protocol.ping_timeout) == (0.5, 0.5)
    wait_for(lambda: gw.gateway.open_streams == 0 and not stream_protocols(gw), 5)
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    sock.close()
    # ... after the ping it did not answer, a close frame with 1011
    assert b"\x89\x04" in data                                     # ping, 4-byte payload
    close_at = data.rindex(b"\x88")
    assert struct.unpack("!H", data[close_at + 2:close_at + 4])[0] == 1011
    # nothing was left to write: closed at once, not aborted
    assert (gw.gateway.metrics.stream_ping_timeouts, gw.gateway.metrics.connections_aborted) == (1, 0)
    metrics = requests.get(gw.url + "/metrics", headers=AUTH).text
    assert "\nwia_gateway_stream_ping_timeout_disconnects_total 1\n" in metrics
    assert "\nwia_gateway_connections_aborted_total 0\n" in metrics


@pytest.mark.parametrize("value", [0, -1, float("nan"), float("inf")])
def test_the_keepalive_cannot_be_turned_off(tmp_path, value):
    from wia_security.errors import ConfigError
    for key in ("ping_interval_seconds", "ping_timeout_seconds"):
        settings = GatewaySettings(tokens=[TOKEN], store=None, dead_letter=str(tmp_path / "d"), **{key: value})
        with pytest.raises(ConfigError, match=key):
            settings.check()


def tcp_beneath(tls_sock: ssl.SSLSocket) -> socket.socket:
    """The TCP connection under a TLS socket, read past the TLS layer: what is left of the gateway's bytes (its
    close_notify), then b"" for a FIN, or ConnectionResetError for a reset."""
    return socket.socket(fileno=os.dup(tls_sock.fileno()))


def how_it_ended(tcp: socket.socket) -> str:
    tcp.settimeout(10)
    try:
        while tcp.recv(1 << 20):
            pass
    except ConnectionResetError:
        return "reset"
    finally:
        tcp.close()
    return "fin"


@pytest.mark.parametrize("peer_kind", ["https", "wss"])
def test_shutdown_is_not_held_by_a_tls_peer_that_does_not_answer_the_close(tmp_path, monkeypatch, peer_kind):
    """A TLS peer that neither reads nor closes: a kept-alive HTTPS connection, or a WSS subscriber with megabytes
    still on their way to it. At shutdown asyncio's TLS close waited for the peer to take what was buffered and for
    its close_notify (up to 30 s), and uvicorn waited its whole graceful period (15 s) for them: measured 15.2 s
    (HTTPS) and 20.2 s (WSS, after the stream's own 5 s). Once the peer took nothing for CLOSE_STALL_SECONDS (here
    1 s) the stop goes on: the idle HTTPS peer, which has acknowledged everything (our close_notify too), gets a FIN
    and is not counted as aborted; the WSS peer, with data unacknowledged, is reset and counted."""
    monkeypatch.setattr(server_module, "CLOSE_STALL_SECONDS", 1.0)
    options, context = tls_files(tmp_path)
    gw = GatewayServer(GatewaySettings(tokens=[TOKEN], store=None, dead_letter=str(tmp_path / "dead.ndjson"),
                                       taxii=False), **options).start()
    stopped = False
    try:
        if peer_kind == "https":
            raw = socket.create_connection((gw.host, gw.port), timeout=10)
            peer = context.wrap_socket(raw, server_hostname="127.0.0.1")
            peer.sendall(b"GET /healthz HTTP/1.1\r\nHost: gateway\r\n\r\n")
            assert read_head(peer).startswith(b"HTTP/1.1 200 ")
            assert len(gw.server.server_state.connections) == 1     # kept alive; the peer now goes quiet
            bound = server_module.GRACEFUL_SHUTDOWN_SECONDS / 2
        else:
            peer = stream_socket(gw, tls=context)
            wait_for(lambda: any(c.subscriptions for c in gw.gateway.hub.clients), 5)
            events = event_dicts(100, seed=702)
            for e in events:
                e.setdefault("meta", {})["raw"] = "x" * 60000
            r = requests.post(gw.url.replace("http:", "https:") + "/v1/events", json=events, headers=AUTH,
                              verify=str(tmp_path / "ca.pem"))
            assert r.status_code == 200, r.text[:300]
            [protocol] = stream_protocols(gw)
            wait_for(lambda: protocol.transport.unsent() > 0, 5)
            bound = server_module.GRACEFUL_SHUTDOWN_SECONDS
        tcp = tcp_beneath(peer)
        started = time.monotonic()
        stopper = threading.Thread(target=gw.stop)
        stopper.start()
        stopper.join(60)
        stopped = True
        took = time.monotonic() - started
        assert not stopper.is_alive()
        assert took < bound, took
        if peer_kind == "https":
            assert (how_it_ended(tcp), gw.gateway.metrics.connections_aborted) == ("fin", 0)
        else:
            assert (how_it_ended(tcp), gw.gateway.metrics.connections_aborted) == ("reset", 1)
        peer.close()
    finally:
        if not stopped:
            gw.stop()


@pytest.mark.parametrize("peer_kind", ["idle", "stuck"])
def test_a_tls_peer_that_does_not_answer_the_close_gets_a_fin_once_it_took_everything(tmp_path, monkeypatch,
                                                                                      peer_kind):
    """While the gateway runs. An idle kept-alive HTTPS connection (requests' pool, here also a raw TLS socket) is
    closed by uvicorn after its keep-alive timeout; such clients never answer the close_notify. They were reset
    after CLOSE_STALL_SECONDS and counted in wia_gateway_connections_aborted_total, routine closes counted as
    aborts (and a reset can make a peer discard what it received but has not read yet). Having acknowledged
    everything, such a peer now gets a FIN and is not counted. A stuck TLS peer that stopped reading a
    `Connection: close` response of megabytes still has data unacknowledged: it is reset and counted, as before."""
    monkeypatch.setattr(server_module, "CLOSE_STALL_SECONDS", 1.0)
    options, context = tls_files(tmp_path)
    gw = GatewayServer(GatewaySettings(tokens=[TOKEN], store=f"sqlite:///{tmp_path}/events.db",
                                       dead_letter=str(tmp_path / "dead.ndjson"), taxii=False), **options)
    gw.server.config.timeout_keep_alive = 1          # uvicorn's (5 s by default): read per connection
    gw.start()
    base, ca = f"https://{gw.host}:{gw.port}", str(tmp_path / "ca.pem")
    try:
        if peer_kind == "stuck":
            events = event_dicts(80, seed=705)
            for e in events:
                e.setdefault("meta", {})["raw"] = "x" * 60000           # 4.8 MB: more than the kernel buffers
            with requests.Session() as once:
                assert once.post(base + "/v1/events", json=events, headers=AUTH, verify=ca).status_code == 200
            wait_for(lambda: not gw.server.server_state.connections, 10)
        pool = requests.Session()
        assert pool.get(base + "/healthz", verify=ca).status_code == 200     # one idle connection in its pool
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if peer_kind == "stuck":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.settimeout(10)
        sock.connect((gw.host, gw.port))
        peer = context.wrap_socket(sock, server_hostname="127.0.0.1")
        if peer_kind == "idle":
            peer.sendall(b"GET /healthz HTTP/1.1\r\nHost: gateway\r\n\r\n")
            assert read_head(peer).startswith(b"HTTP/1.1 200 ")
        else:
            peer.sendall(f"GET /v1/events?limit=80 HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer {TOKEN}\r\n"
                         "Connection: close\r\n\r\n".encode())
        tcp = tcp_beneath(peer)
        # Closed by the gateway (keep-alive timeout, or the response's end) and gone within one or two stall bounds
        wait_for(lambda: not gw.server.server_state.connections, 10)
        expected = ("fin", 0) if peer_kind == "idle" else ("reset", 1)
        assert (how_it_ended(tcp), gw.gateway.metrics.connections_aborted) == expected
        peer.close()
        metrics = pool.get(base + "/metrics", headers=AUTH, verify=ca).text       # the pool reconnects
        assert f"\nwia_gateway_connections_aborted_total {expected[1]}\n" in metrics
        pool.close()
    finally:
        gw.stop()


def test_a_live_peer_is_not_closed_while_the_gateway_is_still_handling_its_message(make_gateway, monkeypatch):
    """uvicorn stops reading a connection while one of its messages waits for the app, and the gateway handles one
    message at a time: a `publish` taking longer than the pong timeout, with the next message already sent, left the
    peer's pong unread, and a live client was closed with 1011. The deadline waits for reading to resume."""
    import asyncio

    from gateway_helpers import recv_json
    from websockets.asyncio.client import connect

    from wia_security.connectors.gateway import app as app_module
    real_validate = app_module.validate_items

    def slow_validate(*args, **kwargs):
        time.sleep(3.0)                                             # several ping intervals and pong timeouts
        return real_validate(*args, **kwargs)
    monkeypatch.setattr(app_module, "validate_items", slow_validate)
    # a pong timeout a loaded 2-core machine keeps (0.3 s failed once there: the client's own loop answered late)
    gw = make_gateway(ping_interval_seconds=0.2, ping_timeout_seconds=1.0)

    async def run() -> list[str]:
        async with connect(gw.ws_url, additional_headers=AUTH) as ws:      # answers pings by itself
            await ws.send(json.dumps({"action": "publish", "events": event_dicts(1, seed=703), "request_id": "p"}))
            await asyncio.sleep(0.1)
            await ws.send(json.dumps({"action": "ping", "request_id": "q"}))   # waits for the app: reading stops
            replies = [(await recv_json(ws, timeout=10))["action"] for _ in range(2)]
            await asyncio.sleep(1.0)                                    # pings go on being answered
            await ws.send(json.dumps({"action": "ping"}))
            replies.append((await recv_json(ws))["action"])
            return replies
    assert asyncio.run(asyncio.wait_for(run(), 30)) == ["published", "pong", "pong"]
    assert gw.gateway.metrics.stream_ping_timeouts == 0


def tls_files(tmp_path) -> tuple[dict, ssl.SSLContext]:
    """uvicorn's TLS options for a certificate of 127.0.0.1, and a client context trusting it."""
    from servers.certificates import issue, make_ca, write_certificate, write_key
    ca = make_ca("liveness test CA")
    key, cert = issue(ca, "127.0.0.1", server=True, hosts=("127.0.0.1",))
    write_certificate(tmp_path / "cert.pem", cert)
    write_key(tmp_path / "key.pem", key)
    write_certificate(tmp_path / "ca.pem", ca[1])
    return ({"ssl_certfile": str(tmp_path / "cert.pem"), "ssl_keyfile": str(tmp_path / "key.pem")},
            ssl.create_default_context(cafile=str(tmp_path / "ca.pem")))


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_a_slow_reader_still_taking_what_was_written_before_the_close_is_not_reset(tmp_path, monkeypatch, caplog,
                                                                                  scheme):
    """A live peer on a slow link (or a slow reader) asking with `Connection: close` for a page of megabytes: the
    whole body is handed to the transport, then closed. The peer takes it steadily, but the kernel's send buffer
    (megabytes, autotuned) lets asyncio write on only once a third of it is free: its own buffer then stays the
    same size for seconds at a time. Taken for "took nothing", the peer was reset mid-body; what it has
    acknowledged (the kernel's unacknowledged bytes) is what says it is still taking data."""
    import logging
    monkeypatch.setattr(server_module, "CLOSE_STALL_SECONDS", 1.0)
    caplog.set_level(logging.INFO, logger="wia_security.gateway")
    options, client_tls = tls_files(tmp_path) if scheme == "https" else ({}, None)
    gw = GatewayServer(GatewaySettings(tokens=[TOKEN], store=f"sqlite:///{tmp_path}/events.db",
                                       dead_letter=str(tmp_path / "dead.ndjson"), taxii=False), **options).start()
    try:
        events = event_dicts(80, seed=704)
        for e in events:
            e.setdefault("meta", {})["raw"] = "x" * 60000               # 4.8 MB: more than the kernel buffers
        r = requests.post(f"{scheme}://{gw.host}:{gw.port}/v1/events", json=events, headers=AUTH,
                          verify=str(tmp_path / "ca.pem") if client_tls else True)
        assert r.status_code == 200 and r.json()["accepted"] == 80, r.text[:300]

        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        sock.settimeout(10)
        sock.connect((gw.host, gw.port))
        reader = "%s:%d" % sock.getsockname()
        if client_tls is not None:
            sock = client_tls.wrap_socket(sock, server_hostname="127.0.0.1")
        sock.sendall(f"GET /v1/events?limit=80 HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer {TOKEN}\r\n"
                     "Connection: close\r\n\r\n".encode())
        head = read_head(sock)
        assert head.startswith(b"HTTP/1.1 200 "), head
        length = int(next(line.split(b":", 1)[1] for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length:")))
        assert length > 4_000_000
        # 400 KB/s: a third of the kernel's buffer every ~3 s, well over the stall bound of 1 s
        rate, body, started = 400_000, b"", time.monotonic()
        try:
            while chunk := sock.recv(16384):
                body += chunk
                time.sleep(max(0.0, started + len(body) / rate - time.monotonic()))
        except ConnectionResetError:
            pytest.fail(f"reset after {len(body)} of {length} bytes, {time.monotonic() - started:.1f} s in")
        finally:
            sock.close()
        assert len(body) == length and json.loads(body)["count"] == 80
        # (the POST's kept-alive HTTPS connection may be: closed when idle, its peer does not answer the close)
        assert not [r for r in caplog.records if r.getMessage().startswith(f"connection from {reader} ")]
    finally:
        gw.stop()

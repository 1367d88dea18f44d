"""StreamClient under a long outage, an untrusted gateway certificate and a server flooding it with messages
it cannot use. Real `websockets` connections: the gateway (`GatewayServer`, uvicorn in a thread) where it
shows the behaviour, a port where nothing listens, and a small `websockets` server for what the gateway
never does (malformed messages by the thousand)."""
from __future__ import annotations

import asyncio
import socket
import ssl

import pytest

from wia_security.connectors.websocket_client import StreamClient, StreamError


def closed_port() -> int:
    """A loopback port where nothing listens (connections are refused at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_long_outage_does_not_end_the_stream_with_an_overflow():
    """The backoff ceiling was initial_backoff * 2 ** (attempt - 1): after 1,024 failed attempts in a row (about
    four hours of a gateway away, at the defaults) 2 ** 1024 did not fit a float and events() raised
    OverflowError, ending every consumer at the very moment it should keep trying."""
    async def run() -> None:
        client = StreamClient(f"ws://127.0.0.1:{closed_port()}/v1/stream", token="t" * 20, initial_backoff=1e-5,
                              max_backoff=2e-5, max_attempts=1100)
        with pytest.raises(StreamError, match="gave up after 1100 reconnect attempts"):
            async for _ in client.events():
                pass
    asyncio.run(asyncio.wait_for(run(), 60))


def certificate_files(tmp_path) -> tuple[str, str, str]:
    """(cert, key, CA file): a certificate for 127.0.0.1 only, from a CA of its own."""
    from servers.certificates import issue, make_ca, write_certificate, write_key
    ca = make_ca("stream client review CA")
    key, cert = issue(ca, "127.0.0.1", server=True, hosts=("127.0.0.1",))
    write_certificate(tmp_path / "cert.pem", cert)
    write_key(tmp_path / "key.pem", key)
    write_certificate(tmp_path / "ca.pem", ca[1])
    return str(tmp_path / "cert.pem"), str(tmp_path / "key.pem"), str(tmp_path / "ca.pem")


@pytest.mark.parametrize("case", ["untrusted CA", "another host name"])
def test_a_gateway_certificate_that_does_not_verify_ends_the_stream_at_once(tmp_path, case):
    """A certificate failing verification was taken for a network error: logged at INFO and retried for ever
    (max_attempts is unset by default), so a peer impersonating the gateway, or a CA missing from the client,
    showed as nothing but a client that never received an event."""
    from gateway_helpers import TOKEN

    from wia_security.connectors.gateway import GatewaySettings
    from wia_security.connectors.gateway.server import GatewayServer
    cert, key, ca_file = certificate_files(tmp_path)
    settings = GatewaySettings(tokens=[TOKEN], store=f"sqlite:///{tmp_path}/events.db",
                               dead_letter=str(tmp_path / "dead.ndjson"), taxii=False)
    gw = GatewayServer(settings, ssl_certfile=cert, ssl_keyfile=key).start()
    host, context = "127.0.0.1", None                             # the system CAs: not this gateway's
    if case == "another host name":
        host, context = "localhost", ssl.create_default_context(cafile=ca_file)   # trusted, but not for localhost
    expected = "unable to get local issuer" if context is None else "Hostname mismatch"

    async def run() -> StreamClient:
        client = StreamClient(f"wss://{host}:{gw.port}/v1/stream", token=TOKEN, ssl=context, initial_backoff=0.01,
                              max_backoff=0.02)
        with pytest.raises(StreamError, match=f"TLS verification of the gateway failed: .*{expected}"):
            async for _ in client.events():
                pass
        return client
    try:
        client = asyncio.run(asyncio.wait_for(run(), 20))
    finally:
        gw.stop()
    assert client.stats.connects == 0


def test_a_redirect_from_wss_to_ws_ends_the_stream_at_once(tmp_path):
    """websockets refuses to follow a redirect that drops TLS (SecurityError, an InvalidHandshake): the client
    took it for a failed connection and asked again for ever, to be refused the same way each time."""
    from websockets.asyncio.server import serve
    cert, key, ca_file = certificate_files(tmp_path)
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert, key)
    handshakes: list[str] = []

    def process_request(connection, request):
        handshakes.append(request.path)
        response = connection.respond(301, "moved\n")
        response.headers["Location"] = f"ws://127.0.0.1:{connection.local_address[1]}/v1/stream"
        return response

    async def run() -> None:
        async with serve(lambda ws: None, "127.0.0.1", 0, ssl=server_context, process_request=process_request) as server:
            port = server.sockets[0].getsockname()[1]
            client = StreamClient(f"wss://127.0.0.1:{port}/v1/stream", token="t" * 20, initial_backoff=0.01,
                                  max_backoff=0.02, ssl=ssl.create_default_context(cafile=ca_file))
            with pytest.raises(StreamError, match="handshake was refused: cannot follow redirect to non-secure URI"):
                async for _ in client.events():
                    pass
    asyncio.run(asyncio.wait_for(run(), 20))
    assert handshakes == ["/v1/stream"]


def test_a_server_flooding_the_client_with_unusable_messages_does_not_grow_its_memory():
    """Every message the client could not use (not JSON, an event without a sequence) and every `error` the
    server sent was appended to stats.errors for the life of the client, an `error` whole (up to
    max_message_bytes, 16 MiB, each): a buggy or hostile server, or months of routine publish errors, grew a
    consumer's memory without end. The record keeps the latest STATS_KEPT entries, each message cut to
    STATS_MESSAGE_CHARS; `stats.errors_total` counts them all."""
    import json

    from websockets.asyncio.server import serve

    from wia_security.connectors import websocket_client
    floods = 3 * websocket_client.STATS_KEPT
    big = "x" * 100_000

    async def handler(ws) -> None:
        await ws.recv()
        await ws.send(json.dumps({"action": "subscribed", "stream_id": "s", "sequence": 0}))
        for n in range(floods):
            await ws.send("not json" if n % 3 else json.dumps({"action": "error", "code": "E5001", "message": big}))
        await ws.send(json.dumps({"action": "event", "sequence": 1, "stream_id": "s", "event": {"id": "e1"}}))
        await ws.wait_closed()

    async def run() -> StreamClient:
        async with serve(handler, "127.0.0.1", 0, max_size=None) as server:
            port = server.sockets[0].getsockname()[1]
            client = StreamClient(f"ws://127.0.0.1:{port}/v1/stream", token="t" * 20)
            item = await asyncio.wait_for(anext(client.events()), 60)
            assert item.event == {"id": "e1"}
            await client.close()
            return client
    client = asyncio.run(run())
    assert client.stats.errors_total == floods
    assert len(client.stats.errors) == websocket_client.STATS_KEPT
    assert all(len(e["message"]) <= websocket_client.STATS_MESSAGE_CHARS for e in client.stats.errors)


def test_close_during_a_slow_handshake_ends_the_stream():
    """close() closes the open connection, but during a handshake there is none yet: the handshake then
    completed, the client subscribed and read on for ever, so a consumer awaited after close() never ended
    (and got events after close). A loaded gateway answers handshakes slowly; this one takes 2 s."""
    import json

    from websockets.asyncio.server import serve
    handshakes: list[str] = []

    async def process_request(connection, request):
        handshakes.append(request.path)
        await asyncio.sleep(2.0)                 # close() comes well within it, however loaded the machine
        return None

    async def handler(ws) -> None:
        await ws.recv()
        await ws.send(json.dumps({"action": "subscribed", "stream_id": "s", "sequence": 0}))
        await ws.send(json.dumps({"action": "event", "sequence": 1, "stream_id": "s", "event": {"id": "e1"}}))
        await ws.wait_closed()

    async def run() -> list:
        async with serve(handler, "127.0.0.1", 0, process_request=process_request) as server:
            port = server.sockets[0].getsockname()[1]
            client = StreamClient(f"ws://127.0.0.1:{port}/v1/stream", token="t" * 20)
            got: list = []

            async def consume() -> None:
                async for item in client.events():
                    got.append(item)
            consumer = asyncio.ensure_future(consume())
            await asyncio.wait_for(_until(lambda: handshakes), 5)        # the handshake is under way
            await client.close()
            await asyncio.wait_for(consumer, 5)
            return got
    assert asyncio.run(asyncio.wait_for(run(), 20)) == []


async def _until(predicate) -> None:
    while not predicate():
        await asyncio.sleep(0.01)


def test_clients_a_restart_sends_away_come_back_over_the_servers_delay_not_half_a_second():
    """The gateway's shutdown `close` message (and its 503 Retry-After during a restart) says 5 s. The jitter on
    top was bounded by the attempt's backoff ceiling, initial_backoff (0.5 s) on a first attempt: every client
    came back within [5, 5.5] s, a thousand clients' handshakes and resume replays within half a second. Now it
    is drawn up to the server's delay: [5, 10] s (the delay and the jitter each at most max_backoff)."""
    client = StreamClient("ws://127.0.0.1:9/v1/stream", token="t" * 20)          # the defaults: 0.5 s, 30 s
    waits = [client.reconnect_delay(1, 5.0) for _ in range(500)]
    assert all(5.0 <= w <= 10.0 for w in waits)
    assert max(waits) - min(waits) > 3.0                       # spread over the delay, not over 0.5 s
    capped = StreamClient("ws://127.0.0.1:9/v1/stream", token="t" * 20, max_backoff=2.0)
    assert all(2.0 <= capped.reconnect_delay(1, 2.0) <= 4.0 for _ in range(100))
    assert all(0 <= client.reconnect_delay(1) <= 0.5 for _ in range(100))   # no server delay: full jitter
    assert all(0 <= client.reconnect_delay(40) <= 30.0 for _ in range(100))


def test_user_info_in_the_url_is_neither_in_the_repr_nor_in_logs(caplog):
    """repr() cut only the query, so `wss://user:password@gw/...` (which websockets sends as Basic auth; the
    gateway refuses it) showed the password wherever a client was printed or logged."""
    import logging
    password = "S3cret%2Fpassw0rd-long"                       # URL-quoted: websockets sends 'S3cret/passw0rd-long'
    client = StreamClient(f"wss://ops:{password}@gw.example:8088/v1/stream?x=1", token="t" * 20)
    assert repr(client) == "<StreamClient wss://gw.example:8088/v1/stream>"
    with caplog.at_level(logging.INFO):
        logging.getLogger("wia_security.connectors.websocket_client").info("client %s from %s", client, client.url)
    assert "S3cret" not in caplog.text


def test_a_server_closing_each_connection_right_after_subscribing_is_backed_off():
    """The backoff was reset by every `subscribed` reply, so a server (or a proxy in front of it) that answers the
    subscription and then closes at once (here 1011, every time) was asked again within initial_backoff for
    ever: max_attempts never reached, no backoff growth, a thousand clients reconnecting twice a second each.
    A connection now counts as working once it brought an event, or stayed up for max_backoff."""
    import json

    from websockets.asyncio.server import serve
    connections: list[int] = []

    async def handler(ws) -> None:
        connections.append(1)
        await ws.recv()
        await ws.send(json.dumps({"action": "subscribed", "stream_id": "s", "sequence": 0}))
        await ws.close(1011, "internal error")

    async def run() -> None:
        async with serve(handler, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            # max_backoff is also how long a connection must stay up to count as working: at 4 ms, a loaded machine
            # (the close handshake taking that long) reset the backoff now and then and made more connections.
            # The waits between attempts stay those of initial_backoff (1, 2, 4, 8, 16 ms ceilings).
            client = StreamClient(f"ws://127.0.0.1:{port}/v1/stream", token="t" * 20, initial_backoff=0.001,
                                  max_backoff=5, max_attempts=5)
            with pytest.raises(StreamError, match="gave up after 5 reconnect attempts"):
                async for _ in client.events():
                    pass
            assert client.stats.close_codes == [1011] * 6
    asyncio.run(asyncio.wait_for(run(), 20))
    assert len(connections) == 6


def test_a_connection_that_brought_an_event_resets_the_backoff():
    """The other side of the rule above: a server closing after each event it delivers (a slow consumer's 4008
    every time, say) is a working stream; each reconnect starts from initial_backoff and the client never gives
    up on it."""
    import json

    from websockets.asyncio.server import serve
    sequence = [0]

    async def handler(ws) -> None:
        await ws.recv()
        await ws.send(json.dumps({"action": "subscribed", "stream_id": "s", "sequence": sequence[0]}))
        sequence[0] += 1
        await ws.send(json.dumps({"action": "event", "sequence": sequence[0], "stream_id": "s",
                                  "event": {"id": f"e{sequence[0]}"}}))
        await ws.close(4008, "slow consumer")

    async def run() -> list[str]:
        async with serve(handler, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            client = StreamClient(f"ws://127.0.0.1:{port}/v1/stream", token="t" * 20, initial_backoff=0.001,
                                  max_backoff=0.004, max_attempts=2)
            got = []
            async for item in client.events():
                got.append(item.event["id"])
                if len(got) == 8:
                    await client.close()
            return got
    assert asyncio.run(asyncio.wait_for(run(), 20)) == [f"e{n}" for n in range(1, 9)]

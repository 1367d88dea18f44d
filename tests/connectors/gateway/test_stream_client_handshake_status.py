"""StreamClient and handshake answers other than 101: a URL that can never give a stream (a wrong path, not a
WebSocket endpoint, a proxy without upgrades) ends events() with a StreamError naming the URL and the status,
after a few tries; a server busy for a while (5xx) is retried. Real sockets: the gateway for a wrong path, a
small `websockets` server for answers the gateway never gives."""
from __future__ import annotations

import asyncio
import json

import pytest
from gateway_helpers import TOKEN
from websockets.asyncio.server import serve

from wia_security.connectors.websocket_client import (PERMANENT_REFUSALS_AFTER_CONNECT, PERMANENT_REFUSALS_FIRST,
                                                      StreamAuthError, StreamClient, StreamError)

SECRET = "query-secret-0123456789"


def test_a_wrong_path_on_the_gateway_fails_naming_the_url_and_the_404(make_gateway):
    """The gateway answers a WebSocket handshake on a path it does not serve with 404 naming its stream path (it
    answered 403, Starlette's close before accept, which the client took for a refused token): the client ends
    after PERMANENT_REFUSALS_FIRST answers with a StreamError naming the URL (no token), not StreamAuthError."""
    gw = make_gateway()
    url = gw.ws_url.replace("/v1/stream", "/v1/streams")

    async def run() -> StreamClient:
        client = StreamClient(f"{url}?token={SECRET}", token=TOKEN, initial_backoff=0.01, max_backoff=0.02)
        with pytest.raises(StreamError) as info:
            async for _ in client.events():
                pass
        message = str(info.value)
        assert not isinstance(info.value, StreamAuthError)
        assert url in message and f"HTTP 404 {PERMANENT_REFUSALS_FIRST} times in a row" in message
        assert SECRET not in message and TOKEN not in message
        return client
    client = asyncio.run(asyncio.wait_for(run(), 20))
    assert client.stats.connects == 0


def stub(statuses: list[int], handshakes: list[str], accept_first: bool = False):
    """A websockets server answering each handshake with the next status of `statuses` (the last one repeated);
    with accept_first, the first handshake opens a stream that subscribes and closes (1001)."""
    def process_request(connection, request):
        handshakes.append(request.path)
        if accept_first and len(handshakes) == 1:
            return None
        status = statuses[min(len(handshakes) - 1, len(statuses) - 1)]
        return connection.respond(status, f"HTTP {status}\n")

    async def handler(ws) -> None:
        await ws.recv()
        await ws.send(json.dumps({"action": "subscribed", "subscription_ids": ["s1"], "stream_id": "st",
                                  "sequence": 0}))
        await ws.close(1001)
    return serve(handler, "127.0.0.1", 0, process_request=process_request)


@pytest.mark.parametrize("status", [400, 404, 405, 426])
def test_a_permanent_handshake_answer_ends_the_stream_after_a_few_tries(status):
    """400/404/405/426 were retried for ever with backoff (max_attempts is unset by default): a misconfigured URL
    looked like a quiet stream. Now StreamError after PERMANENT_REFUSALS_FIRST answers in a row."""
    handshakes: list[str] = []

    async def run() -> str:
        async with stub([status], handshakes) as server:
            port = server.sockets[0].getsockname()[1]
            client = StreamClient(f"ws://127.0.0.1:{port}/v1/stream?token={SECRET}", token=TOKEN,
                                  initial_backoff=0.01, max_backoff=0.02)
            with pytest.raises(StreamError) as info:
                async for _ in client.events():
                    pass
            assert not isinstance(info.value, StreamAuthError)
            return str(info.value)
    message = asyncio.run(asyncio.wait_for(run(), 20))
    assert len(handshakes) == PERMANENT_REFUSALS_FIRST == 3
    assert f"HTTP {status} 3 times in a row" in message and "/v1/stream" in message
    assert "ws://127.0.0.1:" in message and SECRET not in message and TOKEN not in message


def test_a_brief_404_of_a_deploy_is_ridden_out_by_a_client_that_had_a_stream():
    """A URL that opened a stream before is the right one: a load balancer's 404 during a deploy is retried up
    to PERMANENT_REFUSALS_AFTER_CONNECT times in a row (minutes at the default backoff), then StreamError."""
    handshakes: list[str] = []

    async def run() -> StreamClient:
        async with stub([404], handshakes, accept_first=True) as server:
            port = server.sockets[0].getsockname()[1]
            client = StreamClient(f"ws://127.0.0.1:{port}/v1/stream", token=TOKEN, initial_backoff=0.001,
                                  max_backoff=0.002)
            with pytest.raises(StreamError, match=f"HTTP 404 {PERMANENT_REFUSALS_AFTER_CONNECT} times in a row"):
                async for _ in client.events():
                    pass
            return client
    client = asyncio.run(asyncio.wait_for(run(), 20))
    assert client.stats.connects == 1
    assert len(handshakes) == 1 + PERMANENT_REFUSALS_AFTER_CONNECT


def test_a_deploy_answering_404_then_the_stream_again_goes_on():
    """Fewer permanent-looking answers than allowed, then a stream: no error, the count starts again."""
    handshakes: list[str] = []
    statuses = [404] * (PERMANENT_REFUSALS_FIRST - 1)

    def process_request(connection, request):
        handshakes.append(request.path)
        if len(handshakes) <= len(statuses):
            return connection.respond(statuses[len(handshakes) - 1], "not yet\n")
        return None

    async def handler(ws) -> None:
        await ws.recv()
        await ws.send(json.dumps({"action": "subscribed", "subscription_ids": ["s1"], "stream_id": "st",
                                  "sequence": 0}))
        await ws.send(json.dumps({"action": "event", "sequence": 1, "stream_id": "st", "channel": "events",
                                  "event": {"id": "e1"}}))
        await ws.wait_closed()

    async def run() -> list[str]:
        async with serve(handler, "127.0.0.1", 0, process_request=process_request) as server:
            port = server.sockets[0].getsockname()[1]
            async with StreamClient(f"ws://127.0.0.1:{port}/v1/stream", token=TOKEN, initial_backoff=0.01,
                                    max_backoff=0.02) as client:
                async for item in client.events():
                    return [item.event["id"]]
        return []
    assert asyncio.run(asyncio.wait_for(run(), 20)) == ["e1"]
    assert len(handshakes) == PERMANENT_REFUSALS_FIRST


@pytest.mark.parametrize("status", [503, 429, 500])
def test_a_busy_answer_is_retried_until_max_attempts(status):
    """5xx and 429 are a server busy for a while: retried with backoff (here until max_attempts), never
    taken for a wrong URL."""
    handshakes: list[str] = []

    async def run() -> None:
        async with stub([status], handshakes) as server:
            port = server.sockets[0].getsockname()[1]
            client = StreamClient(f"ws://127.0.0.1:{port}/v1/stream", token=TOKEN, initial_backoff=0.01,
                                  max_backoff=0.02, max_attempts=8)
            with pytest.raises(StreamError, match="gave up after 8 reconnect attempts"):
                async for _ in client.events():
                    pass
    asyncio.run(asyncio.wait_for(run(), 20))
    assert len(handshakes) == 9


def test_a_websocket_server_that_answers_no_subscription_ends_the_stream_after_a_few_tries():
    """Another service's WebSocket endpoint at a wrong URL (here an echo server) accepts the connection and never
    answers the subscription: the client waited on it for ever, a quiet stream. Now each connection gets
    open_timeout for the answer and, as for a 404, PERMANENT_REFUSALS_FIRST of them in a row end the stream."""
    connections: list[int] = []

    async def echo(ws) -> None:
        connections.append(1)
        async for message in ws:
            await ws.send(message)

    async def run() -> str:
        async with serve(echo, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            client = StreamClient(f"ws://127.0.0.1:{port}/echo", token="t" * 20, open_timeout=0.5,
                                  initial_backoff=0.01, max_backoff=0.05)
            with pytest.raises(StreamError) as info:
                await asyncio.wait_for(anext(client.events()), 20)      # before: still waiting at this timeout
            return str(info.value)
    message = asyncio.run(run())
    assert message == (f"ws://127.0.0.1:{message.split(':')[2].split('/')[0]}/echo accepted the WebSocket but did not "
                       "answer the subscription within 0.5 s, 3 times in a row: not the gateway's stream endpoint (its "
                       "path is /v1/stream)?")
    assert len(connections) == PERMANENT_REFUSALS_FIRST == 3

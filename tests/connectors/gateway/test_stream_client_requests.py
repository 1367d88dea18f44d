"""StreamClient.publish() on a real gateway (uvicorn in a thread, real sockets): a publish that fails before its
reply can come leaves nothing behind in the client's table of requests waiting for a reply."""
from __future__ import annotations

import asyncio
import datetime

import pytest
import requests
from gateway_helpers import AUTH, TOKEN, until
from strategies import event_dicts
from websockets.protocol import State

from wia_security.connectors.websocket_client import StreamClient, StreamError


def post(gw, events) -> None:
    r = requests.post(gw.url + "/v1/events", json=events, headers=AUTH)
    assert r.status_code == 200, r.text


def test_a_publish_of_events_that_are_not_json_leaves_no_pending_request(make_gateway):
    """json.dumps ran after the request was registered: each publish of an event holding a datetime raised
    TypeError and left its entry for as long as the connection lived (hours, on a working one)."""
    gw = make_gateway()
    events = event_dicts(3, seed=961)

    async def run() -> tuple[StreamClient, dict, list[str]]:
        client = StreamClient(gw.ws_url, token=TOKEN)
        got: list[str] = []

        async def consume() -> None:
            async for item in client.events():
                got.append(item.event["id"])
        consumer = asyncio.ensure_future(consume())
        await until(lambda: client.subscription_ids)
        for _ in range(50):
            with pytest.raises(TypeError, match="not JSON serializable"):
                await client.publish([{**events[0], "timestamp": datetime.datetime.now()}])
        pending_after_failures = len(client._pending)
        reply = await client.publish(events, timeout=10)          # the connection is still good
        await until(lambda: len(got) == 3)
        await client.close()
        await asyncio.wait_for(consumer, 5)
        return client, {"pending": pending_after_failures, **reply}, got

    client, reply, got = asyncio.run(asyncio.wait_for(run(), 30))
    assert reply["pending"] == 0
    assert reply["accepted"] == 3 and got == [e["id"] for e in events]
    assert client._pending == {}


def test_a_publish_on_a_connection_closed_under_it_fails_and_leaves_no_pending_request(make_gateway):
    """The consumer is busy with an event (events() suspended at its yield) when the connection drops: each
    publish meanwhile raised websockets' ConnectionClosed and left its entry until events() ran again."""
    gw = make_gateway()

    async def run() -> tuple[list[int], int]:
        client = StreamClient(gw.ws_url, token=TOKEN, initial_backoff=0.01, max_backoff=0.05)
        busy, done = asyncio.Event(), asyncio.Event()

        async def consume() -> None:
            async for _ in client.events():
                busy.set()
                await done.wait()                    # a slow handler: events() does not run meanwhile
                return
        consumer = asyncio.ensure_future(consume())
        await until(lambda: client.subscription_ids)
        await asyncio.to_thread(post, gw, event_dicts(1, seed=962))
        await asyncio.wait_for(busy.wait(), 10)
        ws = client._ws
        ws.transport.abort()                         # the network drops
        await until(lambda: ws.state is State.CLOSED)
        pending: list[int] = []
        for _ in range(20):
            with pytest.raises(StreamError, match="closed before the request was sent"):
                await client.publish(event_dicts(1, seed=963))
            pending.append(len(client._pending))
        done.set()
        await asyncio.wait_for(consumer, 5)
        await client.close()
        return pending, len(client._pending)

    pending, after = asyncio.run(asyncio.wait_for(run(), 30))
    assert pending == [0] * 20 and after == 0

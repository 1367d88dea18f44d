"""StreamClient and a subscription the gateway refuses: `E3003` (unavailable: the gateway-wide subscription cap,
a replay still being written, a shutdown) is asked again over the reconnect backoff, and taken once there is room;
any other refusal (a limit of this connection, a bad filter) ends the stream with StreamError, since the same
subscription would be refused again. Real gateway, real `websockets` clients."""
from __future__ import annotations

import asyncio
import json

import pytest
import requests
from gateway_helpers import AUTH, TOKEN, recv_json, until
from strategies import event_dicts
from websockets.asyncio.client import connect

from wia_security.connectors.websocket_client import StreamClient, StreamError, StreamSubscription


def test_a_subscription_refused_at_the_gateways_cap_is_taken_once_a_place_is_free(make_gateway):
    gw = make_gateway(max_subscriptions=1)
    event = event_dicts(1, seed=141, event_type="alert")[0]

    async def run() -> list[str]:
        async with connect(gw.ws_url, additional_headers=AUTH) as holder:
            await holder.send(json.dumps({"action": "subscribe", "subscriptions": [{"channel": "alerts"}]}))
            assert (await recv_json(holder))["action"] == "subscribed"
            client = StreamClient(gw.ws_url, token=TOKEN, initial_backoff=0.05, max_backoff=0.2)
            got: list[str] = []

            async def consume() -> None:
                async for item in client.events():
                    got.append(item.event["id"])
                    return
            consumer = asyncio.ensure_future(consume())
            await until(lambda: client.stats.errors_total >= 2 or consumer.done())   # refused, and asked again
            assert not consumer.done(), consumer.exception()                          # the stream lives on
            assert {e["code"] for e in client.stats.errors} == {"E3003"}
        await until(lambda: client.subscription_ids)                                  # the holder left: taken
        await asyncio.to_thread(requests.post, gw.url + "/v1/events", json=event, headers=AUTH)
        await asyncio.wait_for(consumer, 20)
        await client.close()
        return got
    assert asyncio.run(asyncio.wait_for(run(), 60)) == [event["id"]]


def test_a_refusal_no_retry_can_mend_still_ends_the_stream(make_gateway):
    gw = make_gateway(max_client_subscriptions=1)
    client = StreamClient(gw.ws_url, token=TOKEN, initial_backoff=0.05, max_backoff=0.2,
                          subscriptions=[StreamSubscription(), StreamSubscription()])

    async def run() -> None:
        async for _ in client.events():
            pass
    with pytest.raises(StreamError, match="refused the subscription: E1001"):
        asyncio.run(asyncio.wait_for(run(), 30))
    assert client.stats.connects == 1

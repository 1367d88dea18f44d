"""Stream subscriptions are bounded per token too (--max-token-subscriptions, default 1,000, error E3003 as for the
gateway-wide cap): one token (a tenant, a leaked credential, a client reconnecting in a loop) could take all of
--max-subscriptions over many connections and starve every other client. In anonymous mode, where any token or
none is taken, the bound is per peer address. Real gateway, real `websockets` clients on loopback addresses."""
from __future__ import annotations

import asyncio
import json

import requests
from gateway_helpers import AUTH, TOKEN, recv_json, until
from websockets.asyncio.client import connect

OTHER_TOKEN = "other-tenant-token-fedcba9876543210"
OTHER = {"Authorization": f"Bearer {OTHER_TOKEN}"}


def subscribe(count: int, request_id: str) -> str:
    return json.dumps({"action": "subscribe", "request_id": request_id, "subscriptions": [{"channel": "alerts"}] * count})


def sample(gw, line_start: str) -> float:
    text = requests.get(gw.url + "/metrics", headers=AUTH).text
    [line] = [ln for ln in text.splitlines() if ln.startswith(line_start + " ")]
    return float(line.rsplit(" ", 1)[1])


def test_one_token_cannot_take_every_subscription_and_another_token_still_subscribes(make_gateway):
    gw = make_gateway(tokens=[TOKEN, OTHER_TOKEN], max_subscriptions=10, max_client_subscriptions=3,
                      max_token_subscriptions=4)

    async def run() -> None:
        async with connect(gw.ws_url, additional_headers=AUTH) as a1, \
                connect(gw.ws_url, additional_headers=AUTH) as a2, \
                connect(gw.ws_url, additional_headers=AUTH) as a3:
            await a1.send(subscribe(3, "a1"))
            assert (await recv_json(a1))["action"] == "subscribed"
            await a2.send(subscribe(2, "a2"))
            refused = await recv_json(a2)
            assert (refused["action"], refused["code"], refused["request_id"]) == ("error", "E3003", "a2")
            assert "this token" in refused["message"] and "hold 3 subscriptions; at most 4" in refused["message"]
            await a2.send(subscribe(1, "a2b"))
            reply = await recv_json(a2)
            assert reply["action"] == "subscribed" and reply["config"]["max_subscriptions_per_token"] == 4
            await a3.send(subscribe(1, "a3"))                       # a third connection of the same token
            assert (await recv_json(a3))["code"] == "E3003"
            assert sample(gw, "wia_gateway_stream_token_subscriptions_most") == 4
            # the other token is not starved: the gateway has room, and its own budget is whole
            async with connect(gw.ws_url, additional_headers=OTHER) as b:
                await b.send(subscribe(3, "b1"))
                assert len((await recv_json(b))["subscription_ids"]) == 3
                assert gw.gateway.hub.subscriptions == 7
            # the token's place comes back when one of its connections ends
        await until(lambda: gw.gateway.hub.subscriptions == 0 and not gw.gateway.hub.owner_subscriptions)
        async with connect(gw.ws_url, additional_headers=AUTH) as a4:
            await a4.send(subscribe(3, "a4"))
            assert (await recv_json(a4))["action"] == "subscribed"
    asyncio.run(asyncio.wait_for(run(), 60))
    assert sample(gw, 'wia_gateway_stream_subscribes_refused_total{reason="token_limit"}') == 2
    assert sample(gw, 'wia_gateway_stream_subscribes_refused_total{reason="gateway_limit"}') == 0
    assert sample(gw, "wia_gateway_stream_max_token_subscriptions") == 4
    stats = requests.get(gw.url + "/v1/stats", headers=AUTH).json()["stream"]
    assert stats["max_token_subscriptions"] == 4


def test_an_unsubscribe_gives_the_token_its_place_back(make_gateway):
    gw = make_gateway(max_token_subscriptions=2)

    async def run() -> None:
        async with connect(gw.ws_url, additional_headers=AUTH) as a, connect(gw.ws_url, additional_headers=AUTH) as b:
            await a.send(subscribe(2, "a"))
            ids = (await recv_json(a))["subscription_ids"]
            await b.send(subscribe(1, "b"))
            assert (await recv_json(b))["code"] == "E3003"
            await a.send(json.dumps({"action": "unsubscribe", "subscription_ids": ids[:1]}))
            assert (await recv_json(a))["action"] == "unsubscribed"
            await b.send(subscribe(1, "b2"))
            assert (await recv_json(b))["action"] == "subscribed"
    asyncio.run(asyncio.wait_for(run(), 30))


def test_anonymous_mode_bounds_each_peer_address_whatever_token_it_shows(make_gateway):
    gw = make_gateway(tokens=[], allow_anonymous=True, max_token_subscriptions=2)

    async def run() -> None:
        # A made-up token per connection does not make a new owner: in anonymous mode any token is taken
        made_up = [{"Authorization": f"Bearer made-up-token-{n:016d}"} for n in range(2)]
        async with connect(gw.ws_url, additional_headers=made_up[0]) as a, \
                connect(gw.ws_url, additional_headers=made_up[1]) as b, \
                connect(gw.ws_url, local_addr=("127.0.0.2", 0)) as other_peer:
            await a.send(subscribe(2, "a"))
            assert (await recv_json(a))["action"] == "subscribed"
            await b.send(subscribe(1, "b"))
            assert (await recv_json(b))["code"] == "E3003"
            await other_peer.send(subscribe(2, "c"))                # another address has its own budget
            assert (await recv_json(other_peer))["action"] == "subscribed"
    asyncio.run(asyncio.wait_for(run(), 30))

"""Stream subscriptions are bounded per connection (--max-client-subscriptions, default 100, error E1001) and across
all connections (--max-subscriptions, default 10,000, error E3003): every published event is matched against every
subscription on the event loop while ingest waits, so 1,000 connections of 100 subscriptions (any token holder may
open them) made each event cost 20-90 ms for everyone. A refused `subscribe` keeps the connection; a subscription
counts until it is unsubscribed or its connection ends. Real gateway, real `websockets` clients."""
from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import requests
from gateway_helpers import AUTH, TOKEN, recv_json, until
from strategies import event_dicts
from websockets.asyncio.client import connect

from wia_security.connectors.gateway import stream as stream_module


def sample(gw, line_start: str) -> float:
    text = requests.get(gw.url + "/metrics", headers=AUTH).text
    [line] = [ln for ln in text.splitlines() if ln.startswith(line_start + " ")]
    return float(line.rsplit(" ", 1)[1])


def subscribe(count: int, request_id: str, channel: str = "alerts") -> str:
    return json.dumps({"action": "subscribe", "request_id": request_id, "subscriptions": [{"channel": channel}] * count})


def test_subscriptions_beyond_the_gateway_wide_maximum_are_refused_e3003_and_freed_ones_are_taken(make_gateway):
    gw = make_gateway(max_subscriptions=5, max_client_subscriptions=3)

    async def run() -> None:
        async with connect(gw.ws_url, additional_headers=AUTH) as a, connect(gw.ws_url, additional_headers=AUTH) as b:
            await a.send(subscribe(3, "a1"))
            a_ids = (await recv_json(a))["subscription_ids"]
            assert len(a_ids) == 3
            await b.send(subscribe(3, "b1"))
            refused = await recv_json(b)
            assert (refused["action"], refused["code"], refused["request_id"]) == ("error", "E3003", "b1")
            assert "maximum of 5 subscriptions across all stream connections (3 held)" in refused["message"]
            await b.send(subscribe(2, "b2", channel="incidents"))
            assert len((await recv_json(b))["subscription_ids"]) == 2          # up to the maximum
            await b.send(subscribe(1, "b3"))
            assert (await recv_json(b))["code"] == "E3003"
            assert sample(gw, "wia_gateway_stream_subscriptions") == 5
            # the refused subscriptions get no events; the taken ones do
            event = event_dicts(1, seed=140, event_type="incident")[0]
            assert requests.post(gw.url + "/v1/events", json=event, headers=AUTH).status_code == 200
            got = await recv_json(b)
            assert (got["action"], got["event"]["id"]) == ("event", event["id"])
            # an unsubscribe frees its place
            await a.send(json.dumps({"action": "unsubscribe", "subscription_ids": a_ids[:1]}))
            assert (await recv_json(a))["action"] == "unsubscribed"
            await b.send(subscribe(1, "b4"))
            assert (await recv_json(b))["action"] == "subscribed"
        # and so does the end of a connection
        await until(lambda: gw.gateway.hub.subscriptions == 0)
        async with connect(gw.ws_url, additional_headers=AUTH) as c:
            await c.send(subscribe(3, "c1"))
            assert (await recv_json(c))["action"] == "subscribed"
    asyncio.run(asyncio.wait_for(run(), 60))
    assert sample(gw, 'wia_gateway_stream_subscribes_refused_total{reason="gateway_limit"}') == 2
    assert sample(gw, "wia_gateway_stream_max_subscriptions") == 5
    stats = requests.get(gw.url + "/v1/stats", headers=AUTH).json()["stream"]
    assert (stats["subscriptions"], stats["max_subscriptions"]) == (0, 5)


def test_the_per_connection_maximum_is_a_setting_and_is_said_in_the_subscribed_reply(make_gateway):
    gw = make_gateway(max_client_subscriptions=2)

    async def run() -> None:
        async with connect(gw.ws_url, additional_headers=AUTH) as ws:
            await ws.send(subscribe(3, "s1"))
            refused = await recv_json(ws)
            assert (refused["code"], refused["request_id"]) == ("E1001", "s1")
            assert "at most 2 subscriptions per connection" in refused["message"]
            await ws.send(subscribe(2, "s2"))
            reply = await recv_json(ws)
            assert reply["config"]["max_subscriptions_per_connection"] == 2
            await ws.send(json.dumps({"action": "unsubscribe", "channels": ["alerts"] * 3}))
            assert "channels names at most 2" in (await recv_json(ws))["message"]
    asyncio.run(asyncio.wait_for(run(), 30))
    assert sample(gw, 'wia_gateway_stream_subscribes_refused_total{reason="connection_limit"}') == 1


def test_a_resume_cannot_pass_the_gateway_wide_maximum_while_it_yields(make_gateway, monkeypatch):
    """A resume is matched against the replay buffer with yields to the loop (here after every match): subscriptions
    another connection takes meanwhile are counted again before the resume's are added."""
    monkeypatch.setattr(stream_module, "MATCHES_PER_YIELD", 1)
    gw = make_gateway(max_subscriptions=2)
    events = event_dicts(300, seed=141)
    assert requests.post(gw.url + "/v1/events", json=events, headers=AUTH).status_code == 200

    async def run() -> None:
        async with connect(gw.ws_url, additional_headers=AUTH) as a, connect(gw.ws_url, additional_headers=AUTH) as b:
            resume = {"stream_id": gw.gateway.hub.stream_id, "sequence": 0}
            await a.send(json.dumps({"action": "subscribe", "subscriptions": [{"channel": "events"}] * 2,
                                     "resume": resume, "request_id": "r"}))
            await b.send(subscribe(1, "b"))
            replies = [await recv_json(a), await recv_json(b)]
            taken = sum(len(r.get("subscription_ids", [])) for r in replies)
            assert taken <= 2 and gw.gateway.hub.subscriptions == taken
            assert any(r["action"] == "error" and r["code"] == "E3003" for r in replies)
    asyncio.run(asyncio.wait_for(run(), 30))


def test_serve_checks_the_subscription_limits():
    env = {**os.environ, "WIA_GATEWAY_TOKENS": TOKEN}
    for flag in ("--max-subscriptions", "--max-client-subscriptions", "--max-token-subscriptions"):
        r = subprocess.run([sys.executable, "-m", "wia_security", "serve", "--port", "1", flag, "0"],
                           env=env, capture_output=True, text=True, timeout=30)
        assert r.returncode == 2 and f"{flag}: must be at least 1" in r.stderr, r.stderr

"""Publishing matches each event against every subscription of every connection, on the event loop. It yielded only
after a quarter of a client queue (250 events), whatever the number of subscriptions: 100 connections of 100
subscriptions (any token holder may open them) made that 2.5 million matches, and a 1,000-event POST held the loop
12 s (a health check waited 12.1 s). It now also yields every MATCHES_PER_YIELD matches."""
from __future__ import annotations

import asyncio
import json
import threading

import requests
from gateway_helpers import AUTH, recv_json, until
from strategies import event_dicts
from websockets.asyncio.client import connect

#: subscriptions that match nothing: every published event is matched against each
NO_MATCH = [{"channel": "events", "filters": {"tags": [f"no-such-tag-{i}"]}} for i in range(100)]


def test_other_connections_are_served_while_events_are_matched_against_many_subscriptions(make_gateway, slow_matches):
    gw = make_gateway(max_token_subscriptions=10_000)        # one token holds them all here
    hub = gw.gateway.hub
    events = event_dicts(200, seed=1283)            # fewer than a slice of 250: no yield at all before

    async def run() -> int:
        subscribers = [await connect(gw.ws_url, additional_headers=AUTH) for _ in range(40)]
        try:
            for ws in subscribers:                  # 4,000 subscriptions: 800,000 matches for the 200 events
                await ws.send(json.dumps({"action": "subscribe", "subscriptions": NO_MATCH}))
                assert (await recv_json(ws, 30))["action"] == "subscribed"
            async with connect(gw.ws_url, additional_headers=AUTH) as other:
                posting = threading.Thread(target=requests.post, args=(gw.url + "/v1/events",),
                                           kwargs={"json": events, "headers": AUTH, "timeout": 120})
                posting.start()
                await until(lambda: hub.published > 0, 60)          # the events are being matched now
                await other.send(json.dumps({"action": "ping"}))
                assert (await recv_json(other, 60))["action"] == "pong"
                published_at_pong = hub.published
                await asyncio.to_thread(posting.join)
            return published_at_pong
        finally:
            for ws in subscribers:
                await ws.close()
    # before: the ping waited until all 200 had been matched
    assert asyncio.run(asyncio.wait_for(run(), 120)) < len(events)

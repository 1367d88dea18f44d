"""A resume matches each replayed record against each new subscription: up to --replay-events (10,000) x 100, a
million filter matches done in one go on the event loop, 0.35 s per `subscribe` message during which no other
connection was served (any token holder could send them back to back). It now yields to the loop between slices;
events published meanwhile still reach the resuming client exactly once, in order."""
from __future__ import annotations

import asyncio
import json
import threading

import requests
from gateway_helpers import AUTH, recv_json
from strategies import event_dicts
from websockets.asyncio.client import connect

#: 100 subscriptions that match nothing: each replayed record is matched against every one of them
NO_MATCH = [{"channel": "events", "filters": {"tags": [f"no-such-tag-{i}"]}} for i in range(100)]


def post_all(gw, events, batch: int = 2500) -> None:
    for i in range(0, len(events), batch):
        r = requests.post(gw.url + "/v1/events", json=events[i:i + batch], headers=AUTH)
        assert r.status_code == 200, r.text


def test_other_connections_are_served_while_a_large_resume_is_matched(make_gateway, slow_matches):
    gw = make_gateway()
    post_all(gw, event_dicts(5_000, seed=1280))
    stream_id = gw.gateway.hub.stream_id

    async def run() -> list[str]:
        order: list[str] = []
        async with connect(gw.ws_url, additional_headers=AUTH) as resuming, \
                connect(gw.ws_url, additional_headers=AUTH) as other:
            async def subscribed() -> None:
                reply = await recv_json(resuming, 60)
                assert reply["action"] == "subscribed" and reply["resume"]["replayed"] == 0
                order.append("subscribed")

            async def pong() -> None:
                reply = await recv_json(other, 60)
                assert reply["action"] == "pong"
                order.append("pong")
            waiting = asyncio.ensure_future(subscribed())
            await resuming.send(json.dumps({"action": "subscribe", "subscriptions": NO_MATCH,
                                            "resume": {"stream_id": stream_id, "sequence": 0}}))
            await asyncio.sleep(0.05)                           # the gateway is matching the resume now
            await other.send(json.dumps({"action": "ping"}))
            await asyncio.gather(waiting, pong())
        return order
    # before: the ping waited for the whole resume (the loop was held), so its pong came second
    assert asyncio.run(asyncio.wait_for(run(), 120)) == ["pong", "subscribed"]


def test_events_published_while_a_resume_is_matched_arrive_once_and_in_order(make_gateway):
    gw = make_gateway()
    first = event_dicts(5_000, seed=1281)
    post_all(gw, first)
    later = event_dicts(600, seed=1282)
    stream_id = gw.gateway.hub.stream_id
    # 99 subscriptions that match nothing, then one that matches every event: 100 matches per record
    subscriptions = [*NO_MATCH[:99], {"channel": "events"}]

    async def run() -> tuple[dict, list[int]]:
        async with connect(gw.ws_url, additional_headers=AUTH, max_queue=None) as ws:
            publisher = threading.Thread(target=post_all, args=(gw, later, 10))     # 60 requests of 10
            publisher.start()
            hub = gw.gateway.hub
            while hub.sequence == len(first):                   # publishing has begun: it goes on during the resume
                await asyncio.sleep(0.005)
            await ws.send(json.dumps({"action": "subscribe", "subscriptions": subscriptions,
                                      "resume": {"stream_id": stream_id, "sequence": 0}}))
            reply: dict = {}
            sequences: list[int] = []
            while len(sequences) < len(first) + len(later):
                message = await recv_json(ws, 60)
                if message["action"] == "subscribed":
                    reply = message
                    # everything up to the reply's sequence is replayed; events published while the resume was
                    # matched were missed when they were not matched after it
                    assert reply["resume"]["replayed"] == reply["sequence"] > len(first), reply["resume"]
                elif message["action"] == "event":
                    sequences.append(message["sequence"])
            await asyncio.to_thread(publisher.join)
        return reply, sequences
    reply, sequences = asyncio.run(asyncio.wait_for(run(), 120))
    assert reply["resume"]["status"] == "complete"
    assert sequences == list(range(1, len(first) + len(later) + 1))    # no gap, no repeat, in order

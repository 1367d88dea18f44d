"""`unsubscribe` while a resume's replay is still being written: the replay is rendered lazily (one queue entry,
written event by event), so it used to keep the subscriptions it was queued with and deliver every event of a
subscription the client had removed. Real gateway (uvicorn in a thread), real `websockets` client whose reading
is paused so the replay is held mid-way by the socket."""
from __future__ import annotations

import asyncio
import json

import requests
from gateway_helpers import AUTH, recv_json, until, tiny_socket
from strategies import event_dicts
from websockets.asyncio.client import connect


def test_events_of_a_replay_queued_for_a_removed_subscription_are_not_sent(make_gateway):
    gw = make_gateway()
    events = event_dicts(400, seed=561)
    for e in events:
        e.setdefault("meta", {})["raw"] = "x" * 20000          # 8 MB: far more than the socket buffers hold
    r = requests.post(gw.url + "/v1/events", json=events, headers=AUTH)
    assert r.status_code == 200, r.text
    stream_id = requests.get(gw.url + "/v1/stats", headers=AUTH).json()["stream"]["stream_id"]
    hub = gw.gateway.hub

    async def run() -> tuple[int, int, list[str]]:
        ws = await connect(gw.ws_url, additional_headers=AUTH, sock=tiny_socket(gw, 65536), max_queue=1)
        await ws.send(json.dumps({"action": "subscribe", "resume": {"stream_id": stream_id, "sequence": 0}}))
        subscribed = await recv_json(ws)
        assert subscribed["resume"]["replayed"] == 400
        ws.transport.pause_reading()                              # the replay backs up behind the socket
        [client] = hub.clients
        await until(lambda: client.replaying is not None)
        sent = -1
        while sent != client.sent:                                # the sender is held by the full socket
            sent = client.sent
            await asyncio.sleep(0.2)
        assert client.replay_pending() > 200                      # most of the replay is still to be written
        await ws.send(json.dumps({"action": "unsubscribe", "request_id": "u1",
                                  "subscription_ids": [subscribed["subscription_id"]]}))
        await until(lambda: not client.subscriptions)
        sent_before_unsubscribe = client.sent
        assert client.replay_pending() == 0                       # nothing of the replay waits any more
        ws.transport.resume_reading()
        got: list[str] = []
        while True:
            msg = await recv_json(ws, 10)
            if msg["action"] != "event":
                break
            got.append(msg["event"]["id"])
        assert (msg["action"], msg["request_id"]) == ("unsubscribed", "u1")
        await ws.send(json.dumps({"action": "ping", "request_id": "p1"}))
        assert (await recv_json(ws))["action"] == "pong"          # nothing else came after the reply
        await ws.close()
        return len(got), sent_before_unsubscribe, got
    received, sent_before, got = asyncio.run(asyncio.wait_for(run(), 60))
    # What the gateway had written before it took the unsubscribe arrives (plus at most the one event its sender
    # was waiting to write), in order; nothing after.
    assert got == [e["id"] for e in events[:received]]
    assert sent_before <= received <= sent_before + 1 < 200

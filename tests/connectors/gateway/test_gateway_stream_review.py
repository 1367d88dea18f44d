"""Findings of a review of the stream's message checks (helper 54): messages any client can send must be
answered with E1001, never reach the generic E5001 path, whose log.exception writes a traceback per message.
Real gateway (uvicorn in a thread), real `websockets` client."""
from __future__ import annotations

import asyncio
import json
import logging

import requests
from gateway_helpers import AUTH, recv_json, until, tiny_socket
from strategies import event_dicts
from websockets.asyncio.client import connect


def post(gw, events) -> None:
    r = requests.post(gw.url + "/v1/events", json=events, headers=AUTH)
    assert r.status_code == 200, r.text


def test_an_action_that_is_not_a_string_is_an_invalid_message(make_gateway, caplog):
    """`MESSAGE_KEYS.get(action)` raised TypeError for an unhashable action (a list, an object): the client got
    E5001 'internal error' and the gateway logged a traceback at ERROR for every such message."""
    gw = make_gateway()

    async def run() -> list[dict]:
        async with connect(gw.ws_url, additional_headers=AUTH) as ws:
            replies = []
            for action in (["subscribe"], {"a": 1}, 7, None):
                await ws.send(json.dumps({"action": action, "request_id": "r"}))
                replies.append(await recv_json(ws))
            return replies

    with caplog.at_level(logging.ERROR, logger="wia_security.gateway"):
        replies = asyncio.run(asyncio.wait_for(run(), 30))
    assert [(r["action"], r["code"], r["request_id"]) for r in replies] == [("error", "E1001", "r")] * 4, replies
    assert all("unknown action" in r["message"] for r in replies), replies
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


def test_a_peer_that_stops_reading_for_good_is_dropped_under_drop_oldest_too(make_gateway, monkeypatch):
    """Policy drop_oldest never overflows, so the stuck-peer drop (52c23eb/df6f0c3) never ran: the sender waited
    on its full socket for ever, and the connection held its slot of --max-stream-clients, its tasks, a full
    queue and its socket buffer for as long as the peer kept its window shut."""
    from wia_security.connectors.gateway import stream as stream_module
    monkeypatch.setattr(stream_module, "SLOW_CONSUMER_CLOSE_SECONDS", 0.5)
    gw = make_gateway(client_queue_bytes=256 * 1024, slow_consumer="drop_oldest")
    events = event_dicts(200, seed=541)
    for e in events:
        e.setdefault("meta", {})["raw"] = "x" * 16000

    async def run() -> list[str]:
        stuck = await connect(gw.ws_url, additional_headers=AUTH, sock=tiny_socket(gw), max_queue=1)
        await stuck.send(json.dumps({"action": "subscribe"}))
        await recv_json(stuck)
        stuck.transport.pause_reading()                           # never reads again
        got: list[str] = []
        async with connect(gw.ws_url, additional_headers=AUTH) as reader:
            await reader.send(json.dumps({"action": "subscribe"}))
            await recv_json(reader)
            await asyncio.to_thread(post, gw, events)
            while len(got) < len(events):
                msg = await recv_json(reader)
                if msg["action"] == "event":
                    got.append(msg["event"]["id"])
            await until(lambda: len(gw.gateway.hub.clients) == 1 and gw.gateway.open_streams == 1)
        stuck.transport.abort()
        return got
    got = asyncio.run(asyncio.wait_for(run(), 60))
    assert got == [e["id"] for e in events]

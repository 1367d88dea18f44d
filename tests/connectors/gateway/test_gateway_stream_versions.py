"""The stream publishes what the store kept: a new event or a newer version, never a re-send or an older version.

The store ignores a re-send and an older version of an event it holds (docs/connectors/delivery.md), and the feed
and a stream resume, read from the store, never show them; the live stream published every accepted event all the
same (helper 127's review). A subscriber tracking events by id saw a closed incident open again: new version,
re-send and old version gave three messages, the last one older than the stored event. Without a store
(`--no-store`) every accepted event is still published. Real gateway, real websockets client."""
from __future__ import annotations

import asyncio
import copy
import json

import requests
from websockets.asyncio.client import connect

from wia_security import IncidentBuilder

from gateway_helpers import AUTH, recv_json


def _versions() -> tuple[dict, dict]:
    opened = IncidentBuilder().title("lateral movement").severity(7).build().to_dict()
    closed = copy.deepcopy(opened)
    closed["data"]["status"] = "closed"
    closed["timestamp"] = closed["timestamp"].replace(closed["timestamp"][:4], str(int(closed["timestamp"][:4]) + 1), 1)
    return opened, closed


def _streamed(gw, bodies: list) -> list[dict]:
    async def run() -> list[dict]:
        async with connect(gw.ws_url, additional_headers=AUTH) as ws:
            await ws.send(json.dumps({"action": "subscribe", "subscriptions": [{"channel": "events"}]}))
            assert (await recv_json(ws))["action"] == "subscribed"
            for body in bodies:
                answer = await asyncio.to_thread(requests.post, gw.url + "/v1/events", json=body, headers=AUTH, timeout=30)
                assert answer.status_code == 200, answer.text
                assert {r["status"] for r in answer.json()["results"]} == {"accepted"}
            await ws.send(json.dumps({"action": "ping"}))             # everything published before the pong is here
            got = []
            while (message := await recv_json(ws, 30))["action"] != "pong":
                if message["action"] == "event":
                    got.append(message["event"])
            return got
    return asyncio.run(run())


def test_a_re_send_or_an_older_version_is_not_streamed(make_gateway):
    gw = make_gateway()
    opened, closed = _versions()
    got = _streamed(gw, [[opened], [closed], [closed], [opened], [closed, opened, closed]])
    assert [e["data"]["status"] for e in got] == [opened["data"]["status"], "closed"]
    feed = requests.get(gw.url + "/v1/events", params={"after": "0"}, headers=AUTH, timeout=30).json()["events"]
    assert [e["data"]["status"] for e in feed] == ["closed"]          # the stream agrees with the store


def test_a_batch_holding_two_versions_streams_both_in_order_once(make_gateway):
    gw = make_gateway()
    opened, closed = _versions()
    got = _streamed(gw, [[opened, closed, opened]])
    assert [e["data"]["status"] for e in got] == [opened["data"]["status"], "closed"]


def test_without_a_store_every_accepted_event_is_streamed(make_gateway):
    gw = make_gateway(store=None)
    opened, closed = _versions()
    got = _streamed(gw, [[opened], [opened]])
    assert len(got) == 2

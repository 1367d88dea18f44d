"""`unsubscribe` by channel names only channels that exist, as `subscribe` does: a typo (`alert` for `alerts`) was
answered `unsubscribed` with nothing removed, and the client went on getting those events."""
from __future__ import annotations

import asyncio
import json

from gateway_helpers import AUTH, recv_json
from websockets.asyncio.client import connect


def test_unsubscribe_from_an_unknown_channel_is_an_error_and_removes_nothing(make_gateway):
    gw = make_gateway()

    async def run() -> None:
        async with connect(gw.ws_url, additional_headers=AUTH) as ws:
            await ws.send(json.dumps({"action": "subscribe", "subscriptions": [{"channel": "alerts"},
                                                                               {"channel": "incidents"}]}))
            subscribed = await recv_json(ws)
            await ws.send(json.dumps({"action": "unsubscribe", "channels": ["incidents", "alert"], "request_id": "u1"}))
            error = await recv_json(ws)
            assert (error["action"], error["code"], error["request_id"]) == ("error", "E1001", "u1")
            assert "unknown channel(s) 'alert'" in error["message"] and "alerts" in error["message"]
            # nothing was removed: both go on, and a known channel without a subscription is no error
            await ws.send(json.dumps({"action": "unsubscribe", "channels": ["alerts", "vulnerabilities"],
                                      "request_id": "u2"}))
            reply = await recv_json(ws)
            assert (reply["action"], reply["subscription_ids"]) == ("unsubscribed", [subscribed["subscription_ids"][0]])
            await ws.send(json.dumps({"action": "unsubscribe", "channels": ["incidents"], "request_id": "u3"}))
            reply = await recv_json(ws)
            assert (reply["action"], reply["subscription_ids"]) == ("unsubscribed", [subscribed["subscription_ids"][1]])
    asyncio.run(asyncio.wait_for(run(), 30))


def test_sdk_channels_are_free_names_to_unsubscribe_too(make_gateway):
    gw = make_gateway()

    async def run() -> None:
        async with connect(gw.ws_url, additional_headers=AUTH) as ws:
            await ws.send(json.dumps({"type": "subscribe", "id": "s1", "payload": {"channel": "my-feed"}}))
            assert (await recv_json(ws))["type"] == "ack"
            await ws.send(json.dumps({"type": "unsubscribe", "id": "u1", "payload": {"channel": "my-feed"}}))
            reply = await recv_json(ws)
            assert (reply["type"], reply["id"], len(reply["payload"]["subscription_ids"])) == ("ack", "u1", 1)
    asyncio.run(asyncio.wait_for(run(), 30))

"""The stream's rate limit on the real gateway: a refused message's error names its request, and a client that
keeps sending past the limit is closed with the documented code 4029. Raw `websockets` connections."""
from __future__ import annotations

import asyncio
import json

import pytest
from gateway_helpers import AUTH, recv_json
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from wia_security.connectors.gateway.stream import CLOSE_RATE_LIMITED


def test_a_rate_limited_message_gets_an_error_with_its_request_id(make_gateway):
    gw = make_gateway(client_rate=5)

    async def run() -> list[dict]:
        async with connect(gw.ws_url, additional_headers=AUTH) as ws:
            for i in range(20):                                  # at once: 5 pass, 15 are refused
                await ws.send(json.dumps({"action": "ping", "request_id": f"p{i}"}))
            await ws.send("x" * 70_000)                          # too long to be read once refused: no id
            return [await recv_json(ws) for _ in range(21)]
    replies = asyncio.run(asyncio.wait_for(run(), 30))
    refused = [r for r in replies if r["action"] == "error"]
    assert {r["code"] for r in refused} == {"E3002"} and len(refused) >= 15
    # Before: no request_id on any E3002, so a client waiting for that reply waited for its whole timeout
    assert sorted(r.get("request_id", "-") for r in replies) == sorted([f"p{i}" for i in range(20)] + ["-"])


def test_a_client_that_keeps_sending_past_the_limit_is_closed_with_4029(make_gateway):
    gw = make_gateway(client_rate=5)

    async def run() -> int | None:
        async with connect(gw.ws_url, additional_headers=AUTH) as ws:
            with pytest.raises(ConnectionClosed):
                for _ in range(500):                             # 10 x the rate refused in a row closes it
                    await ws.send(json.dumps({"action": "ping"}))
                while True:
                    await recv_json(ws, 10)
            return ws.close_code
    assert asyncio.run(asyncio.wait_for(run(), 30)) == CLOSE_RATE_LIMITED == 4029

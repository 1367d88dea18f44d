"""Findings of a review of the stream's message checks (helper 54): messages any client can send must be
answered with E1001, never reach the generic E5001 path, whose log.exception writes a traceback per message.
Real gateway (uvicorn in a thread), real `websockets` client."""
from __future__ import annotations

import asyncio
import json
import logging

from gateway_helpers import AUTH
from websockets.asyncio.client import connect


async def recv_json(ws, timeout: float = 5) -> dict:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


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

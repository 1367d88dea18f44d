"""gateway (`/v1/events`) -> its store -> the WebSocket stream -> `StreamClient`, a consumer that stops and starts again
with `resume_from` its saved (stream_id, sequence). Events are timed in every valid spelling, and updated by newer
versions whose time sorts before the older one's as a string (`+14:00` against `Z`, fewer fraction digits, a
lower-case `t`), with the older versions re-sent after them: every event and every newer version is streamed
exactly once, in order, nothing skipped across the resume, no older version published after a newer one, and the
gateway's store and feed end with the newest version of each."""
from __future__ import annotations

import asyncio

import pytest
import requests
from e2e_helpers import (AUTH, TOKEN, VERSION_PAIRS, expected, instant, store_rows, time_spellings,
                         with_times)
from strategies import event_dicts

pytest.importorskip("starlette", reason="the server extra is not installed")
pytest.importorskip("websockets", reason="the server extra is not installed")

from wia_security.connectors.gateway import GatewaySettings  # noqa: E402
from wia_security.connectors.gateway.server import GatewayServer  # noqa: E402
from wia_security.connectors.websocket_client import StreamClient  # noqa: E402



def post(url: str, events: list[dict]) -> None:
    reply = requests.post(url + "/v1/events", json=events, headers=AUTH, timeout=30)
    assert reply.status_code == 200, reply.text
    assert reply.json().get("rejected", 0) == 0, reply.json()


async def take(client: StreamClient, count: int, got: list[dict], position: list) -> None:
    if count == 0:
        return
    async for item in client.events():
        got.append(item.event)
        position[:] = [item.stream_id, item.sequence]
        if len(got) == count:
            return


def test_a_resumed_consumer_gets_every_event_and_newer_version_once(tmp_path):
    spellings = time_spellings()
    first = with_times(event_dicts(len(spellings), seed=1495, wild=True), spellings)
    older = event_dicts(len(VERSION_PAIRS), seed=1496)
    for event, (old, _) in zip(older, VERSION_PAIRS):
        event["timestamp"] = old
    newer = [{**e, "timestamp": new, "severity": (int(e["severity"]) + 1) % 10}
             for e, (_, new) in zip(older, VERSION_PAIRS)]
    assert all(instant(n["timestamp"]) > instant(o["timestamp"]) and n["timestamp"] < o["timestamp"]
               for o, n in zip(older, newer))
    gw = GatewayServer(GatewaySettings(tokens=[TOKEN], store=f"sqlite:///{tmp_path}/gateway.db",
                                       dead_letter=str(tmp_path / "gateway-dead.ndjson"), taxii=False)).start()
    streamed: list[dict] = []
    position: list = []

    async def run() -> None:
        consumer = StreamClient(gw.ws_url, token=TOKEN)
        task = asyncio.ensure_future(take(consumer, len(first) // 2, streamed, position))
        for _ in range(1500):
            if consumer.subscription_ids:
                break
            await asyncio.sleep(0.01)
        await asyncio.to_thread(post, gw.url, first[:len(first) // 2])
        await asyncio.wait_for(task, 20)
        await consumer.close()
        # the consumer is gone: the rest, the older versions, the newer ones, the older ones again (late)
        for batch in (first[len(first) // 2:], older, newer, older):
            await asyncio.to_thread(post, gw.url, batch)
        resumed = StreamClient(gw.ws_url, token=TOKEN, resume_from=(position[0], position[1]))
        want = len(first) + len(older) + len(newer)
        await asyncio.wait_for(take(resumed, want, streamed, position), 20)
        # nothing more comes: a marker posted last is the next event
        marker = event_dicts(1, seed=1497)[0]
        await asyncio.to_thread(post, gw.url, [marker])
        await asyncio.wait_for(take(resumed, want + 1, streamed, position), 20)
        assert streamed[-1]["id"] == marker["id"] and resumed.stats.gaps == []
        await resumed.close()

    try:
        asyncio.run(asyncio.wait_for(run(), 60))
        feed = requests.get(gw.url + "/v1/events", params={"after": 0, "limit": 1000}, headers=AUTH,
                            timeout=30).json()["events"]
    finally:
        gw.stop()
    want = [expected(e) for e in [*first, *older, *newer]]
    assert [e["id"] for e in streamed[:-1]] == [e["id"] for e in want]
    assert streamed[:-1] == want
    newest = {e["id"]: expected(e) for e in [*first, *older, *newer]}
    rows = store_rows(tmp_path / "gateway.db")
    assert {i: v for i, v in rows.items() if len(v) != 1} == {}
    assert {i: v[0] for i, v in rows.items() if i in newest} == newest
    assert {e["id"]: e for e in feed if e["id"] in newest} == newest

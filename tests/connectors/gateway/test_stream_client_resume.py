"""StreamClient(resume_from=(stream_id, sequence)): a consumer that persisted the position of the last event it
handled, restarted after a crash, gets exactly the events it missed, once, in order; past the gateway's replay
memory the loss is reported as a gap. The real gateway (uvicorn in a thread, real sockets)."""
from __future__ import annotations

import asyncio
import json

import pytest
import requests
from gateway_helpers import AUTH, TOKEN, until
from strategies import event_dicts

from wia_security.connectors.websocket_client import StreamClient


def post(gw, events) -> None:
    r = requests.post(gw.url + "/v1/events", json=events, headers=AUTH)
    assert r.status_code == 200, r.text


async def consume_until_crash(gw, events, handled: int, store) -> list[str]:
    """A consumer that writes (stream_id, sequence) to `store` after each event it handles and dies after
    `handled` events, with more delivered to it but not handled."""
    client = StreamClient(gw.ws_url, token=TOKEN)
    got: list[str] = []

    async def consume() -> None:
        async for item in client.events():
            got.append(item.event["id"])
            store.write_text(json.dumps([item.stream_id, item.sequence]))
            if len(got) == handled:
                raise RuntimeError("the consumer crashed")
    consumer = asyncio.ensure_future(consume())
    await until(lambda: client.subscription_ids)
    await asyncio.to_thread(post, gw, events)
    with pytest.raises(RuntimeError, match="crashed"):
        await asyncio.wait_for(consumer, 10)
    await client.close()
    return got


def test_a_restarted_consumer_gets_exactly_what_it_missed_once(make_gateway, tmp_path):
    gw = make_gateway()
    events = event_dicts(40, seed=964)
    store = tmp_path / "position.json"

    async def run() -> tuple[list[str], list[str], StreamClient]:
        before = await consume_until_crash(gw, events[:10], 7, store)
        await asyncio.to_thread(post, gw, events[10:30])          # published while no consumer runs
        stream_id, sequence = json.loads(store.read_text())
        client = StreamClient(gw.ws_url, token=TOKEN, resume_from=(stream_id, sequence))
        after: list[str] = []

        async def consume() -> None:
            async for item in client.events():
                after.append(item.event["id"])
                if len(after) == 23:
                    await asyncio.to_thread(post, gw, events[30:])   # live ones after the replay
                if len(after) == 33:
                    return
        await asyncio.wait_for(consume(), 15)
        await client.close()
        return before, after, client

    before, after, client = asyncio.run(asyncio.wait_for(run(), 30))
    ids = [e["id"] for e in events]
    assert before == ids[:7]
    assert after == ids[7:]                       # 3 delivered but not handled, 20 missed, 10 live: each once
    assert client.stats.replayed == 23 and client.stats.gaps == [] and client.stats.connects == 1


def test_a_resume_past_the_replay_memory_reports_the_gap(make_gateway, tmp_path):
    gw = make_gateway(replay_events=20)
    events = event_dicts(65, seed=965)
    store = tmp_path / "position.json"

    async def run() -> tuple[list[int], list[dict], int]:
        await consume_until_crash(gw, events[:5], 5, store)
        await asyncio.to_thread(post, gw, events[5:])             # 60 missed; the gateway keeps the last 20
        stream_id, sequence = json.loads(store.read_text())
        gaps: list[dict] = []
        client = StreamClient(gw.ws_url, token=TOKEN, resume_from=(stream_id, sequence), on_gap=gaps.append)
        got: list[int] = []
        async for item in client.events():
            got.append(item.sequence)
            if item.event["id"] == events[-1]["id"]:
                break
        await client.close()
        return got, gaps, sequence

    got, gaps, sequence = asyncio.run(asyncio.wait_for(run(), 30))
    assert got == list(range(sequence + 41, sequence + 61))       # the 20 the gateway still had, once, in order
    assert len(gaps) == 1 and gaps[0]["status"] == "gap" and gaps[0]["after"] == sequence
    assert gaps[0]["missed_from"] == sequence + 1 and gaps[0]["missed_to"] == sequence + 40


@pytest.mark.parametrize("bad", [("", 3), (None, 3), ("s", -1), ("s", True), ("s", 1.5), ("s",), "s:3"])
def test_resume_from_that_is_not_a_position_is_refused(bad):
    with pytest.raises(ValueError, match="resume_from"):
        StreamClient("ws://127.0.0.1:1/v1/stream", token=TOKEN, resume_from=bad)


def test_resume_from_is_sent_in_the_first_subscribe():
    client = StreamClient("ws://127.0.0.1:1/v1/stream", token=TOKEN, resume_from=("stream-a", 41))
    assert client._subscribe_message()["resume"] == {"stream_id": "stream-a", "sequence": 41}
    assert "resume" not in StreamClient("ws://127.0.0.1:1/v1/stream", token=TOKEN)._subscribe_message()

"""StreamClient's position on the stream: a resume reports what it cannot replay, and nothing else, once.

On the real gateway (uvicorn in a thread) behind a TCP relay the test opens and shuts (`Gate`), so the test
decides when the client can come back: a subscription whose filters match rare events was resumed from its last
event, far behind the replay buffer, and reported as a gap events it was never meant to get; the heartbeat's
sequence now carries its position. A gap is reported once, not again on the next drop. A small `websockets`
server stands for a gateway that ignores a resume (the gateway always answers it)."""
from __future__ import annotations

import asyncio
import json

import requests
from gateway_helpers import AUTH, TOKEN, Gate, until
from strategies import event_dicts

from wia_security.connectors.websocket_client import StreamClient, StreamSubscription

EVENTS = event_dicts(300, seed=941)
ALERTS = [e for e in EVENTS if e["type"] == "alert"]
OTHERS = [e for e in EVENTS if e["type"] != "alert"]


def post(gw, events) -> None:
    r = requests.post(gw.url + "/v1/events", json=events, headers=AUTH)
    assert r.status_code == 200, r.text


async def drop_while(gate: Gate, client: StreamClient, gw, away: list[dict]) -> None:
    """Cuts the client's connection, publishes `away` while it cannot come back, then lets it in again."""
    gate.shut()
    reconnects = client.stats.reconnects
    client._ws.transport.abort()
    await until(lambda: client._ws is None)
    if away:
        await asyncio.to_thread(post, gw, away)
    await gate.open_to(gw.port)
    await until(lambda: client.stats.reconnects == reconnects + 1 and client._subscribed_here)


def test_a_rare_event_subscription_is_told_of_real_gaps_only(make_gateway):
    gw = make_gateway(replay_events=20, heartbeat_seconds=0.2)

    async def run() -> tuple[list[int], StreamClient]:
        gate = Gate()
        await gate.open_to(gw.port)
        client = StreamClient(gate.url(), token=TOKEN, subscriptions=[StreamSubscription("alerts")],
                              initial_backoff=0.02, max_backoff=0.1)
        got: list[int] = []

        async def consume() -> None:
            async for item in client.events():
                got.append(item.sequence)
        consumer = asyncio.ensure_future(consume())
        await until(lambda: client.subscription_ids)
        await asyncio.to_thread(post, gw, ALERTS[:1] + OTHERS[:60])     # 1 alert (sequence 1), then 60 others
        await until(lambda: got == [1])
        await until(lambda: client.last_sequence == 61)                # a heartbeat said where the stream is
        # Connected all along: nothing of the alerts channel was missed, whatever the buffer no longer holds
        await drop_while(gate, client, gw, [])
        assert client.stats.gaps_total == 0
        # Away while an alert and 60 others pass: the alert is out of the 20-event buffer, a real gap
        await drop_while(gate, client, gw, ALERTS[1:2] + OTHERS[60:120])
        await until(lambda: client.stats.gaps_total == 1)
        await asyncio.to_thread(post, gw, ALERTS[2:3])
        await until(lambda: len(got) == 2)
        await client.close()
        await asyncio.wait_for(consumer, 10)
        gate.shut()
        return got, client
    got, client = asyncio.run(asyncio.wait_for(run(), 60))
    [gap] = client.stats.gaps
    assert (gap["status"], gap["after"], gap["missed_from"], gap["missed_to"]) == ("gap", 61, 62, 102)
    assert got == [1, 123]                                   # the missed alert was sequence 62: in the gap


def test_a_gap_is_reported_once_when_the_next_drop_comes_before_any_event(make_gateway):
    gw = make_gateway(replay_events=20)                       # heartbeats every 30 s: none in this test

    async def run() -> StreamClient:
        gate = Gate()
        await gate.open_to(gw.port)
        client = StreamClient(gate.url(), token=TOKEN, subscriptions=[StreamSubscription("alerts")],
                              initial_backoff=0.02, max_backoff=0.1)
        consumer = asyncio.ensure_future(anext(client.events()))
        await until(lambda: client.subscription_ids)
        await drop_while(gate, client, gw, OTHERS[:60])
        assert client.stats.gaps_total == 1
        await drop_while(gate, client, gw, [])                 # before any event or heartbeat of this connection
        await client.close()
        consumer.cancel()
        gate.shut()
        return client
    client = asyncio.run(asyncio.wait_for(run(), 60))
    assert [(g["missed_from"], g["missed_to"]) for g in client.stats.gaps] == [(1, 40)]


def test_a_server_that_ignores_the_resume_is_reported_as_a_gap():
    from websockets.asyncio.server import serve
    connections: list[dict] = []

    async def handler(ws) -> None:
        connections.append(json.loads(await ws.recv()))
        sequence = 5 if len(connections) == 1 else 9           # events 7-9 were published meanwhile
        await ws.send(json.dumps({"action": "subscribed", "stream_id": "s", "sequence": sequence}))
        await ws.send(json.dumps({"action": "event", "stream_id": "s", "sequence": sequence + 1, "event": {"n": 1}}))
        if len(connections) == 1:
            await ws.close(1001)
        else:
            await asyncio.sleep(10)

    async def run() -> tuple[list[int], StreamClient]:
        async with serve(handler, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            client = StreamClient(f"ws://127.0.0.1:{port}/v1/stream", token="t" * 20, initial_backoff=0.01)
            got = []
            async for item in client.events():
                got.append(item.sequence)
                if len(got) == 2:
                    break
            await client.close()
            return got, client
    got, client = asyncio.run(asyncio.wait_for(run(), 20))
    assert connections[1]["resume"] == {"stream_id": "s", "sequence": 6}
    assert got == [6, 10]
    assert client.stats.gaps == [{"status": "resume_not_answered", "replayed": 0, "after": 6, "stream_id": "s"}]

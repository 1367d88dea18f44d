"""Hostile and broken WebSocket peers: bad client messages get errors (never a silent no-op or a dropped connection),
a slow consumer neither blocks others nor holds unbounded memory, and StreamClient survives a hostile server."""
from __future__ import annotations

import asyncio
import json
import socket

import pytest
import requests
from gateway_helpers import AUTH, TOKEN
from strategies import event_dicts
from websockets.asyncio.client import connect
from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed

from wia_security.connectors.gateway.server import GatewayServer
from wia_security.connectors.gateway.stream import MAX_SUBSCRIPTIONS
from wia_security.connectors.websocket_client import StreamClient, StreamError, StreamSubscription


def post(gw, events) -> None:
    r = requests.post(gw.url + "/v1/events", json=events, headers=AUTH)
    assert r.status_code == 200, r.text


async def recv_json(ws, timeout: float = 5) -> dict:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


def sub(filters=None, channel="events", **extra) -> str:
    return json.dumps({"action": "subscribe", "subscriptions": [{"channel": channel, "filters": filters}], **extra})


def test_subscriptions_that_could_never_work_are_errors(make_gateway):
    gw = make_gateway()

    async def run() -> None:
        async with connect(gw.ws_url, additional_headers=AUTH) as ws:
            await ws.send(sub())
            reply = await recv_json(ws)
            cases = [
                (sub({"severity_min": 9, "severity_max": 2}), "E1001", "greater than severity_max"),
                (sub({"tags": []}), "E1001", "tags is an empty list"),
                (json.dumps({"action": "subscribe", "subscriptions": [{"channel": "alerts", "filter": {"tags": ["x"]}}]}),
                 "E1001", "unknown subscription key(s) filter"),
                (sub({"event_types": []}), "E1001", "event_types is an empty list"),
                (sub({"event_types": ["incident", "vulnerability"]}, channel="alerts"), "E1001",
                 "channel 'alerts' carries only alert events: event_types incident, vulnerability would match nothing"),
                (sub(resume={"stream_id": reply["stream_id"], "sequence": 10 ** 6}), "E1001", "ahead of this stream"),
                (json.dumps({"action": "subscribe", "subscriptions": [{"channel": "events"}] * (MAX_SUBSCRIPTIONS + 1)}),
                 "E1001", f"at most {MAX_SUBSCRIPTIONS} subscriptions"),
                (json.dumps({"action": "unsubscribe", "subscription_ids": ["sub-nope", reply["subscription_id"]],
                             "request_id": "u1"}), "E3001", "unknown subscription id(s) sub-nope"),
                (json.dumps({"action": "unsubscribe", "channels": [5]}), "E1001", "channels must be a list of strings"),
            ]
            for message, code, fragment in cases:
                await ws.send(message)
                error = await recv_json(ws)
                assert (error["action"], error["code"]) == ("error", code) and fragment in error["message"], message
            assert error.get("request_id") is None
            # the refused unsubscribe removed nothing: events still flow to the first subscription
            await asyncio.to_thread(post, gw, event_dicts(1, seed=90))
            assert (await recv_json(ws))["subscription_ids"] == [reply["subscription_id"]]
    asyncio.run(run())


def test_sdk_dialect_refuses_a_payload_that_is_not_an_object(make_gateway):
    gw = make_gateway()

    async def run() -> None:
        async with connect(gw.ws_url, additional_headers=AUTH) as ws:
            await ws.send(json.dumps({"type": "subscribe", "id": "s1", "payload": ["alerts"]}))
            error = await recv_json(ws)          # used to subscribe to every event
            assert error["type"] == "error" and error["id"] == "s1"
            assert error["payload"]["message"] == "payload must be an object"
            await ws.send(json.dumps({"type": "subscribe", "id": "s2", "payload": {"filter": ["x"]}}))
            assert (await recv_json(ws))["payload"]["message"] == "payload.filter must be an object"
    asyncio.run(run())


def test_publish_with_an_unwritable_number_is_rejected_not_a_dropped_connection(make_gateway):
    gw = make_gateway()
    event = event_dicts(1, seed=91)[0]

    async def run() -> dict:
        async with connect(gw.ws_url, additional_headers=AUTH) as ws:
            await ws.send('{"action": "publish", "request_id": "p1", "events": ['
                          + json.dumps(event)[:-1] + ', "meta": {"big": 1e400}}]}')
            reply = await recv_json(ws)
            await ws.send(json.dumps({"action": "ping"}))
            assert (await recv_json(ws))["action"] == "pong"         # the connection lives on
            return reply
    reply = asyncio.run(run())
    assert (reply["action"], reply["request_id"], reply["rejected"]) == ("published", "p1", 1)
    assert reply["results"][0]["errors"][0]["path"] == "/meta/big"


def test_binary_frames_count_against_the_rate_limit(make_gateway):
    gw = make_gateway(client_rate=20)

    async def run() -> set[str]:
        async with connect(gw.ws_url, additional_headers=AUTH) as ws:
            for _ in range(60):
                await ws.send(b"\x00")
            codes = set()
            for _ in range(60):
                codes.add((await recv_json(ws))["code"])
            return codes
    assert asyncio.run(run()) == {"E1001", "E3002"}               # binary refused, and past 20/s rate-limited


def test_a_consumer_that_never_reads_neither_blocks_others_nor_holds_unbounded_memory(make_gateway):
    """The per-client queue is bounded in size as well as in messages: 400 messages of ~16 KB (more than the
    kernel buffers, up to 4 MB here, absorb) pass 256 KB long before the 1,000-message limit, so the stuck
    client is disconnected (4008), while a reader on the same gateway gets every event of the same large
    POSTs (which used to disconnect it as "slow" too)."""
    gw = make_gateway(client_queue=1000, client_queue_bytes=256 * 1024)
    events = event_dicts(400, seed=92)
    for e in events:
        e.setdefault("meta", {})["raw"] = "x" * 16000

    async def run() -> tuple[list[str], int | None]:
        tiny = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        tiny.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)   # the kernel buffers little for it
        tiny.connect((gw.host, gw.port))
        stuck = await connect(gw.ws_url, additional_headers=AUTH, max_queue=1, sock=tiny)
        await stuck.send(sub())
        await recv_json(stuck)
        stuck.transport.pause_reading()                               # never reads again
        got: list[str] = []
        async with connect(gw.ws_url, additional_headers=AUTH) as reader:
            await reader.send(sub())
            await recv_json(reader)

            async def read() -> None:
                while len(got) < 400:
                    msg = await recv_json(reader)
                    if msg["action"] == "event":
                        got.append(msg["event"]["id"])
            reading = asyncio.ensure_future(read())
            for i in range(0, 400, 100):
                await asyncio.wait_for(asyncio.to_thread(post, gw, events[i:i + 100]), 10)
            await asyncio.wait_for(reading, 20)
        stuck.transport.resume_reading()
        try:
            while True:
                await asyncio.wait_for(stuck.recv(), 5)
        except ConnectionClosed:
            pass
        return got, stuck.close_code
    got, code = asyncio.run(run())
    assert got == [e["id"] for e in events]
    assert code == 4008 and gw.gateway.hub.slow_disconnects == 1


def test_one_request_larger_than_the_client_queue_reaches_a_reader_that_keeps_up(make_gateway):
    """Publishing used to queue a whole request's events before any sender ran: a POST of more events than
    `client_queue` closed every subscriber with 4008, however fast it read."""
    gw = make_gateway(client_queue=100)
    events = event_dicts(500, seed=95)

    async def run() -> list[str]:
        async with connect(gw.ws_url, additional_headers=AUTH) as ws:
            await ws.send(sub())
            await recv_json(ws)
            posting = asyncio.ensure_future(asyncio.to_thread(post, gw, events))
            got = []
            while len(got) < 500:
                msg = await recv_json(ws)
                assert msg["action"] == "event", msg
                got.append(msg["event"]["id"])
            await posting
            return got
    assert asyncio.run(run()) == [e["id"] for e in events]
    assert gw.gateway.hub.slow_disconnects == 0


def test_client_raises_when_the_gateway_refuses_its_subscription(make_gateway):
    """It used to log a warning and wait forever for events that could never come."""
    gw = make_gateway()

    async def run() -> None:
        client = StreamClient(gw.ws_url, token=TOKEN, subscriptions=[StreamSubscription("events", severity_min=8,
                                                                                          severity_max=3)])
        with pytest.raises(StreamError, match="refused the subscription: E1001: severity_min"):
            async for _ in client.events():
                pass
        assert client.stats.connects == 1                             # not retried: it would be refused again
    asyncio.run(asyncio.wait_for(run(), 15))


def test_client_close_during_the_backoff_returns_at_once():
    async def run() -> None:
        client = StreamClient("ws://127.0.0.1:9/v1/stream", token=TOKEN, initial_backoff=600, max_backoff=600)

        async def consume() -> None:
            async for _ in client.events():
                pass
        consumer = asyncio.ensure_future(consume())
        await asyncio.sleep(0.5)                                      # connection refused; now in a long backoff
        await client.close()
        await asyncio.wait_for(consumer, 5)
    asyncio.run(run())


def test_client_skips_what_a_broken_server_sends_and_keeps_the_stream(tmp_path):
    """A hostile server (not the gateway): non-JSON, binary, a JSON list, an event without a sequence, junk
    counts, ids that are not a list (a number there ended events() with TypeError). The client records the
    unusable messages in stats.errors and still yields the good events."""
    event = event_dicts(1, seed=93)[0]

    async def handler(ws) -> None:
        await ws.recv()
        for junk in ["not json", b"\xff\xfe", "[1, 2]", json.dumps({"action": "event", "event": event}),
                     json.dumps({"action": "subscribed", "stream_id": "s1", "sequence": "x", "resume": "y"}),
                     json.dumps({"action": "dropped", "count": "lots"}),
                     json.dumps({"action": "subscribed", "stream_id": "s1", "sequence": 0, "subscription_ids": 5}),
                     json.dumps({"action": "event", "sequence": 1, "stream_id": "s1", "event": event,
                                 "subscription_ids": 7})]:
            await ws.send(junk)
        await ws.close(1000)

    async def run() -> tuple[list[int], StreamClient]:
        async with serve(handler, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            client = StreamClient(f"ws://127.0.0.1:{port}/v1/stream", token=TOKEN, reconnect=False)
            got = []
            with pytest.raises(StreamError, match="reconnecting is off"):
                async for item in client.events():
                    got.append(item.sequence)
            return got, client
    got, client = asyncio.run(asyncio.wait_for(run(), 15))
    assert got == [1] and client.subscription_ids == []
    assert len(client.stats.errors) == 4 and client.stats.dropped_by_server == 0


def test_client_resumes_across_a_gateway_restart_and_reports_the_gap(tmp_path):
    from wia_security.connectors.gateway import GatewaySettings

    def settings() -> GatewaySettings:
        return GatewaySettings(tokens=[TOKEN], store=f"sqlite:///{tmp_path}/events.db",
                               dead_letter=str(tmp_path / "dead.ndjson"), taxii=False)
    events = event_dicts(40, seed=94)
    servers = [GatewayServer(settings()).start()]

    async def run() -> tuple[list[str], StreamClient]:
        gaps: list[dict] = []
        client = StreamClient(servers[0].ws_url, token=TOKEN, initial_backoff=0.05, max_backoff=0.2,
                              on_gap=gaps.append)
        got: list[str] = []

        async def consume() -> None:
            async for item in client.events():
                got.append(item.event["id"])
                if len(got) == 40:
                    return
        consumer = asyncio.ensure_future(consume())
        while not client.subscription_ids:
            await asyncio.sleep(0.01)
        await asyncio.to_thread(post, servers[0], events[:20])
        while len(got) < 20:
            await asyncio.sleep(0.01)
        await asyncio.to_thread(servers[0].stop)                      # close 1001, reconnect_delay_seconds 5
        servers.append(GatewayServer(settings(), port=servers[0].port).start())
        while client.stats.connects < 2 or not gaps:
            await asyncio.sleep(0.02)
        await asyncio.to_thread(post, servers[1], events[20:])
        await asyncio.wait_for(consumer, 20)
        await client.close()
        return got, client
    try:
        got, client = asyncio.run(asyncio.wait_for(run(), 60))
    finally:
        servers[-1].stop()
    assert got == [e["id"] for e in events]                           # every event once, in order
    assert client.stats.close_codes == [1001] and client.stats.reconnects == 1
    assert [g["status"] for g in client.stats.gaps] == ["unknown_stream"]

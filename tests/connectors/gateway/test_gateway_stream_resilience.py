"""The stream under a demanding user: a resume larger than the client queue, a replay buffer bounded in size,
typos that changed what a message did, shutdown with events still queued or still being accepted, a handshake
during shutdown, a peer that stops reading for good or answers no ping, a gateway restart while the client is
away, and the documented close codes. Real gateway (uvicorn in a thread), real `websockets` clients; the queue
accounting of a replay is checked on the Hub directly."""
from __future__ import annotations

import asyncio
import json
import os
import threading

import pytest
import requests
from gateway_helpers import AUTH, TOKEN, Gate, recv_json, until, tiny_socket
from strategies import event_dicts
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from wia_security.connectors.gateway import GatewaySettings
from wia_security.connectors.gateway import stream as stream_module
from wia_security.connectors.gateway.server import GatewayServer
from wia_security.connectors.gateway.stream import Client, Hub
from wia_security.connectors.websocket_client import StreamClient


def post(gw, events) -> None:
    r = requests.post(gw.url + "/v1/events", json=events, headers=AUTH)
    assert r.status_code == 200, r.text


def test_a_resume_larger_than_the_client_queue_replays_every_missed_event(make_gateway):
    """The replay used to be queued whole, ahead of `subscribed`: 400 missed events against a 50-message queue
    closed the resuming client with 4008 at once, every time it came back (StreamClient looped forever)."""
    gw = make_gateway(client_queue=50)
    events = event_dicts(460, seed=501)

    async def run() -> tuple[list[str], StreamClient]:
        client = StreamClient(gw.ws_url, token=TOKEN, initial_backoff=0.05, max_backoff=0.2)
        got: list[str] = []

        async def consume() -> None:
            async for item in client.events():
                got.append(item.event["id"])
                if len(got) == 10:
                    client._ws.transport.abort()     # the network drops
                    # 400 while away (the client cannot reconnect while its consumer is busy here): 8 queues' worth
                    await asyncio.to_thread(post, gw, events[10:410])
                if len(got) == len(events):
                    return
        consumer = asyncio.ensure_future(consume())
        await until(lambda: client.subscription_ids)
        await asyncio.to_thread(post, gw, events[:10])
        await until(lambda: client.stats.reconnects == 1)
        await asyncio.to_thread(post, gw, events[410:])
        await asyncio.wait_for(consumer, 30)
        await client.close()
        return got, client
    got, client = asyncio.run(asyncio.wait_for(run(), 60))
    assert got == [e["id"] for e in events]                    # every event once, in order
    assert client.stats.reconnects == 1 and client.stats.replayed == 400 and not client.stats.gaps
    assert gw.gateway.hub.slow_disconnects == 0


@pytest.mark.parametrize("policy", ["drop_oldest", "disconnect"])
def test_a_replay_pushed_out_of_a_full_queue_counts_each_of_its_events(policy):
    """The backlog is one queue entry holding many events: dropped (drop_oldest) or discarded (disconnect), each
    of its events is counted, and the client is told the full count. (Queue accounting, no socket needed.)"""
    hub = Hub(replay_events=100, client_queue=3, slow_consumer=policy)
    sent: list[dict] = []

    async def send_text(text: str) -> None:
        sent.append(json.loads(text))

    async def run() -> int | None:
        await hub.publish(event_dicts(20, seed=502))
        client = Client(hub, send_text, client_id=None)
        reply, backlog = client.subscribe([{"channel": "events"}], {"stream_id": hub.stream_id, "sequence": 0})
        assert reply["resume"] == {"status": "complete", "replayed": 20}
        client.enqueue(client.control("subscribed", **reply))
        client.enqueue(backlog)
        for _ in range(3):
            client.enqueue(client.control("pong"))
        client.close_with(1001, lambda: "")      # the sender returns once the queue is written out
        return await asyncio.wait_for(client.sender(), 5)
    code = asyncio.run(run())
    if policy == "drop_oldest":
        assert hub.dropped == 21 and code is None
        assert [(m["action"], m.get("count")) for m in sent] == [("dropped", 21)] + [("pong", None)] * 3
    else:
        assert code == 4008 and sent == [] and hub.discarded == 1 + 20 + 1 + 1   # the queue and the pong that did not fit


def test_resuming_again_and_again_without_reading_pins_no_more_than_the_replay_buffer():
    """A backlog is not counted against the queue's limits, so a connection that kept resuming from 0 (each with
    a new subscription) without reading would pin a replay's worth of memory per subscribe: refused with E3003
    beyond `replay_events` waiting, accepted again once the earlier replay was written. (No socket needed.)"""
    from wia_security.connectors.gateway.stream import FilterError
    hub = Hub(replay_events=50, client_queue=1000, slow_consumer="disconnect")
    sent: list[str] = []

    async def send_text(text: str) -> None:
        sent.append(text)

    async def run() -> None:
        await hub.publish(event_dicts(50, seed=507))
        client = Client(hub, send_text, client_id=None)
        resume = {"stream_id": hub.stream_id, "sequence": 0}
        client.enqueue(client.subscribe([{"channel": "events"}], resume)[1])
        with pytest.raises(FilterError, match="still has 50 replayed events to take") as info:
            client.subscribe([{"channel": "events"}], resume)
        assert info.value.code == "E3003" and len(client.subscriptions) == 1
        client.subscribe([{"channel": "events"}], {"stream_id": hub.stream_id, "sequence": 50})   # nothing to replay
        client.close_with(1001, lambda: "")
        await asyncio.wait_for(client.sender(), 5)
        assert len(sent) == 50 and client.replay_pending() == 0
        client.subscribe([{"channel": "events"}], resume)
    asyncio.run(run())


def test_the_replay_buffer_is_bounded_in_size_and_a_resume_past_it_reports_the_gap(make_gateway, monkeypatch):
    """The replay buffer was bounded by count only (10,000) and kept each event's dict beside its JSON: large
    events (a megabyte of meta.raw) could pin gigabytes. Now it keeps at most MAX_REPLAY_BYTES of JSON text (here
    100 KB, about 9 of these 11 KB events), and a resume from before them gets exactly the documented gap."""
    monkeypatch.setattr(stream_module, "MAX_REPLAY_BYTES", 100_000)
    gw = make_gateway()
    events = event_dicts(30, seed=511)
    for e in events:
        e.setdefault("meta", {})["raw"] = "x" * 10_000

    async def run() -> tuple[dict, list[dict]]:
        async with connect(gw.ws_url, additional_headers=AUTH) as ws:
            await ws.send(json.dumps({"action": "subscribe"}))
            stream_id = (await recv_json(ws))["stream_id"]
        await asyncio.to_thread(post, gw, events)
        async with connect(gw.ws_url, additional_headers=AUTH) as ws:
            await ws.send(json.dumps({"action": "subscribe", "resume": {"stream_id": stream_id, "sequence": 0}}))
            reply = await recv_json(ws)
            replayed = [await recv_json(ws) for _ in range(reply["resume"]["replayed"])]
        return reply["resume"], replayed
    resume, replayed = asyncio.run(asyncio.wait_for(run(), 30))
    hub = gw.gateway.hub
    kept = len(hub.replay)
    assert 1 < kept < 30 and hub.replay_chars == sum(len(r.json) for r in hub.replay) <= 100_000
    assert resume == {"status": "gap", "replayed": kept, "missed_from": 1, "missed_to": 30 - kept}
    assert [m["event"]["id"] for m in replayed] == [e["id"] for e in events[30 - kept:]]
    # the count bound and the size bound together keep the size accounting exact
    small = Hub(replay_events=5, client_queue=10, slow_consumer="disconnect", replay_bytes=10 ** 9)
    asyncio.run(small.publish(events))
    assert [r.sequence for r in small.replay] == [26, 27, 28, 29, 30]
    assert small.replay_chars == sum(len(r.json) for r in small.replay)


def test_typos_that_changed_what_a_message_does_are_errors(make_gateway):
    """`unsubscribe` with `subscription_id` (singular) used to remove every subscription; `subscribe` with a
    top-level `filter` or the prompt's `channels` list, or an SDK payload with `filters`, subscribed to every event."""
    gw = make_gateway()

    async def run() -> None:
        async with connect(gw.ws_url, additional_headers=AUTH) as ws:
            await ws.send(json.dumps({"action": "subscribe"}))
            reply = await recv_json(ws)
            cases = [
                ({"action": "unsubscribe", "subscription_id": reply["subscription_id"], "request_id": "u1"},
                 "unknown key(s) subscription_id in unsubscribe"),
                ({"action": "subscribe", "channel": "alerts", "filter": {"severity_min": 9}},
                 "unknown key(s) filter in subscribe"),
                ({"action": "subscribe", "channels": ["alerts"]}, "unknown key(s) channels in subscribe"),
                ({"action": "subscribe", "resume": {"stream_id": reply["stream_id"], "sequence": 0, "seq": 3}},
                 "unknown resume key(s) seq"),
                *[({"action": "subscribe", "resume": {"stream_id": reply["stream_id"], "sequence": forged}},
                   "resume.sequence must be a non-negative integer") for forged in (-1, 1.5, "3", True, None)],
                ({"action": "subscribe", "resume": {"stream_id": reply["stream_id"], "sequence": 2 ** 62}},
                 "ahead of this stream"),
                ({"action": "subscribe", "resume": [reply["stream_id"], 0]}, "resume must be an object"),
            ]
            for message, fragment in cases:
                await ws.send(json.dumps(message))
                error = await recv_json(ws)
                assert error["action"] == "error" and error["code"] == "E1001" and fragment in error["message"], message
                assert error.get("request_id") == message.get("request_id")
            # nothing was removed or added: one event arrives once, for the first subscription only
            await asyncio.to_thread(post, gw, event_dicts(1, seed=503))
            assert (await recv_json(ws))["subscription_ids"] == [reply["subscription_id"]]
            await ws.send(json.dumps({"action": "ping"}))
            assert (await recv_json(ws))["action"] == "pong"
        async with connect(gw.ws_url, additional_headers=AUTH) as sdk:
            await sdk.send(json.dumps({"type": "subscribe", "id": "s1",
                                       "payload": {"channel": "x", "filters": {"severityMin": 9}}}))
            error = await recv_json(sdk)
            assert error["type"] == "error" and error["id"] == "s1"
            assert "unknown payload key(s) filters" in error["payload"]["message"]
    asyncio.run(asyncio.wait_for(run(), 30))


def test_shutdown_writes_out_what_is_queued_before_the_close_message(make_gateway):
    """The close used to pre-empt the queue: a subscriber that was keeping up lost whatever was queued for it
    when shutdown began (185 of 400 large events in a probe), and the close message claimed sequence 400."""
    gw = make_gateway()
    events = event_dicts(400, seed=504)
    for e in events:
        e.setdefault("meta", {})["raw"] = "x" * 20000          # 8 MB: far more than the socket buffers hold

    async def run() -> tuple[list[str], dict, int | None]:
        # 64 KB: the kernels hold at most ~4 MB of the 8 MB, and the client still reads fast once it resumes
        ws = await connect(gw.ws_url, additional_headers=AUTH, sock=tiny_socket(gw, 65536))
        await ws.send(json.dumps({"action": "subscribe"}))
        await recv_json(ws)
        ws.transport.pause_reading()                              # a moment's pause: the queue backs up
        await asyncio.to_thread(post, gw, events)
        stopping = asyncio.ensure_future(asyncio.to_thread(gw.stop))
        await until(lambda: gw.gateway.closing)
        assert gw.gateway.hub.clients and next(iter(gw.gateway.hub.clients)).queue   # events still queued
        ws.transport.resume_reading()
        got, last = [], {}
        try:
            while True:
                msg = await recv_json(ws, 10)
                if msg["action"] == "event":
                    got.append(msg["event"]["id"])
                else:
                    last = msg
        except ConnectionClosed:
            pass
        await stopping
        return got, last, ws.close_code
    got, close, code = asyncio.run(asyncio.wait_for(run(), 60))
    assert got == [e["id"] for e in events]
    assert (close["action"], close["reason"], close["sequence"], code) == ("close", "server_shutdown", 400, 1001)


def test_a_peer_that_stops_reading_for_good_is_dropped(make_gateway, monkeypatch):
    """With the socket full the sender waited on the write forever: the overflowed client was never closed, and
    its connection, tasks and socket buffer stayed until the peer read again (a zero window can last for ever)."""
    monkeypatch.setattr(stream_module, "SLOW_CONSUMER_CLOSE_SECONDS", 0.5)
    gw = make_gateway(client_queue_bytes=256 * 1024)
    events = event_dicts(200, seed=505)
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
            await until(lambda: len(gw.gateway.hub.clients) == 1)  # only the reader is left
            assert gw.gateway.hub.slow_disconnects == 1
        stuck.transport.abort()
        return got
    got = asyncio.run(asyncio.wait_for(run(), 60))
    assert got == [e["id"] for e in events]


def test_after_a_restart_the_client_gets_what_the_new_gateway_published_before_it_came_back(tmp_path):
    """`unknown_stream` used to replay nothing and the client took the new stream's current sequence as its
    start: events published between the restart and the reconnect (the close asks for a 5 s delay) were lost
    without a count. Now the new stream is replayed from its start, and the gap report says (`closed_at` ==
    `after`) that nothing of the old stream was missed."""
    def settings() -> GatewaySettings:
        return GatewaySettings(tokens=[TOKEN], store=f"sqlite:///{tmp_path}/events.db",
                               dead_letter=str(tmp_path / "dead.ndjson"), taxii=False)
    events = event_dicts(40, seed=506)
    servers = [GatewayServer(settings()).start()]

    async def run() -> tuple[list[str], StreamClient]:
        # The client reaches the gateways through a gate shut during the restart: it comes back only once the new
        # gateway has published. (It relied on the client's wait, the close's 5 s capped at max_backoff 0.2 s: on a
        # loaded machine the stop, the start and the post took longer, and it came back before the post.)
        gate = Gate()
        await gate.open_to(servers[0].port)
        client = StreamClient(gate.url(), token=TOKEN, initial_backoff=0.05, max_backoff=0.2)
        got: list[str] = []

        async def consume() -> None:
            async for item in client.events():
                got.append(item.event["id"])
                if len(got) == 40:
                    return
        consumer = asyncio.ensure_future(consume())
        await until(lambda: client.subscription_ids)
        await asyncio.to_thread(post, servers[0], events[:20])
        await until(lambda: len(got) == 20)
        gate.shut()
        await asyncio.to_thread(servers[0].stop)                  # close 1001, reconnect_delay_seconds 5
        servers.append(GatewayServer(settings()).start())
        await asyncio.to_thread(post, servers[1], events[20:30])  # before the client is back
        await gate.open_to(servers[1].port)
        await until(lambda: client.stats.connects == 2)
        await asyncio.to_thread(post, servers[1], events[30:])
        await asyncio.wait_for(consumer, 20)
        await client.close()
        return got, client
    try:
        got, client = asyncio.run(asyncio.wait_for(run(), 60))
    finally:
        servers[-1].stop()
    assert got == [e["id"] for e in events]
    [gap] = client.stats.gaps
    assert gap["status"] == "unknown_stream" and gap["replayed"] == 10
    assert gap["after"] == gap["closed_at"] == 20 and "missed_from" not in gap


def test_the_documented_close_codes_for_a_message_too_big_or_not_utf8(make_gateway):
    gw = make_gateway(max_message_bytes=4096)

    async def closed_by(ws) -> int | None:
        try:
            await recv_json(ws)
        except ConnectionClosed:
            pass
        return ws.close_code

    async def run() -> tuple[int | None, int | None, dict]:
        async with connect(gw.ws_url, additional_headers=AUTH) as ws:
            await ws.send(json.dumps({"action": "ping", "pad": "x" * 4000}))   # under the limit: answered
            pong = await recv_json(ws)
            await ws.send(json.dumps({"action": "ping", "pad": "x" * 5000}))
            too_big = await closed_by(ws)
        async with connect(gw.ws_url, additional_headers=AUTH) as ws:
            await ws.send(b'{"action": "ping", "pad": "\xff"}', text=True)   # a text frame that is not UTF-8
            not_utf8 = await closed_by(ws)
        return too_big, not_utf8, pong
    too_big, not_utf8, pong = asyncio.run(asyncio.wait_for(run(), 15))
    assert pong["action"] == "pong" and (too_big, not_utf8) == (1009, 1007)


def test_a_peer_that_answers_no_ping_is_closed_with_1011(make_gateway):
    """The documented keepalive (20 s + 20 s, here 0.3 s + 0.3 s): an idle peer that stopped answering (half-open
    TCP, a frozen process) is closed with 1011 and leaves the hub."""
    gw = make_gateway(ping_interval_seconds=0.3, ping_timeout_seconds=0.3)

    async def run() -> int | None:
        ws = await connect(gw.ws_url, additional_headers=AUTH, ping_interval=None)
        await ws.send(json.dumps({"action": "subscribe"}))
        await recv_json(ws)
        ws.transport.pause_reading()                              # no pong from here on
        await until(lambda: not gw.gateway.hub.clients, timeout=10)
        ws.transport.resume_reading()
        try:
            while True:
                await recv_json(ws)
        except ConnectionClosed:
            pass
        return ws.close_code
    assert asyncio.run(asyncio.wait_for(run(), 30)) == 1011


def test_client_stops_on_a_server_message_above_its_limit_instead_of_reconnecting_for_ever():
    """The client closes with 1009 on a message above `max_message_bytes`; it used to reconnect, resume and be
    sent the same message again, for ever. Now StreamError names the limit. (A server that is not the gateway:
    the gateway's events are far below the client's 16 MiB default unless --max-body-bytes is raised past it.)"""
    from websockets.asyncio.server import serve

    from wia_security.connectors.websocket_client import StreamError
    connections: list[int] = []

    async def handler(ws) -> None:
        connections.append(1)
        await ws.recv()
        await ws.send(json.dumps({"action": "subscribed", "stream_id": "s", "sequence": 0}))
        await ws.send(json.dumps({"action": "event", "sequence": 1, "stream_id": "s", "event": {"pad": "x" * 2000}}))
        await ws.wait_closed()

    async def run() -> None:
        async with serve(handler, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            client = StreamClient(f"ws://127.0.0.1:{port}/v1/stream", token=TOKEN, initial_backoff=0.01,
                                  max_backoff=0.01, max_message_bytes=1024)
            with pytest.raises(StreamError, match=r"larger than max_message_bytes \(1024\)"):
                async for _ in client.events():
                    pass
    asyncio.run(asyncio.wait_for(run(), 15))
    assert len(connections) == 1


def test_no_event_is_accepted_after_a_subscribers_close_message(make_gateway):
    """Ingest went on while the streams closed (up to 5 s): a probe posting one event at a time had 27 events
    accepted after its subscriber's `close` message, in the store but on no stream, with nothing to tell the
    client. Now ingest is refused (503) from the start of the shutdown and what was on its way is published
    first: every accepted event reaches a subscriber that keeps up, and the close message's sequence is the last."""
    gw = make_gateway()
    events = event_dicts(3000, seed=508)
    accepted: list[str] = []
    refused: list[int] = []
    stop = threading.Event()

    def poster() -> None:
        with requests.Session() as session:
            for event in events:
                if stop.is_set():
                    return
                try:
                    r = session.post(gw.url + "/v1/events", json=[event], headers=AUTH, timeout=10)
                except requests.ConnectionError:
                    return                                        # the gateway stopped listening
                if r.status_code == 200:
                    accepted.append(event["id"])
                else:
                    refused.append(r.status_code)

    async def run() -> tuple[list[str], dict]:
        async with connect(gw.ws_url, additional_headers=AUTH) as ws:
            await ws.send(json.dumps({"action": "subscribe"}))
            await recv_json(ws)
            thread = threading.Thread(target=poster)
            thread.start()
            try:
                await until(lambda: len(accepted) >= 50)
                stopping = asyncio.ensure_future(asyncio.to_thread(gw.stop))
                got, close = [], {}
                try:
                    while True:
                        msg = await recv_json(ws, 10)
                        if msg["action"] == "event":
                            got.append(msg["event"]["id"])
                        else:
                            close = msg
                except ConnectionClosed:
                    pass
                await stopping
            finally:
                stop.set()
                await asyncio.to_thread(thread.join)
            return got, close
    got, close = asyncio.run(asyncio.wait_for(run(), 60))
    assert got == accepted and close["sequence"] == len(accepted)
    assert set(refused) <= {503}


def test_a_request_in_flight_when_shutdown_begins_reaches_the_subscriber_before_its_close(make_gateway, tmp_path):
    """A request still in delivery when the shutdown began (here its destination, a FIFO, is full) is answered
    `accepted` after the streams started closing: the close waits for it (up to SHUTDOWN_DRAIN_SECONDS), so its
    event comes before the close message instead of after the subscriber left."""
    fifo = tmp_path / "destination.fifo"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)          # the destination's reader, not reading yet
    try:
        gw = make_gateway(extra_sinks=[f"file://{fifo}"])
        event = event_dicts(1, seed=509)[0]
        event.setdefault("meta", {})["raw"] = "x" * 200_000       # more than the pipe holds: the write blocks

        async def run() -> tuple[int, list[str], dict]:
            async with connect(gw.ws_url, additional_headers=AUTH) as ws:
                await ws.send(json.dumps({"action": "subscribe"}))
                await recv_json(ws)
                posting = asyncio.ensure_future(asyncio.to_thread(
                    requests.post, gw.url + "/v1/events", json=[event], headers=AUTH, timeout=30))
                await until(lambda: gw.gateway._ingesting == 1)
                stopping = asyncio.ensure_future(asyncio.to_thread(gw.stop))
                await until(lambda: gw.gateway.closing)
                await asyncio.sleep(0.3)       # room for a close that does not wait (the bug) to go out first
                while not posting.done():                         # now the destination reads
                    try:
                        os.read(reader, 1 << 16)
                    except BlockingIOError:
                        await asyncio.sleep(0.01)
                got, close = [], {}
                try:
                    while True:
                        msg = await recv_json(ws, 10)
                        if msg["action"] == "event":
                            got.append(msg["event"]["id"])
                        else:
                            close = msg
                except ConnectionClosed:
                    pass
                await stopping
                return posting.result().status_code, got, close
        status, got, close = asyncio.run(asyncio.wait_for(run(), 60))
    finally:
        os.close(reader)
    assert status == 200 and got == [event["id"]]
    assert (close["reason"], close["sequence"]) == ("server_shutdown", 1)


def test_a_client_connecting_while_the_gateway_shuts_down_is_told_to_retry_not_that_its_token_is_bad(
        make_gateway, tmp_path):
    """A handshake during the shutdown was closed before accept, which is HTTP 403: StreamClient took it for a
    refused token and stopped for good (StreamAuthError). Now it is HTTP 503 with Retry-After, and it retries."""
    from websockets.exceptions import InvalidStatus

    from wia_security.connectors.websocket_client import StreamError
    fifo = tmp_path / "destination.fifo"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        gw = make_gateway(extra_sinks=[f"file://{fifo}"])
        event = event_dicts(1, seed=510)[0]
        event.setdefault("meta", {})["raw"] = "x" * 200_000       # its delivery blocks: the shutdown waits for it

        async def run() -> tuple[int, str]:
            posting = asyncio.ensure_future(asyncio.to_thread(
                requests.post, gw.url + "/v1/events", json=[event], headers=AUTH, timeout=30))
            await until(lambda: gw.gateway._ingesting == 1)
            stopping = asyncio.ensure_future(asyncio.to_thread(gw.stop))
            await until(lambda: gw.gateway.closing)
            try:
                try:
                    async with connect(gw.ws_url, additional_headers=AUTH):
                        raise AssertionError("the handshake was accepted during the shutdown")
                except InvalidStatus as exc:
                    status, retry_after = exc.response.status_code, exc.response.headers.get("Retry-After")
                client = StreamClient(gw.ws_url, token=TOKEN, max_attempts=0)
                try:
                    async for _ in client.events():
                        pass
                except StreamError as exc:                    # StreamAuthError is a StreamError too
                    outcome = type(exc).__name__
            finally:
                while not posting.done():
                    try:
                        os.read(reader, 1 << 16)
                    except BlockingIOError:
                        await asyncio.sleep(0.01)
                await stopping
            return status, f"{retry_after} {outcome}"
        status, outcome = asyncio.run(asyncio.wait_for(run(), 60))
    finally:
        os.close(reader)
    assert (status, outcome) == (503, "5 StreamError")
    # both handshakes counted as refused while unavailable (they were counted nowhere)
    assert gw.gateway.metrics.requests_refused[("stream", "unavailable")] == 2

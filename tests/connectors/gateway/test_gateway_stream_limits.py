"""The stream's limits against many or hostile peers: a bounded number of connections (HTTP 503 + Retry-After beyond,
counted in /metrics), large messages parsed and validated off the event loop (other connections keep their answers
coming, this one keeps its order), `unsubscribe`/`subscribe` lists bounded before they are looked at, one short log
line for a text frame that is not UTF-8, and a StreamClient that caps how long a server may make it wait. Real
gateway (uvicorn in a thread) and real `websockets` clients; the client's cap against a `websockets` server that
asks for an hour."""
from __future__ import annotations

import asyncio
import json
import logging
import threading
import time

import pytest
import requests
from gateway_helpers import AUTH, TOKEN, recv_json, until
from strategies import event_dicts
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from wia_security.connectors.gateway import GatewaySettings
from wia_security.connectors.gateway import app as app_module
from wia_security.connectors.gateway import stream as stream_module
from wia_security.connectors.gateway.server import GatewayServer
from wia_security.connectors.gateway.stream import Client, Hub
from wia_security.connectors.websocket_client import StreamClient


def scrape(gw) -> str:
    r = requests.get(gw.url + "/metrics", headers=AUTH)
    assert r.status_code == 200
    return r.text


def sample(text: str, line_start: str) -> float:
    [line] = [ln for ln in text.splitlines() if ln.startswith(line_start + " ")]
    return float(line.rsplit(" ", 1)[1])


# --- 1. the number of connections ---
def test_handshakes_beyond_max_stream_clients_get_503_with_retry_after_and_are_counted(make_gateway):
    """Every authenticated connection may queue --client-queue-bytes (16 MiB), and their number was unbounded. Now
    at most `max_stream_clients` are open: 12 handshakes at once against a limit of 3 open exactly 3 (the place is
    taken before the first await), the others get the shutdown's answer (503, Retry-After), a bad token is still a
    401, and a StreamClient refused for a while gets in once a place is free."""
    gw = make_gateway(max_stream_clients=3)
    refused = 'wia_gateway_requests_refused_total{source="stream",reason="too_many_clients"}'

    async def attempt():
        try:
            return await connect(gw.ws_url, additional_headers=AUTH)
        except InvalidStatus as exc:
            return exc.response

    async def run() -> None:
        outcomes = await asyncio.gather(*[attempt() for _ in range(12)])
        open_ = [o for o in outcomes if not hasattr(o, "status_code")]
        denied = [o for o in outcomes if hasattr(o, "status_code")]
        assert len(open_) == 3 and len(denied) == 9
        for response in denied:
            assert (response.status_code, response.headers["Retry-After"]) == (503, "5")
            error = json.loads(response.body)["error"]
            assert error["code"] == "E3003" and "maximum of 3 stream connections" in error["message"]
        with pytest.raises(InvalidStatus) as bad_token:       # the token is checked first, and not a place
            await connect(gw.ws_url, additional_headers={"Authorization": "Bearer wrong-wrong-wrong-wrong"})
        assert bad_token.value.response.status_code == 401
        for ws in open_:                                      # the ones let in work
            await ws.send(json.dumps({"action": "ping"}))
            assert (await recv_json(ws))["action"] == "pong"
        text = await asyncio.to_thread(scrape, gw)
        assert sample(text, refused) == 9
        assert sample(text, "wia_gateway_stream_max_clients") == 3
        assert sample(text, 'wia_gateway_requests_refused_total{source="stream",reason="auth"}') == 1

        client = StreamClient(gw.ws_url, token=TOKEN, initial_backoff=0.05, max_backoff=0.1)
        consumer = asyncio.ensure_future(anext(client.events()))
        await until(lambda: sample(scrape(gw), refused) >= 11)      # it was refused and tried again
        assert client.stats.connects == 0
        await open_[0].close()                                 # a place frees up
        await until(lambda: client.subscription_ids)
        await asyncio.to_thread(requests.post, gw.url + "/v1/events", json=event_dicts(1, seed=531), headers=AUTH)
        assert (await asyncio.wait_for(consumer, 10)).sequence == 1
        await client.close()
        for ws in open_[1:]:
            await ws.close()
        await until(lambda: gw.gateway.open_streams == 0)      # every place is given back
        ws = await connect(gw.ws_url, additional_headers=AUTH)
        await ws.close()
    asyncio.run(asyncio.wait_for(run(), 60))


# --- 2. large messages off the event loop ---
@pytest.mark.parametrize("stage", ["parse", "validate"])
def test_a_large_publish_does_not_hold_other_connections_and_keeps_its_own_order(make_gateway, monkeypatch, stage):
    """A `publish` was parsed and validated on the event loop (a 1.5 MB one of 1,400 events took ~90 ms there, and
    every connection's answers waited). Here the parse or the validation of one publish is held until another
    connection has had its pong: that only works when it runs in a worker thread. The publishing connection still
    gets its `published` before the pong of the ping it sent after it."""
    gw = make_gateway()
    started, release = threading.Event(), threading.Event()
    events = event_dicts(60, seed=532)
    for e in events:
        e.setdefault("meta", {})["raw"] = "x" * 2000             # 120 KB: parsed in a thread
    marker = events[0]["id"]

    def hold() -> None:
        started.set()
        release.wait(10)                     # on the event loop (the bug) this stalls the whole gateway for 10 s
    if stage == "parse":
        real_parse = app_module.parse_message

        def parse(text: str):
            if marker in text:
                hold()
            return real_parse(text)
        monkeypatch.setattr(app_module, "parse_message", parse)
    else:
        validator = gw.gateway.validator
        real_validate = validator.validate

        def validate(value, *args, **kwargs):
            if isinstance(value, dict) and value.get("id") == marker:
                hold()
            return real_validate(value, *args, **kwargs)
        monkeypatch.setattr(validator, "validate", validate)

    async def run() -> tuple[float, list[tuple[str, str | None]]]:
        async with connect(gw.ws_url, additional_headers=AUTH) as publisher, \
                connect(gw.ws_url, additional_headers=AUTH) as other:
            message = json.dumps({"action": "publish", "events": events, "request_id": "p1"})
            assert len(message) > stream_module.PARSE_IN_THREAD_CHARS
            await publisher.send(message)
            await publisher.send(json.dumps({"action": "ping", "request_id": "k1"}))
            assert await asyncio.to_thread(started.wait, 10)
            sent = time.monotonic()
            await other.send(json.dumps({"action": "ping", "request_id": "k2"}))
            try:
                pong = await recv_json(other, 3)
            finally:
                release.set()
            waited = time.monotonic() - sent
            assert (pong["action"], pong["request_id"]) == ("pong", "k2")
            replies = [await recv_json(publisher, 10) for _ in range(2)]
            assert replies[0]["accepted"] == len(events)
            return waited, [(r["action"], r.get("request_id")) for r in replies]
    waited, replies = asyncio.run(asyncio.wait_for(run(), 60))
    assert waited < 3 and replies == [("published", "p1"), ("pong", "k1")]
    assert gw.gateway.hub.published == len(events)


# --- 5. unsubscribe / subscribe lists ---
def test_unsubscribe_lists_are_bounded_and_matched_as_sets(make_gateway):
    """`unsubscribe` with 23,000 copies of one id (a megabyte) was matched list against list on the event loop
    (~55 ms for 100 subscriptions): more names than a connection can have subscriptions are now an E1001, and
    repeats within the bound remove the subscription once."""
    gw = make_gateway()

    async def run() -> None:
        async with connect(gw.ws_url, additional_headers=AUTH) as ws:
            await ws.send(json.dumps({"action": "subscribe", "subscriptions": [{"channel": "alerts"}] * 99
                                      + [{"channel": "incidents"}]}))
            ids = (await recv_json(ws))["subscription_ids"]
            assert len(ids) == stream_module.MAX_SUBSCRIPTIONS
            flood = json.dumps({"action": "unsubscribe", "subscription_ids": [ids[0]] * 23_000, "request_id": "u1"})
            assert len(flood) < 1_048_576
            await ws.send(flood)
            error = await recv_json(ws)
            assert (error["action"], error["code"], error["request_id"]) == ("error", "E1001", "u1")
            assert "subscription_ids names at most 100" in error["message"]
            await ws.send(json.dumps({"action": "unsubscribe", "channels": ["alerts"] * 101}))
            assert "channels names at most 100" in (await recv_json(ws))["message"]
            await ws.send(json.dumps({"action": "unsubscribe", "subscription_ids": [ids[0]] * 100}))
            assert (await recv_json(ws))["subscription_ids"] == [ids[0]]          # nothing else went
            await ws.send(json.dumps({"action": "unsubscribe", "channels": ["incidents"] * 99 + ["alerts"]}))
            assert sorted((await recv_json(ws))["subscription_ids"]) == sorted(ids[1:])
    asyncio.run(asyncio.wait_for(run(), 30))


def test_a_subscribe_past_the_limit_is_refused_before_its_subscriptions_are_parsed(monkeypatch):
    """A megabyte of `{}` (350,000 subscriptions) was parsed, given ids, then refused: 2 s of the event loop."""
    hub = Hub(replay_events=10, client_queue=10, slow_consumer="disconnect")
    parsed: list[object] = []
    real_parse = stream_module.Filter.parse
    monkeypatch.setattr(stream_module.Filter, "parse", classmethod(lambda cls, doc: parsed.append(doc) or real_parse(doc)))

    async def send_text(text: str) -> None:
        pass

    async def run() -> None:
        client = Client(hub, send_text, client_id=None)
        client.subscribe([{}] * 60, None)
        assert len(parsed) == 60
        with pytest.raises(stream_module.FilterError, match="at most 100 subscriptions per connection"):
            client.subscribe([{}] * 350_000, None)
        with pytest.raises(stream_module.FilterError, match="this one has 60"):
            client.subscribe([{}] * 41, None)
        assert len(parsed) == 60 and len(client.subscriptions) == 60
        client.subscribe([{}] * 40, None)
        assert len(client.subscriptions) == 100
    asyncio.run(run())


# --- 4. a text frame that is not UTF-8 ---
class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.mark.parametrize("log_level", ["info", "warning"])
def test_a_text_frame_that_is_not_utf8_is_one_short_line_not_a_traceback(tmp_path, log_level):
    """uvicorn logged a full traceback at ERROR for each one, and each connection can send one: a client could fill
    the error log. Now: close 1007 as before, and one INFO line without traceback (nothing at --log-level warning)."""
    server = GatewayServer(GatewaySettings(tokens=[TOKEN], store=None, dead_letter=str(tmp_path / "dead.ndjson"),
                                           taxii=False), log_level=log_level)
    logger = logging.getLogger("uvicorn.error")
    captured = Records()
    logger.addHandler(captured)          # after the server's uvicorn Config, which resets uvicorn's handlers
    server.start()
    try:
        async def run() -> list[int | None]:
            codes = []
            for _ in range(3):
                async with connect(server.ws_url, additional_headers=AUTH) as ws:
                    await ws.send(b'{"action": "ping", "pad": "\xff"}', text=True)
                    with pytest.raises(ConnectionClosed):
                        await recv_json(ws)
                    codes.append(ws.close_code)
            return codes
        codes = asyncio.run(asyncio.wait_for(run(), 30))
    finally:
        server.stop()
        logger.removeHandler(captured)
    assert codes == [1007] * 3
    about_it = [r for r in captured.records if "UTF-8" in r.getMessage()]
    assert not [r for r in captured.records if r.levelno >= logging.ERROR or r.exc_info or r.exc_text]
    if log_level == "warning":
        assert about_it == []
    else:
        assert len(about_it) == 3
        for record in about_it:
            assert record.levelno == logging.INFO
            assert record.getMessage() == ("stream client sent a text message that is not UTF-8: invalid start byte "
                                           "at byte 27; closed with 1007")


# --- 3. the client caps what a server makes it wait ---
def test_the_client_caps_the_servers_reconnect_delay_and_retry_after():
    """StreamClient waited whatever `reconnect_delay_seconds` a server sent: an hour parked it for an hour. It now
    waits at most `max_backoff` for it, and for the Retry-After of a 503 at the handshake (it ignored that one)."""
    from websockets.asyncio.server import serve
    attempts: list[float] = []

    def process_request(connection, request):
        attempts.append(time.monotonic())
        if len(attempts) == 1:
            response = connection.respond(503, "full\n")
            response.headers["Retry-After"] = "3600"
            return response
        return None

    async def handler(ws) -> None:
        await ws.recv()
        await ws.send(json.dumps({"action": "subscribed", "stream_id": "s", "sequence": 0}))
        if len(attempts) == 2:
            await ws.send(json.dumps({"action": "close", "reason": "server_shutdown", "reconnect_allowed": True,
                                      "reconnect_delay_seconds": 3600, "sequence": 0, "stream_id": "s"}))
            await ws.close(1001)
            return
        await ws.send(json.dumps({"action": "event", "sequence": 1, "stream_id": "s", "event": {"id": "e1"}}))
        await ws.wait_closed()

    async def run() -> int:
        async with serve(handler, "127.0.0.1", 0, process_request=process_request) as server:
            port = server.sockets[0].getsockname()[1]
            client = StreamClient(f"ws://127.0.0.1:{port}/v1/stream", token=TOKEN, initial_backoff=0.01,
                                  max_backoff=0.4)
            item = await asyncio.wait_for(anext(client.events()), 20)
            await client.close()
            return item.sequence
    assert asyncio.run(run()) == 1
    assert len(attempts) == 3
    gaps = [b - a for a, b in zip(attempts, attempts[1:])]
    assert all(0.4 <= gap < 5 for gap in gaps), gaps          # the cap was waited for, and not more


def test_clients_sent_away_together_come_back_spread_out():
    """The server's delay was taken as is (max(delay, jitter)): every client a restart or a refusal sent away
    came back at the same instant. Now the delay gets a jitter of up to as much again, within the backoff."""
    from wia_security.connectors.websocket_client import reconnect_wait
    waits = [reconnect_wait(5.0, 4.0) for _ in range(200)]
    assert all(5.0 <= w <= 9.0 for w in waits)
    assert max(waits) - min(waits) > 2.0                      # spread over the jitter, not one instant
    assert all(0 <= reconnect_wait(0, 2.0) <= 2.0 for _ in range(50))


@pytest.mark.parametrize("path", ["/v1/streams", "/", "/v1/events"])
def test_a_handshake_to_a_path_that_serves_no_stream_is_a_404_naming_the_stream_path(make_gateway, path):
    """Starlette's own answer was a close before accept, which clients receive as HTTP 403 and read as a
    refused token (StreamClient: StreamAuthError); the HTTP routes at the same path stay as they were."""
    gw = make_gateway()

    async def run() -> tuple[int, dict]:
        try:
            async with connect(gw.ws_url.replace("/v1/stream", path), additional_headers=AUTH):
                raise AssertionError("a stream opened at " + path)
        except InvalidStatus as exc:
            return exc.response.status_code, json.loads(exc.response.body)
    status, body = asyncio.run(asyncio.wait_for(run(), 30))
    assert status == 404 and body["error"]["code"] == "E3001"
    assert "the stream is at /v1/stream" in body["error"]["message"]
    assert 'wia_gateway_requests_refused_total{source="stream",reason="not_found"} 1' in scrape(gw)
    assert requests.get(gw.url + "/v1/events", headers=AUTH).status_code == 200

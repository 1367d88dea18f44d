"""Contract test: `GET /services/collector/health` says what a HEC request would get, as Splunk's does (code 17
healthy; 18, HTTP 503, "HEC is unhealthy, queues are full"). Load balancers in front of HEC receivers check this
endpoint: it answered 17 while the gateway was shutting down or its delivery queue was full, when every event
was refused with code 9, so they kept sending to it."""
from __future__ import annotations

import asyncio
import json
import os
import threading

import requests
from gateway_helpers import AUTH, TOKEN, recv_json, tiny_socket, until
from strategies import event_dicts
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

SPLUNK = {"Authorization": f"Splunk {TOKEN}"}
HEALTHY = (200, {"text": "HEC is healthy", "code": 17})
UNHEALTHY = (503, {"text": "HEC is unhealthy, queues are full", "code": 18})


def health(gw) -> tuple[int, dict]:
    r = requests.get(gw.url + "/services/collector/health", timeout=10)
    return r.status_code, r.json()


def hec_post(gw, events) -> requests.Response:
    return requests.post(gw.url + "/services/collector/event", data="".join(json.dumps({"event": e}) for e in events),
                         headers=SPLUNK, timeout=60)


def test_contract_health_is_18_while_the_delivery_queue_is_full(make_gateway, tmp_path):
    # A destination that takes nothing for a while: a FIFO whose reader does not read yet (its 64 KB fill up)
    fifo = tmp_path / "copy.fifo"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)       # so that the gateway's open for writing returns
    events = event_dicts(40, seed=1270)
    for e in events:
        e.setdefault("meta", {})["raw"] = "x" * 4000           # 160 KB in all: more than the pipe holds
    gw = make_gateway(extra_sinks=[f"file://{fifo}"], max_pending_events=len(events))
    drained = threading.Event()

    def drain() -> None:
        os.set_blocking(reader, True)
        while os.read(reader, 65536):
            drained.set()
        os.close(reader)
    try:
        assert health(gw) == HEALTHY
        result: list[requests.Response] = []
        posting = threading.Thread(target=lambda: result.append(hec_post(gw, events)))
        posting.start()
        asyncio.run(until(lambda: gw.gateway.dispatcher.pending == len(events), 30))
        status, body = health(gw)
        assert (status, body) == UNHEALTHY
        r = requests.get(gw.url + "/services/collector/health", timeout=10)
        assert r.headers["retry-after"] == "1"
        assert hec_post(gw, event_dicts(1, seed=1271)).json()["code"] == 9      # what it said: events are refused
    finally:
        threading.Thread(target=drain, daemon=True).start()
    posting.join(60)
    assert drained.is_set() and result[0].json() == {"text": "Success", "code": 0}
    asyncio.run(until(lambda: gw.gateway.dispatcher.pending == 0, 30))
    assert health(gw) == HEALTHY


def test_contract_health_is_18_while_the_gateway_shuts_down(make_gateway):
    """Shutdown waits (up to 3 s) for stream clients to take what is queued for them; HTTP is served meanwhile, ingest
    is refused with 503 (code 9), and /healthz says 503: the HEC health said 17."""
    gw = make_gateway()
    events = event_dicts(200, seed=1272)
    for e in events:
        e.setdefault("meta", {})["raw"] = "x" * 20000          # 4 MB: more than the socket buffers hold

    async def run() -> tuple[int, dict]:
        ws = await connect(gw.ws_url, additional_headers=AUTH, sock=tiny_socket(gw, 65536))
        await ws.send(json.dumps({"action": "subscribe"}))
        await recv_json(ws)
        ws.transport.pause_reading()                            # the queue backs up: shutdown waits for it
        r = await asyncio.to_thread(requests.post, gw.url + "/v1/events", json=events, headers=AUTH, timeout=60)
        assert r.status_code == 200
        stopping = asyncio.ensure_future(asyncio.to_thread(gw.stop))
        await until(lambda: gw.gateway.closing)
        seen = await asyncio.to_thread(health, gw)
        assert (await asyncio.to_thread(requests.get, gw.url + "/healthz")).status_code == 503
        ws.transport.resume_reading()
        try:
            while True:
                await recv_json(ws, 10)
        except ConnectionClosed:
            pass
        await stopping
        return seen
    assert asyncio.run(asyncio.wait_for(run(), 60)) == UNHEALTHY

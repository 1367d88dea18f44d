"""Gateway ingest -> WebSocket fan-out to 100 subscribers, against a bare `websockets` broadcast of the same payloads.

    .venv/bin/python benchmarks/bench_gateway.py [--events 2000] [--subscribers 100] [--batch 100]

Both servers run in their own process on 127.0.0.1; the 100 subscribers and the publisher run in
this process (the same client code for both, so the client-side cost is the same).
  gateway   `wia-security serve`: POST /v1/events (validate, store in SQLite, publish) ->
            /v1/stream subscribers (channel "events", no filter).
  baseline  a websockets.asyncio server that receives the same event JSON over one WebSocket and
            calls websockets.broadcast() per event: no validation, no storage, no filtering.
Both without permessage-deflate (the gateway's default; compression costs one deflate per message
per subscriber).
Printed: ingest events/s (time to have every batch accepted), deliveries/s (events x subscribers
over the time until the last subscriber has the last event), latency from the moment a batch was
sent to each delivery (p50/p95/p99), and the gateway/baseline ratios.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

TOKEN = "bench-token-0123456789abcdef"
BASELINE_SERVER = r"""
import asyncio, sys
from websockets.asyncio.server import serve, broadcast
subscribers = set()
async def handler(ws):
    role = await ws.recv()
    if role == "subscribe":
        subscribers.add(ws)
        try:
            await ws.wait_closed()
        finally:
            subscribers.discard(ws)
    else:                                   # the publisher: one message = newline-joined events
        async for batch in ws:
            for event in batch.split("\n"):
                broadcast(subscribers, event)
            await ws.send("ok")
async def main():
    async with serve(handler, "127.0.0.1", int(sys.argv[1]), max_size=None, max_queue=None, write_limit=2**24,
                     compression=None):
        print("ready", flush=True)
        await asyncio.Future()
asyncio.run(main())
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("server did not start")


def make_events(n: int) -> list[dict]:
    from strategies import event_dicts
    events = event_dicts(n, seed=2024, times="legacy")
    for i, e in enumerate(events):
        e.setdefault("meta", {}).setdefault("custom", {})["bench_seq"] = i
    return events


class Subscribers:
    """N WebSocket clients; each records (delivery time - the batch's send time) and counts messages."""

    def __init__(self, count: int, expected: int) -> None:
        self.count = count
        self.expected = expected
        self.sent_at: dict[int, float] = {}
        self.latencies: list[float] = []
        self.received = 0
        self.done = asyncio.Event()
        self.finished = 0
        self.last_delivery = 0.0

    async def run_one(self, connect_ws, subscribe_msg: str, is_event) -> None:
        from websockets.asyncio.client import connect
        async with connect_ws(connect) as ws:
            await ws.send(subscribe_msg)
            got = 0
            async for message in ws:
                if not is_event(message):
                    continue
                now = time.perf_counter()
                i = message.find('"bench_seq":')
                seq = int(message[i + 12:message.find("}", i)])
                self.latencies.append(now - self.sent_at.get(seq // self.batch, now))
                got += 1
                self.received += 1
                if got == self.expected:
                    self.last_delivery = max(self.last_delivery, now)
                    self.finished += 1
                    if self.finished == self.count:
                        self.done.set()
                    return


async def drive(kind: str, port: int, events: list[dict], subscribers: int, batch: int) -> dict:
    import requests
    from websockets.asyncio.client import connect
    payloads = [json.dumps(e, separators=(",", ":")) for e in events]
    subs = Subscribers(subscribers, len(events))
    subs.batch = batch
    if kind == "gateway":
        def connect_ws(c):
            return c(f"ws://127.0.0.1:{port}/v1/stream", additional_headers={"Authorization": f"Bearer {TOKEN}"},
                     max_size=None, max_queue=None)
        subscribe = json.dumps({"action": "subscribe", "subscriptions": [{"channel": "events"}]})
        is_event = lambda m: m.startswith('{"action":"event"')  # noqa: E731
    else:
        def connect_ws(c):
            return c(f"ws://127.0.0.1:{port}", max_size=None, max_queue=None)
        subscribe = "subscribe"
        is_event = lambda m: True  # noqa: E731
    tasks = [asyncio.ensure_future(subs.run_one(connect_ws, subscribe, is_event)) for _ in range(subscribers)]
    await asyncio.sleep(1.0)                         # every subscriber connected and subscribed
    started = time.perf_counter()
    if kind == "gateway":
        session = requests.Session()
        headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/x-ndjson"}

        def post_all() -> None:
            for b in range(0, len(payloads), batch):
                subs.sent_at[b // batch] = time.perf_counter()
                r = session.post(f"http://127.0.0.1:{port}/v1/events", data="\n".join(payloads[b:b + batch]),
                                 headers=headers)
                assert r.status_code == 200, r.text
        await asyncio.to_thread(post_all)
    else:
        async with connect(f"ws://127.0.0.1:{port}", max_size=None) as pub:
            await pub.send("publish")
            for b in range(0, len(payloads), batch):
                subs.sent_at[b // batch] = time.perf_counter()
                await pub.send("\n".join(payloads[b:b + batch]))
                await pub.recv()
    ingested = time.perf_counter()
    await asyncio.wait_for(subs.done.wait(), 600)
    for t in tasks:
        t.cancel()
    lat = sorted(subs.latencies)
    total = subs.last_delivery - started
    return {"ingest_eps": len(events) / (ingested - started), "deliveries_ps": subs.received / total,
            "deliveries": subs.received, "seconds": total,
            "p50_ms": 1000 * lat[len(lat) // 2], "p95_ms": 1000 * lat[int(len(lat) * 0.95)],
            "p99_ms": 1000 * lat[int(len(lat) * 0.99)], "mean_ms": 1000 * statistics.fmean(lat)}


def run_gateway(events: list[dict], subscribers: int, batch: int) -> dict:
    port = free_port()
    folder = tempfile.mkdtemp(prefix="wia-bench-")
    env = {**os.environ, "WIA_GATEWAY_TOKENS": TOKEN}
    profile = ["-m", "cProfile", "-o", os.environ["BENCH_PROFILE"]] if os.environ.get("BENCH_PROFILE") else []
    proc = subprocess.Popen([sys.executable, *profile, "-m", "wia_security", "serve", "--port", str(port), "--store",
                             f"sqlite:///{folder}/events.db", "--dead-letter", f"{folder}/dead.ndjson",
                             "--client-queue", str(len(events) + 100), "--log-level", "warning", "--no-taxii"],
                            env=env)
    try:
        wait_port(port, proc)
        return asyncio.run(drive("gateway", port, events, subscribers, batch))
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)


def run_baseline(events: list[dict], subscribers: int, batch: int) -> dict:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", BASELINE_SERVER, str(port)], stdout=subprocess.PIPE)
    try:
        wait_port(port, proc)
        return asyncio.run(drive("baseline", port, events, subscribers, batch))
    finally:
        proc.kill()
        proc.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--subscribers", type=int, default=100)
    parser.add_argument("--batch", type=int, default=100, help="events per ingest request")
    args = parser.parse_args()
    events = make_events(args.events)
    size = sum(len(json.dumps(e)) for e in events) / len(events)
    print(f"{args.events} events (mean {size:.0f} bytes) x {args.subscribers} subscribers, batches of {args.batch}; "
          f"{os.cpu_count()} CPUs")
    baseline = run_baseline(events, args.subscribers, args.batch)
    gateway = run_gateway(events, args.subscribers, args.batch)
    print(f"{'':28}{'ingest ev/s':>12}{'deliveries/s':>14}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}")
    for name, r in (("baseline: websockets.broadcast", baseline), ("gateway: serve + /v1/stream", gateway)):
        print(f"{name:<30}{r['ingest_eps']:>10,.0f}{r['deliveries_ps']:>14,.0f}{r['p50_ms']:>9.1f}"
              f"{r['p95_ms']:>9.1f}{r['p99_ms']:>9.1f}")
    print(f"ratio gateway/baseline: deliveries/s {gateway['deliveries_ps'] / baseline['deliveries_ps']:.2f}, "
          f"ingest {gateway['ingest_eps'] / baseline['ingest_eps']:.2f}, "
          f"p50 latency x{gateway['p50_ms'] / baseline['p50_ms']:.1f}")
    assert gateway["deliveries"] == baseline["deliveries"] == args.events * args.subscribers


if __name__ == "__main__":
    main()

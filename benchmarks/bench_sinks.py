"""HEC sink throughput vs a floor: the same pre-serialized batches POSTed with a bare HTTP client.

All contenders post to the same local HEC endpoint in the same run, each server in its own process
(so it does not share the client's GIL). Two servers, one table each:

  - the HEC contract server (tests/servers/hec_contract.py): parses and checks every event as HEC
    does — the realistic case, where the server's work is part of every contender's time;
  - a null responder that reads each body and answers `{"text":"Success","code":0}` without looking
    at it — the client-bound worst case, where the floor pays nothing for JSON and the sink pays for
    serializing every event (no server work hides it).

Contenders:

  - floor (http.client): the exact request bodies the sink produces (`sink.encode` of every event,
    joined per batch), pre-built, POSTed on one keep-alive `http.client` connection;
  - floor (requests): the same bodies through a `requests.Session` (the client the sink uses);
  - HecSink: `send()` of WIA event dicts in chunks + `flush()` — encoding, batching, requests,
    reply parsing and accounting included.

Prints events/s and the ratio to the http.client floor (issue 4 goal: >= 0.8). Interleaved rounds,
best of each (see _common.race). Also checks the server received every event exactly once.

    .venv/bin/python benchmarks/bench_sinks.py [--events 20000] [--batch 500] [--gzip]
"""
from __future__ import annotations

import argparse
import http.client
import multiprocessing
import socket
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from _common import corpus, keep_alive_responder, race, table  # noqa: E402

from wia_security.connectors.delivery import DeliveryPolicy  # noqa: E402
from wia_security.connectors.splunk.hec import HEC_EVENT_PATH, HecSink  # noqa: E402

TOKEN = "00000000-1111-4222-8333-444444444444"
OK = b'{"text":"Success","code":0}'


def _responder(sock: socket.socket, counter) -> None:  # type: ignore[no-untyped-def]
    """A minimal HTTP/1.1 keep-alive HEC: reads each body, counts its events (lines), parses nothing."""
    def answer(request: bytes, body: bytes) -> bytes:
        with counter.get_lock():
            counter.value += body.count(b"\n") + 1 if body else 0
        return OK

    keep_alive_responder(sock, answer)


def _contract(sock: socket.socket, counter) -> None:  # type: ignore[no-untyped-def]
    """The HEC contract server on an inherited listening socket; counts indexed events."""
    sys.path.insert(0, str(ROOT / "tests"))
    import threading
    import time
    from servers.hec_contract import HecState, _Server

    state = HecState(tokens={TOKEN: {}}, max_content_length=10**9, keep_events=False)
    server = _Server.__new__(_Server)
    _Server.__init__(server, ("127.0.0.1", 0), state)        # bind a throwaway, then serve the given socket
    server.socket.close()
    server.socket = sock
    threading.Thread(target=server.serve_forever, daemon=True).start()
    while True:
        time.sleep(0.05)
        counter.value = state.indexed_count


def _start(target) -> tuple[str, multiprocessing.Process, object]:  # type: ignore[no-untyped-def]
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    counter = multiprocessing.Value("q", 0)
    process = multiprocessing.Process(target=target, args=(listener, counter), daemon=True)
    process.start()
    return f"http://127.0.0.1:{listener.getsockname()[1]}", process, counter


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--gzip", action="store_true", help="gzip request bodies (sink and floors alike)")
    args = parser.parse_args()

    events = corpus(args.events, seed=7)
    ratios = []
    for label, target in (("HEC contract server (parses every event)", _contract),
                          ("null responder (client-bound worst case)", _responder)):
        url, process, counter = _start(target)
        try:
            ratios.append((label, bench(url, counter, events, args, label, counts_gzip=target is _contract)))
        finally:
            process.terminate()
    print("summary: " + "; ".join(f"{label}: {r:.2f}" for label, r in ratios))
    return 0


def bench(url: str, counter, events: list, args: argparse.Namespace, label: str, *,  # type: ignore[no-untyped-def]
          counts_gzip: bool) -> float:
    import time
    port = int(url.rsplit(":", 1)[1])
    policy = DeliveryPolicy(max_events=args.batch, max_wait=0)
    probe = HecSink(url, token=TOKEN, delivery=policy, gzip=args.gzip)
    payloads = [probe.encode(e) for e in events]
    probe.close()
    bodies = []
    batch: list[bytes] = []
    size = 0
    for p in payloads:                       # the sink's own batching rule: count and bytes
        if batch and (len(batch) >= policy.max_events or size + len(p) + 1 > policy.max_bytes):
            bodies.append(b"\n".join(batch))
            batch, size = [], 0
        batch.append(p)
        size += len(p) + 1
    if batch:
        bodies.append(b"\n".join(batch))
    if args.gzip:
        import gzip
        from wia_security.connectors.splunk.hec import GZIP_LEVEL
        raw_bodies = bodies
        bodies_to_send = lambda: [gzip.compress(b, compresslevel=GZIP_LEVEL) for b in raw_bodies]  # noqa: E731
    else:
        bodies_to_send = lambda: bodies  # noqa: E731
    headers = {"Authorization": f"Splunk {TOKEN}", "Content-Type": "application/json",
               "X-Splunk-Request-Channel": "5f0c3d34-0e61-4c59-8a3e-6c2b1a0f9d11"}
    if args.gzip:
        headers["Content-Encoding"] = "gzip"

    def floor_http_client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port)
        for body in bodies_to_send():
            conn.request("POST", HEC_EVENT_PATH, body=body, headers=headers)
            r = conn.getresponse()
            r.read()
            assert r.status == 200
        conn.close()

    def floor_requests() -> None:
        import requests
        with requests.Session() as s:
            for body in bodies_to_send():
                r = s.post(url + HEC_EVENT_PATH, data=body, headers=headers)
                assert r.status_code == 200

    def hec_sink() -> None:
        sink = HecSink(url, token=TOKEN, delivery=policy, gzip=args.gzip)
        delivered = 0
        for i in range(0, len(events), 1000):
            delivered += sink.send(events[i:i + 1000]).delivered
        delivered += sink.close().delivered
        assert delivered == len(events), delivered

    before = counter.value
    hec_sink()
    time.sleep(0.2)                          # the contract server publishes its count every 50 ms
    received = counter.value - before
    if not args.gzip or counts_gzip:
        assert received == len(events), (received, len(events))   # every event, once

    rows = race({"floor (http.client, pre-serialized)": (floor_http_client, len(events)),
                 "floor (requests, pre-serialized)": (floor_requests, len(events)),
                 "HecSink (encode+batch+post+account)": (hec_sink, len(events))}, rounds=args.rounds)
    print(f"\nHEC sink throughput: {len(events):,} events, batches of {args.batch} ({len(bodies)} requests), "
          f"gzip={'on' if args.gzip else 'off'}, server: {label}")
    print(table(rows, "floor (http.client, pre-serialized)"))
    ratio = dict(rows)["HecSink (encode+batch+post+account)"] / dict(rows)["floor (http.client, pre-serialized)"]
    print(f"goal >= 0.80 of the floor: {'met' if ratio >= 0.8 else 'NOT met'} ({ratio:.2f})")
    return ratio


if __name__ == "__main__":
    sys.exit(main())

"""Bulk sink throughput vs a floor: the same pre-serialized bulk bodies POSTed with a bare HTTP client.

Two servers, each run for floor and sink alike:
  contract  a `_bulk` responder in its own process that parses every action and document (the
            product's request work) and answers with per-item results, as a real cluster does;
  osmem     osmem-server, the OpenSearch-API emulator, which indexes for real but slowly (its own
            speed then bounds both sides, so that ratio says little). The floor posts bodies the sink itself produced (`sink.encode` joined per
batch), with one keep-alive `http.client` connection and no parsing of the answer; the sink adds
conversion, batching, the client library and per-item result handling. Prints events/s of each and
the ratio (issue 4 goal: >= 0.8).

    .venv/bin/python benchmarks/bench_bulk.py [--events 20000] [--batch 500] [--client opensearch-py|elasticsearch-py]
                                              [--osmem-events 1000] [--latency-ms 0]
"""
from __future__ import annotations

import argparse
import http.client
import multiprocessing
import socket
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from _common import keep_alive_responder  # noqa: E402
from servers.osmem import EsCompatNode, start_osmem  # noqa: E402
from strategies import event_dicts  # noqa: E402
from wia_security.connectors.delivery.policy import DeliveryPolicy  # noqa: E402
from wia_security.connectors.elastic import ElasticSink, OpenSearchSink  # noqa: E402
from wia_security.formats import FORMATS  # noqa: E402


def make_sink(kind: str, url: str, batch: int, fmt: str) -> ElasticSink:
    policy = DeliveryPolicy(max_events=batch, max_bytes=10 * 1024 * 1024, max_wait=0)
    if kind == "elasticsearch-py":
        return ElasticSink(url, format=fmt, delivery=policy, mapping_dialect="opensearch",
                           client_options={"node_class": EsCompatNode})
    return OpenSearchSink(url, format=fmt, delivery=policy)


def run_sink(kind: str, url: str, events: list[dict], batch: int, fmt: str, *, put_template: bool = True,
             pipelined: bool = True) -> float:
    sink = make_sink(kind, url, batch, fmt)
    sink.pipelined = pipelined               # False: each batch posted within send(), as before pipelining
    if put_template:
        sink.put_template()                  # outside the timing, like the floor's index setup
    sink.template_installed = True
    start = time.perf_counter()
    report = sink.send(events)
    report.merge(sink.flush())
    elapsed = time.perf_counter() - start
    sink.close()
    assert report.delivered + report.duplicates + len(report.failed) == len(events)
    if report.failed:   # the same documents fail in the floor's bodies too (mapping conflicts of --format wia)
        print(f"(sink: {len(report.failed)} item(s) refused by the server: {report.failed[0].reason[:90]})")
    return elapsed


def run_helpers(kind: str, url: str, events: list[dict], batch: int, fmt: str) -> float:
    """The client library's own `helpers.streaming_bulk` with the same documents (conversion included)."""
    sink = make_sink(kind, url, batch, fmt)
    module = __import__("elasticsearch.helpers" if kind == "elasticsearch-py" else "opensearchpy.helpers",
                        fromlist=["streaming_bulk"])
    start = time.perf_counter()
    actions = ({"_op_type": "create", "_index": sink.index_for(e), "_id": e["id"], "_source": sink.document(e)}
               for e in events)
    done = sum(1 for ok, _ in module.streaming_bulk(sink.client, actions, chunk_size=batch,
                                                    max_chunk_bytes=10 * 1024 * 1024, raise_on_error=False))
    elapsed = time.perf_counter() - start
    sink.close()
    assert done == len(events)
    return elapsed


def run_floor(url: str, bodies: list[bytes]) -> float:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port)
    start = time.perf_counter()
    for body in bodies:
        conn.request("POST", "/_bulk", body=body, headers={"Content-Type": "application/x-ndjson"})
        response = conn.getresponse()
        response.read()
        assert response.status == 200, response.status
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed


def _bulk_responder(sock: "socket.socket", latency: float = 0.0) -> None:  # pragma: no cover - child process
    """Minimal keep-alive HTTP/1.1 `_bulk` endpoint: parses each action/document pair, answers per item
    (after `latency` seconds: a cluster's network round trip and indexing time)."""
    import json

    root = json.dumps({"version": {"number": "2.11.0", "distribution": "opensearch"},
                       "tagline": "The OpenSearch Project: https://opensearch.org/"}).encode()

    def answer(request: bytes, body: bytes) -> bytes:
        if b"/_bulk" not in request:
            return root if request.startswith(b"GET / ") else b"{}"
        items = []
        lines = body.splitlines()
        for action_line, doc_line in zip(lines[0::2], lines[1::2]):
            (op, meta), = json.loads(action_line).items()
            json.loads(doc_line)
            items.append({op: {"_index": meta.get("_index"), "_id": meta.get("_id"), "_version": 1,
                               "result": "created", "status": 201}})
        if latency:
            time.sleep(latency)
        return json.dumps({"took": 1, "errors": False, "items": items}).encode()

    keep_alive_responder(sock, answer)


def start_contract(latency: float = 0.0) -> tuple[str, "multiprocessing.Process"]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    process = multiprocessing.Process(target=_bulk_responder, args=(listener, latency), daemon=True)
    process.start()
    return f"http://127.0.0.1:{listener.getsockname()[1]}", process


def compare(label: str, floor_url: str, sink_url: str, events: list[dict], args: argparse.Namespace,
            put_template: bool) -> float:
    encoder = make_sink(args.client, floor_url, args.batch, args.format)
    if put_template:
        encoder.put_template()
    payloads = [encoder.encode(e) for e in events]
    bodies = [b"".join(payloads[i:i + args.batch]) for i in range(0, len(payloads), args.batch)]
    floor = run_floor(floor_url, bodies)
    sink = run_sink(args.client, sink_url, events, args.batch, args.format, put_template=put_template)
    serial = run_sink(args.client, sink_url, events, args.batch, args.format, put_template=False, pipelined=False)
    helpers = run_helpers(args.client, sink_url, events, args.batch, args.format)
    mb = sum(map(len, bodies)) / 1e6
    print(f"== {label}: documents {args.format}, {len(events):,} events, {len(bodies)} bulk requests of "
          f"{args.batch}, {mb:.1f} MB")
    print(f"floor (bare http.client, pre-serialized bodies): {len(events) / floor:10,.0f} events/s")
    print(f"sink  ({args.client}, convert + batch + bulk):   {len(events) / sink:10,.0f} events/s")
    print(f"sink, one request at a time (not pipelined): {len(events) / serial:10,.0f} events/s"
          f"  ratio {floor / serial:.2f}")
    print(f"client's helpers.streaming_bulk, same documents: {len(events) / helpers:10,.0f} events/s"
          f"  ratio {floor / helpers:.2f}")
    print(f"ratio sink/floor: {floor / sink:.2f}  (goal >= 0.8)")
    return floor / sink


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--client", choices=["opensearch-py", "elasticsearch-py"], default="opensearch-py")
    parser.add_argument("--format", default="ecs" if "ecs" in FORMATS else "wia",
                        help="document format (ecs: what the sink sends; wia: the event itself)")
    parser.add_argument("--latency-ms", type=float, default=0.0,
                        help="the contract server answers each _bulk this much later (a remote cluster)")
    parser.add_argument("--osmem-events", type=int, default=1000,
                        help="events for the osmem run (it indexes slowly; 0 skips it)")
    args = parser.parse_args()
    events = event_dicts(args.events, seed=1, times="legacy")
    url, process = start_contract(args.latency_ms / 1000)
    latency = f", answers after {args.latency_ms:g} ms" if args.latency_ms else ""
    try:
        compare(f"contract _bulk server (parses every action and document{latency})", url, url, events, args, False)
    finally:
        process.terminate()
    if args.osmem_events:
        server = start_osmem()
        try:
            floor_clone, sink_clone = server.clone(), server.clone()
            compare("osmem-server (emulator; its indexing speed bounds both sides)", floor_clone.url,
                    sink_clone.url, events[:args.osmem_events], args, True)
            floor_clone.close()
            sink_clone.close()
        finally:
            server.close()


if __name__ == "__main__":
    main()

"""Bulk sink throughput vs a floor: the same pre-serialized bulk bodies POSTed with a bare HTTP client.

Both run in the same process against the same local osmem-server (OpenSearch-API emulator), each
into a fresh clone. The floor posts bodies the sink itself produced (`sink.encode` joined per
batch), with one keep-alive `http.client` connection and no parsing of the answer; the sink adds
conversion, batching, the client library and per-item result handling. Prints events/s of each and
the ratio (issue 4 goal: >= 0.8).

    .venv/bin/python benchmarks/bench_bulk.py [--events 20000] [--batch 500] [--client opensearch-py|elasticsearch-py]
"""
from __future__ import annotations

import argparse
import http.client
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

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


def run_sink(kind: str, url: str, events: list[dict], batch: int, fmt: str) -> float:
    sink = make_sink(kind, url, batch, fmt)
    sink.put_template()                      # outside the timing, like the floor's index setup
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--client", choices=["opensearch-py", "elasticsearch-py"], default="opensearch-py")
    parser.add_argument("--format", default="ecs" if "ecs" in FORMATS else "wia",
                        help="document format (ecs: what the sink sends; wia: the event itself)")
    args = parser.parse_args()
    fmt = args.format
    events = event_dicts(args.events, seed=1)
    server = start_osmem()
    try:
        floor_clone, sink_clone = server.clone(), server.clone()
        encoder = make_sink(args.client, floor_clone.url, args.batch, fmt)
        encoder.put_template()
        payloads = [encoder.encode(e) for e in events]
        bodies = [b"".join(payloads[i:i + args.batch]) for i in range(0, len(payloads), args.batch)]
        floor = run_floor(floor_clone.url, bodies)
        sink = run_sink(args.client, sink_clone.url, events, args.batch, fmt)
        mb = sum(map(len, bodies)) / 1e6
        print(f"documents: {fmt}, {args.events:,} events, {len(bodies)} bulk requests of {args.batch}, {mb:.1f} MB")
        print(f"floor (bare http.client, pre-serialized bodies): {args.events / floor:10,.0f} events/s")
        print(f"sink  ({args.client}, convert + batch + bulk):   {args.events / sink:10,.0f} events/s")
        print(f"ratio sink/floor: {floor / sink:.2f}  (goal >= 0.8)")
        floor_clone.close()
        sink_clone.close()
    finally:
        server.close()


if __name__ == "__main__":
    main()

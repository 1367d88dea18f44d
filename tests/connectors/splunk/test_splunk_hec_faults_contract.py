"""HEC sink fault tests against the HEC contract server: for N events sent, each one is indexed or in the
dead-letter output with its reason — counted, zero lost; duplicates only where at-least-once allows
(a request the server processed but whose reply was lost: a timeout or an accepted-then-503)."""
from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter

from servers.hec_contract import Fault, HecContractServer  # noqa: E402
from strategies import event_dicts  # noqa: E402

from wia_security.connectors.dead_letter import DeadLetterFile
from wia_security.connectors.delivery import DeliveryPolicy
from wia_security.connectors.splunk.hec import HecSink
from wia_security.pipeline import Forwarder
from wia_security.reader import Item

TOKEN = "0f9e8d7c-6b5a-4938-8271-605f4e3d2c1b"


def items(events):
    return [Item("faults.ndjson", i + 1, value=e) for i, e in enumerate(events)]


def dead_letters(path):
    try:
        return [json.loads(line) for line in open(path, encoding="utf-8")]
    except FileNotFoundError:
        return []


def test_contract_every_fault_kind_nothing_lost(tmp_path):
    n = 600
    events = event_dicts(n, seed=4)
    rnd = random.Random(7)
    faults = []
    kinds = [Fault("status", status=503, code=9, retry_after="0"), Fault("status", status=429, code=9),
             Fault("status", status=500, code=8), Fault("reset"), Fault("die_mid_body"),
             Fault("delay", seconds=0.3), Fault("invalid_event", code=6, index=3),
             Fault("invalid_event", code=12, index=0), Fault("accept_then_status", status=503, code=9),
             Fault("status", status=400, code=6)]
    for _ in range(40):
        faults.append(rnd.choice(kinds) if rnd.random() < 0.6 else None)
    server = HecContractServer({TOKEN: {}}).start()
    server.state.faults.extend(f for f in faults if f is not None)
    sink = HecSink(server.url, token=TOKEN, timeout=(1.0, 0.15),
                   delivery=DeliveryPolicy(max_events=25, max_wait=0, max_attempts=8, initial_backoff=0.001,
                                           max_backoff=0.01, max_elapsed=0))
    dl_path = tmp_path / "dead.ndjson"
    try:
        with sink, DeadLetterFile(str(dl_path)) as dead:
            summary = Forwarder(sink, dead, batch_size=40).run(items(events))
    finally:
        time.sleep(0.35)                       # let a delayed handler finish before counting
        server.stop()
    indexed = Counter(e["event"]["id"] for e in server.events)
    dead = dead_letters(dl_path)
    dead_ids = [d["event"]["id"] for d in dead]
    sent_ids = {e["id"] for e in events}
    # zero lost: every event indexed or dead-lettered, and nothing else appears
    assert set(indexed) | set(dead_ids) == sent_ids
    assert len(dead_ids) == len(set(dead_ids))
    assert summary.delivered + summary.undeliverable == n and summary.dead_lettered == len(dead)
    # dead letters carry the reason; permanent HEC verdicts are per event, never lost
    assert all(d["reason"] and d["sink"] == sink.name for d in dead)
    assert {d["reason"].split(":")[0] for d in dead} <= {"HEC 400 code 6", "HEC 400 code 12"}
    # duplicates only from replies the server processed but the client never saw
    lost_replies = sum(1 for f in faults if f is not None and f.kind in ("delay", "accept_then_status"))
    duplicated = sum(c - 1 for c in indexed.values())
    assert duplicated <= lost_replies * 25
    # an event both indexed and dead-lettered only when an earlier copy's reply was lost
    assert len(set(indexed) & set(dead_ids)) <= lost_replies * 25
    assert lost_replies and any(f is not None and f.kind == "invalid_event" for f in faults)   # the schedule bites


def test_contract_server_dies_mid_batch_and_comes_back(tmp_path):
    events = event_dicts(300, seed=11)
    server = HecContractServer({TOKEN: {}}).start()
    port = server.port
    server.state.faults.append(Fault("die_mid_body"))
    sink = HecSink(server.url, token=TOKEN,
                   delivery=DeliveryPolicy(max_events=50, max_wait=0, max_attempts=40, initial_backoff=0.01,
                                           max_backoff=0.05, max_elapsed=0))

    def outage():
        time.sleep(0.05)
        server.stop()                          # the process is gone: connections refused
        time.sleep(0.4)
        server._port = port
        server.start()                         # and back, same port, same stored events
    t = threading.Thread(target=outage)
    t.start()
    report = sink.send(events[:150])
    time.sleep(0.1)
    report.merge(sink.send(events[150:]))
    report.merge(sink.flush())
    t.join()
    sink.close()
    server.stop()
    assert not report.failed
    indexed = Counter(e["event"]["id"] for e in server.events)
    assert set(indexed) == {e["id"] for e in events}
    assert report.delivered == 300 and max(indexed.values()) == 1      # refused/cut requests were never indexed


def test_contract_permanent_outage_dead_letters_every_event_with_the_reason(tmp_path):
    events = event_dicts(40, seed=3)
    server = HecContractServer({TOKEN: {}}).start()
    server.state.faults.extend(Fault("status", status=503, code=9, retry_after="0") for _ in range(100))
    sink = HecSink(server.url, token=TOKEN,
                   delivery=DeliveryPolicy(max_events=10, max_wait=0, max_attempts=3, initial_backoff=0.001,
                                           max_backoff=0.002))
    dl_path = tmp_path / "dead.ndjson"
    with sink, DeadLetterFile(str(dl_path)) as dead:
        summary = Forwarder(sink, dead, batch_size=10).run(items(events))
    server.stop()
    dead_records = dead_letters(dl_path)
    assert summary.undeliverable == 40 and not server.events
    assert sorted(d["event"]["id"] for d in dead_records) == sorted(e["id"] for e in events)
    assert all("gave up after 3 attempt(s)" in d["reason"] and "Server is busy" in d["reason"] for d in dead_records)
    assert all(d["errors"][0]["details"]["code"] == 9 for d in dead_records)
    assert server.state.event_requests == 4 * 3

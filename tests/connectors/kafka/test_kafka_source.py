"""KafkaSource against tansu: offsets committed only after delivery; a killed consumer loses nothing; scale-out."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter

from confluent_kafka import Consumer, Producer, TopicPartition
from strategies import event_dicts

from wia_security.connectors.base import BaseSink, DeliveryReport
from wia_security.connectors.dead_letter import DeadLetterFile
from wia_security.connectors.kafka import KafkaSink, KafkaSource
from wia_security.connectors.sqlite import SqliteSink


class ListSink(BaseSink):
    name = "list"

    def __init__(self) -> None:
        self.events: list[dict] = []

    def send(self, events):
        self.events.extend(events)
        return DeliveryReport(self.name, delivered=len(events))


def produce(bootstrap: str, topic: str, events: list[dict]) -> None:
    with KafkaSink(bootstrap, topic) as sink:
        report = sink.send(events)
    assert report.delivered == len(events), report.failed


def committed(bootstrap: str, topic: str, group: str, partitions: int) -> dict[int, int]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        tps = consumer.committed([TopicPartition(topic, p) for p in range(partitions)], 10)
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), 10)[1] for p in range(partitions)}
    finally:
        consumer.close()
    return {tp.partition: tp.offset for tp in tps}, ends


def test_valid_events_stored_invalid_dead_lettered_offsets_committed(tansu, tmp_path):
    topic = tansu.create_topic(partitions=3)
    events = event_dicts(500, seed=10)
    produce(tansu.bootstrap, topic, events)
    bad = Producer({"bootstrap.servers": tansu.bootstrap})
    bad.produce(topic, b"{not json", key=b"k1", partition=0)
    bad.produce(topic, json.dumps({**events[0], "id": "not-a-uuid"}).encode(), key=b"k2", partition=1)
    bad.produce(topic, b"\xff\xfe", key=b"k3", partition=2)
    assert bad.flush(10) == 0

    store = SqliteSink(str(tmp_path / "events.db"))
    with KafkaSource(tansu.bootstrap, [topic], "g-basic", batch_size=100) as source, store, \
            DeadLetterFile(str(tmp_path / "dead.ndjson")) as dead:
        summary = source.run(store, dead, idle_timeout=2)
        assert store.store.count() == 500
    assert (summary.read, summary.delivered, summary.invalid, summary.unparseable) == (503, 500, 1, 2)
    records = [json.loads(line) for line in (tmp_path / "dead.ndjson").read_text().splitlines()]
    assert len(records) == 3
    assert all(r["where"].startswith(f"kafka:{topic}[") and r["reason"] for r in records)
    assert any("/id" in r["reason"] for r in records)
    commits, ends = committed(tansu.bootstrap, topic, "g-basic", 3)
    assert commits == ends                     # everything delivered, everything committed


def test_nothing_committed_when_delivery_fails(tansu, tmp_path):
    topic = tansu.create_topic()
    produce(tansu.bootstrap, topic, event_dicts(50, seed=11))

    class DownSink(ListSink):
        def send(self, events):
            raise ConnectionError("destination down")

    with KafkaSource(tansu.bootstrap, [topic], "g-down", batch_size=20) as source:
        try:
            source.run(DownSink(), DeadLetterFile(str(tmp_path / "dead.ndjson")), idle_timeout=2)
        except ConnectionError:
            pass
        else:
            raise AssertionError("the sink's failure must propagate")
    commits, _ = committed(tansu.bootstrap, topic, "g-down", 1)
    assert commits[0] < 0                       # no offset stored: the next consumer starts from the beginning
    with KafkaSource(tansu.bootstrap, [topic], "g-down", batch_size=20) as source:
        sink = ListSink()
        source.run(sink, DeadLetterFile(str(tmp_path / "dead.ndjson")), idle_timeout=2)
    assert len({e["id"] for e in sink.events}) == 50


CONSUMER = textwrap.dedent("""
    import sys, time
    from wia_security.connectors.dead_letter import DeadLetterFile
    from wia_security.connectors.file import FileSink
    from wia_security.connectors.kafka import KafkaSource

    class SlowFileSink(FileSink):
        def flush(self):
            report = super().flush()
            time.sleep(0.15)          # a slow destination widens the delivered-but-uncommitted window
            return report

    bootstrap, topic, out, dead, batch = sys.argv[1:6]
    with KafkaSource(bootstrap, [topic], "g-crash", batch_size=int(batch)) as source, \\
            SlowFileSink(out) as sink, DeadLetterFile(dead) as dl:
        source.run(sink, dl, idle_timeout=3)
""")


def test_killed_consumer_loses_nothing_and_replays_only_the_uncommitted_batch(tansu, tmp_path):
    topic = tansu.create_topic(partitions=3)
    events = event_dicts(2000, seed=12)
    produce(tansu.bootstrap, topic, events)
    script = tmp_path / "consumer.py"
    script.write_text(CONSUMER)
    out, dead, batch = tmp_path / "out.ndjson", tmp_path / "dead.ndjson", 100
    args = [sys.executable, str(script), tansu.bootstrap, topic, str(out), str(dead), str(batch)]

    kills = 0
    for threshold in (800,):                    # kill mid-stream
        proc = subprocess.Popen(args)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if out.exists() and out.read_text().count("\n") >= threshold:
                break
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        kills += 1
        seen = out.read_text().count("\n")
        assert seen < 2000, "the consumer finished before it could be killed"
    subprocess.run(args, check=True, timeout=120)  # a fresh consumer finishes the topic

    ids = Counter(json.loads(line)["id"] for line in out.read_text().splitlines())
    assert set(ids) == {e["id"] for e in events}, "an event was lost"
    duplicates = sum(n - 1 for n in ids.values())
    # Only what was delivered but not yet committed when the process died comes again.
    assert duplicates <= kills * batch
    assert not dead.exists()


def test_scale_out_consumers_in_one_group_share_the_partitions(tansu):
    topic = tansu.create_topic(partitions=6)
    events = event_dicts(1200, seed=13)
    produce(tansu.bootstrap, topic, events)
    sinks = [ListSink() for _ in range(3)]
    stop = threading.Event()
    errors: list[BaseException] = []

    def consume(sink: ListSink) -> None:
        try:
            with KafkaSource(tansu.bootstrap, [topic], "g-scale", batch_size=50) as source:
                source.run(sink, DeadLetterFile(os.devnull), stop=stop)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=consume, args=(s,)) for s in sinks]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and len({e["id"] for s in sinks for e in s.events}) < 1200:
        time.sleep(0.2)
    stop.set()
    for t in threads:
        t.join(30)
    assert not errors
    assert {e["id"] for s in sinks for e in s.events} == {e["id"] for e in events}
    assert all(s.events for s in sinks), [len(s.events) for s in sinks]   # each member got partitions
    total = sum(len(s.events) for s in sinks)
    assert total <= 1200 + 3 * 50 * 3             # duplicates only from batches re-read after a rebalance

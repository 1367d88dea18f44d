"""KafkaSource against tansu: a second consumer joins the group while the first is delivering a batch.

The group waits for the first member to come back to the broker (its next consume) before the partitions move,
so the batch it delivered is committed under the generation that read it, and the partition's next owner starts
right after it: nothing is lost, and at most that batch is read twice (at-least-once)."""
from __future__ import annotations

import json
import threading
import time
from collections import Counter

from confluent_kafka import Consumer, Producer, TopicPartition
from strategies import event_dicts

from wia_security.connectors.base import BaseSink, DeliveryReport
from wia_security.connectors.kafka import KafkaSource


class SlowFirstBatch(BaseSink):
    """Holds its first batch until `hold` is set (the second consumer has been started) and a little longer."""

    def __init__(self, name: str, hold: threading.Event | None = None, started: threading.Event | None = None):
        self.name, self.events, self.hold, self.started = name, [], hold, started

    def send(self, events):
        if self.started is not None and not self.started.is_set():
            self.started.set()
            assert self.hold is not None and self.hold.wait(60)
            time.sleep(4)               # the joining member's request reaches the group while this batch is delivered
        self.events.extend(events)
        return DeliveryReport(self.name, delivered=len(events))


class Dead:
    def __init__(self) -> None:
        self.records: list = []

    def put(self, rejected) -> None:
        self.records.append(rejected)


def test_a_member_joining_mid_batch_loses_nothing_and_commits_only_what_was_delivered(tansu):
    topic = tansu.create_topic(partitions=2)
    events = event_dicts(200, seed=71)
    producer = Producer({"bootstrap.servers": tansu.bootstrap})
    for n, event in enumerate(events):              # partition 0 first: the first batch is partition 0's
        producer.produce(topic, json.dumps(event).encode(), key=event["id"].encode(), partition=0 if n < 150 else 1)
    assert producer.flush(15) == 0
    del producer

    started, joined = threading.Event(), threading.Event()
    first_sink, second_sink = SlowFirstBatch("first", joined, started), SlowFirstBatch("second")
    first = KafkaSource(tansu.bootstrap, [topic], "g-join", batch_size=100)
    errors: list[BaseException] = []

    def second_member() -> None:
        try:
            assert started.wait(60), "the first member never got a batch"
            with KafkaSource(tansu.bootstrap, [topic], "g-join", batch_size=100) as second:
                joined.set()
                second.run(second_sink, Dead(), idle_timeout=8)
        except BaseException as exc:  # noqa: BLE001 - reported by the test thread
            errors.append(exc)
            joined.set()

    thread = threading.Thread(target=second_member)
    thread.start()
    try:
        first.run(first_sink, Dead(), idle_timeout=8)
    finally:
        thread.join(120)
        first.close()
    assert not errors, errors
    seen = Counter(e["id"] for e in first_sink.events + second_sink.events)
    assert set(seen) == {e["id"] for e in events}                               # nothing lost
    assert sum(seen.values()) - len(seen) <= 100                                 # at most one batch twice
    checker = Consumer({"bootstrap.servers": tansu.bootstrap, "group.id": "g-join"})
    try:
        offsets = {tp.partition: tp.offset for tp in checker.committed([TopicPartition(topic, p) for p in (0, 1)], 10)}
    finally:
        checker.close()
    assert offsets == {0: 150, 1: 50}                                           # committed to the end, not past it

"""KafkaSource against tansu with poison messages: every message is delivered or dead-lettered with
kafka:TOPIC[PARTITION]:OFFSET and the reason, and the offsets move past all of them only after that."""
from __future__ import annotations

import json
import threading

from confluent_kafka import Consumer, Producer, TopicPartition
from servers.tansu import start_tansu
from strategies import event_dicts

from wia_security.connectors.base import BaseSink, DeliveryReport, Rejected
from wia_security.connectors.dead_letter import DeadLetterFile
from wia_security.connectors.kafka import KafkaSink, KafkaSource


class RefusingSink(BaseSink):
    """Delivers everything except the events whose ids it was told to refuse (as a copy, as many sinks do)."""

    name = "refusing"

    def __init__(self, refuse: set[str]) -> None:
        self.refuse = refuse
        self.events: list[dict] = []

    def send(self, events):
        report = DeliveryReport(self.name)
        for event in events:
            if event["id"] in self.refuse:
                report.failed.append(Rejected("refused by the destination", event=dict(event), sink=self.name))
            else:
                self.events.append(event)
                report.delivered += 1
        return report


def committed(bootstrap: str, topic: str, group: str, partitions: int) -> list[int]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        return [tp.offset for tp in consumer.committed([TopicPartition(topic, p) for p in range(partitions)], 10)]
    finally:
        consumer.close()


def test_poison_messages_are_dead_lettered_with_topic_partition_offset_and_offsets_move_past_them(tansu, tmp_path):
    topic = tansu.create_topic(partitions=2)
    good = event_dicts(30, seed=21)
    poison = {
        b"{not json": "unparseable input: ",
        b"\xff\xfe\x00": "not valid UTF-8",
        b"": "empty message",
        None: "empty message (null value: a tombstone?)",
        b"[]": "invalid: /: ",
        b'"just a string"': "invalid: /: ",
        b"{}": "invalid: /",
        b'{"a":' * 50_000: "nesting deeper than",
        json.dumps({**good[0], "id": "not-a-uuid"}).encode(): "invalid: /id",
        b"\x00" * 16: "unparseable input: ",
        json.dumps(good[1]).encode() + b"\n" + json.dumps(good[2]).encode(): "unparseable input: ",
        json.dumps({**good[3], "data": {"blob": "x" * 900_000}}).encode(): "invalid: /data",
    }
    refused = {good[4]["id"], good[5]["id"]}
    producer = Producer({"bootstrap.servers": tansu.bootstrap, "message.max.bytes": 2_000_000})
    sent: list[tuple[int, bytes | None]] = []
    values = [json.dumps(e).encode() for e in good] + list(poison)
    for i, value in enumerate(values):           # null keys on every other message
        producer.produce(topic, value, key=None if i % 2 else str(i).encode(), partition=i % 2)
        sent.append((i % 2, value))
    assert producer.flush(15) == 0

    sink = RefusingSink(refused)
    dead_path = tmp_path / "dead.ndjson"
    with KafkaSource(tansu.bootstrap, [topic], "g-poison", batch_size=7) as source, DeadLetterFile(str(dead_path)) as dead:
        summary = source.run(sink, dead, idle_timeout=3)
    records = [json.loads(line) for line in dead_path.read_text().splitlines()]
    assert len(sink.events) + len(records) == len(values) == summary.read        # nothing lost, nothing twice
    assert len(sink.events) == len(good) - len(refused)

    offsets: dict[int, int] = {0: 0, 1: 0}
    where_of: dict[bytes | None, str] = {}
    for partition, value in sent:
        where_of[value] = f"kafka:{topic}[{partition}]:{offsets[partition]}"
        offsets[partition] += 1
    by_where = {r["where"]: r for r in records}
    assert len(by_where) == len(records)
    for value, why in poison.items():
        record = by_where[where_of[value]]
        assert why in record["reason"], (where_of[value], record["reason"])
        kept = record.get("raw", "").encode() if "raw" in record else record.get("event")
        assert kept is not None or "raw_base64" in record                 # the message itself is kept
    for event in good[4:6]:                      # refused by the sink: still named by the message they came from
        record = by_where[where_of[json.dumps(event).encode()]]
        assert record["reason"] == "refused by the destination" and record["event"]["id"] == event["id"]

    # committed past every message of each partition (counted here: tansu's watermarks lag after large messages)
    assert committed(tansu.bootstrap, topic, "g-poison", 2) == [offsets[0], offsets[1]]


def test_the_broker_dying_inside_one_send_leaves_every_event_delivered_or_failed_with_a_reason():
    broker = start_tansu()
    try:
        topic = broker.create_topic(partitions=2)
        events = event_dicts(3000, seed=22) * 20                 # 60,000 messages in one send()
        with KafkaSink(broker.bootstrap, topic, delivery_timeout_ms=3000,
                       config={"linger.ms": 20, "batch.num.messages": 200}) as sink:
            killer = threading.Timer(0.5, broker.kill)          # while send() is producing and waiting
            killer.start()
            report = sink.send(events)
            killer.join()
    finally:
        broker.kill()
    assert report.delivered + len(report.failed) == len(events)
    assert report.failed, "the broker died before send() returned: some messages cannot have a report"
    assert all(f.retryable and f.reason.startswith("kafka") and f.event is not None for f in report.failed)

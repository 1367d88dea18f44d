"""Loss accounting through the gateway: a Kafka destination (tansu) dies mid-stream; every event is stored and
either in Kafka or in the dead letter with its reason — counted, zero lost."""
from __future__ import annotations

import json

import pytest
import requests
from gateway_helpers import AUTH
from strategies import event_dicts

pytest.importorskip("confluent_kafka", reason="the kafka extra is not installed")

from confluent_kafka import Consumer  # noqa: E402
from servers.tansu import start_tansu  # noqa: E402


def consume(bootstrap: str, topic: str, expected: int, timeout: float = 30) -> list[str]:
    import time
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "verify", "auto.offset.reset": "earliest",
                         "session.timeout.ms": 6000})
    consumer.subscribe([topic])
    ids, deadline = [], time.monotonic() + timeout
    try:
        while len(ids) < expected and time.monotonic() < deadline:
            ids += [json.loads(m.value())["id"] for m in consumer.consume(500, 1.0) if m.error() is None]
    finally:
        consumer.close()
    return ids


def test_kafka_destination_dies_every_event_delivered_or_dead_lettered(make_gateway, tmp_path):
    broker = start_tansu()
    try:
        topic = broker.create_topic(partitions=2)
        gw = make_gateway(extra_sinks=[f"kafka://{broker.bootstrap}/{topic}?message.timeout.ms=2000"])
        events = event_dicts(500, seed=70)
        for i in range(0, 300, 50):
            assert requests.post(gw.url + "/v1/events", json=events[i:i + 50], headers=AUTH).status_code == 200
        in_kafka = consume(broker.bootstrap, topic, 300)
        broker.kill()                                             # the destination goes away
        for i in range(300, 500, 100):
            r = requests.post(gw.url + "/v1/events", json=events[i:i + 100], headers=AUTH, timeout=60)
            assert r.status_code == 200 and r.json()["accepted"] == 100   # stored; the destination failure is dead-lettered
    finally:
        broker.kill()
    dead = [json.loads(line) for line in (tmp_path / "dead.ndjson").read_text().splitlines()]
    dead_ids = [d["event"]["id"] for d in dead]
    all_ids = {e["id"] for e in events}
    assert len(in_kafka) == len(set(in_kafka)) == 300
    assert set(in_kafka) | set(dead_ids) == all_ids and not set(in_kafka) & set(dead_ids)
    assert len(dead_ids) == 200 and all("kafka" in d["reason"] and d["sink"] for d in dead)
    r = requests.get(gw.url + "/v1/stats", headers=AUTH).json()["delivery"]
    assert r["stored"] == 500 and r["dead_lettered"] == 200

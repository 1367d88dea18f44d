"""`wia-security pull kafka://...` SIGKILLed again and again against tansu (a real Kafka-protocol broker).

At-least-once: after every kill, each partition's committed offset is never ahead of the store (every
message below it is stored), and restarts end with every produced event stored exactly once (the
store is idempotent on the event id, so the replayed uncommitted batch adds nothing).
"""
from __future__ import annotations

import json
import random
import signal
import sqlite3
import subprocess
import sys
import time
import uuid

import pytest

pytest.importorskip("confluent_kafka", reason="the kafka extra is not installed")

from confluent_kafka import Consumer, Producer, TopicPartition  # noqa: E402


from crash_checks import stored_ids  # noqa: E402
from strategies import event_dicts  # noqa: E402

N_EVENTS = 40_000
PARTITIONS = 2
GROUP = "wia-crash"


def _produce(bootstrap: str, topic: str, events: list[dict]) -> dict[tuple[int, int], str]:
    """-> {(partition, offset): event id}, from the broker's delivery reports."""
    where: dict[tuple[int, int], str] = {}
    errors: list[str] = []

    def report(err, msg) -> None:
        if err is not None:
            errors.append(str(err))
        else:
            where[(msg.partition(), msg.offset())] = msg.key().decode()

    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20})
    for event in events:
        producer.produce(topic, json.dumps(event).encode(), key=event["id"].encode(), on_delivery=report)
        producer.poll(0)
    assert producer.flush(60) == 0 and not errors, errors[:3]
    return where


def _committed(bootstrap: str, topic: str) -> dict[int, int]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": GROUP})
    try:
        return {tp.partition: tp.offset for tp in
                consumer.committed([TopicPartition(topic, p) for p in range(PARTITIONS)], 10)}
    finally:
        consumer.close()


def test_pull_killed_ten_times_stores_every_event_and_never_commits_ahead(tansu, tmp_path):
    topic = tansu.create_topic(partitions=PARTITIONS)
    base = event_dicts(1000, seed=2407)
    events = [dict(base[i % len(base)], id=str(uuid.UUID(int=i + 1, version=4))) for i in range(N_EVENTS)]
    where = _produce(tansu.bootstrap, topic, events)
    assert len(where) == N_EVENTS
    # A short session: a restarted consumer waits out the killed member's session before it is assigned.
    url = f"kafka://{tansu.bootstrap}/{topic}?group={GROUP}&batch_size=100&session.timeout.ms=1000&heartbeat.interval.ms=250"
    db = tmp_path / "s.db"
    cmd = [sys.executable, "-m", "wia_security", "pull", url, "--to", f"sqlite:///{db}",
           "--dead-letter", str(tmp_path / "d.ndjson"), "--idle-timeout", "3", "--summary", "json"]
    rnd = random.Random(2407)
    kills, progress = 0, []
    for _ in range(10):
        before = len(stored_ids(db))
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while len(stored_ids(db)) == before and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)                         # wait for this run's first stored batch
        time.sleep(rnd.uniform(0.0, 0.03))
        killed = proc.poll() is None
        if killed:
            proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        stored = stored_ids(db)
        kills += killed and len(stored) < N_EVENTS           # killed with work left
        for partition, offset in _committed(tansu.bootstrap, topic).items():
            missing = [where[(partition, o)] for o in range(max(offset, 0)) if where[(partition, o)] not in stored]
            assert not missing, f"partition {partition} committed to {offset} ahead of the store: {missing[:3]}"
        progress.append(len(stored))
    assert kills >= 8, progress
    assert progress == sorted(progress)
    done = subprocess.run(cmd, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert stored_ids(db) == {e["id"] for e in events}
    assert sqlite3.connect(db).execute("SELECT count(*) FROM events").fetchone()[0] == N_EVENTS
    assert _committed(tansu.bootstrap, topic) == {p: sum(1 for (q, _) in where if q == p) for p in range(PARTITIONS)}
    assert not (tmp_path / "d.ndjson").exists()

"""The gateway -> a Kafka destination (`serve --to kafka://...`, tansu) -> a consumer keeping the last message of
each key (what a compacted topic keeps, key = event id). The gateway's store keeps the newest version of each id
and its stream publishes only what the store kept; its destinations are handed every accepted event, so an older
version (or a re-send) arriving after a newer one is produced after it, and a compacted topic (or any reader taking
the latest message per id) ends with the older state: a closed incident open again."""
from __future__ import annotations

import json
import time

import pytest
import requests
from e2e_helpers import AUTH, TOKEN, expected, newer
from strategies import event_dicts

pytest.importorskip("confluent_kafka", reason="the kafka extra is not installed")
pytest.importorskip("starlette", reason="the server extra is not installed")

from confluent_kafka import Consumer  # noqa: E402
from servers.tansu import tansu  # noqa: E402,F401  (fixture)

from wia_security.connectors.gateway import GatewaySettings  # noqa: E402
from wia_security.connectors.gateway.server import GatewayServer  # noqa: E402


def last_per_key(bootstrap: str, topic: str, count: int) -> dict[str, dict]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"e2e-{topic}", "auto.offset.reset": "earliest",
                         "session.timeout.ms": 6000})
    consumer.subscribe([topic])
    seen: list = []
    deadline = time.monotonic() + 30
    try:
        while len(seen) < count and time.monotonic() < deadline:
            seen += [m for m in consumer.consume(100, 1.0) if m.error() is None]
    finally:
        consumer.close()
    return {m.key().decode(): json.loads(m.value()) for m in seen}


def test_an_older_version_after_a_newer_one_is_not_the_last_message_of_its_key(tansu, tmp_path):  # noqa: F811
    topic = tansu.create_topic(partitions=1)
    gw = GatewayServer(GatewaySettings(tokens=[TOKEN], store=f"sqlite:///{tmp_path}/gateway.db",
                                       dead_letter=str(tmp_path / "dead.ndjson"), taxii=False,
                                       extra_sinks=[f"kafka://{tansu.bootstrap}/{topic}"])).start()
    first = event_dicts(1, seed=1490, event_type="incident")[0]
    second = newer(first, 30, severity=(first["severity"] + 1) % 11)
    try:
        for event in (first, second, first):                 # a late, older copy (a forwarder's retry)
            assert requests.post(gw.url + "/v1/events", json=event, headers=AUTH).status_code == 200
    finally:
        gw.stop()
    assert last_per_key(tansu.bootstrap, topic, 2)[first["id"]] == expected(second)

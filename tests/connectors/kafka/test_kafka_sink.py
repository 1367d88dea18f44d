"""KafkaSink against a real Kafka-protocol broker (tansu): keyed by event id, delivery reports, faults."""
from __future__ import annotations

import json

import pytest

from confluent_kafka import Consumer
from servers.tansu import start_tansu
from strategies import event_dicts

from wia_security.connectors import open_sink
from wia_security.connectors.dead_letter import DeadLetterFile
from wia_security.connectors.kafka import KafkaSink, parse_url
from wia_security.errors import ConfigError


def consume_all(bootstrap: str, topic: str, expected: int, timeout: float = 30) -> list:
    import time
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"check-{topic}",
                         "auto.offset.reset": "earliest", "session.timeout.ms": 6000})
    consumer.subscribe([topic])
    messages, deadline = [], time.monotonic() + timeout
    try:
        while len(messages) < expected and time.monotonic() < deadline:
            messages += [m for m in consumer.consume(500, 1.0) if m.error() is None]
    finally:
        consumer.close()
    return messages


def test_sink_delivers_every_event_keyed_by_id(tansu):
    topic = tansu.create_topic(partitions=3)
    events = event_dicts(300, seed=1)
    with open_sink(f"kafka://{tansu.bootstrap}/{topic}") as sink:
        report = sink.send(events)
    assert (report.delivered, report.failed) == (300, [])
    messages = consume_all(tansu.bootstrap, topic, 300)
    assert len(messages) == 300
    by_id = {e["id"]: e for e in events}
    for m in messages:
        event = json.loads(m.value())
        assert m.key().decode() == event["id"]
        assert event == by_id[event["id"]]
        assert dict(m.headers())["wia-type"].decode() == event["type"]
    # Same key -> same partition: Kafka orders all versions of one event.
    assert len({m.partition() for m in messages}) > 1


def test_oversized_event_is_failed_with_reason_not_dropped(tansu):
    topic = tansu.create_topic()
    small, big = event_dicts(2, seed=2)
    big.setdefault("meta", {})["raw"] = "x" * 50_000
    with KafkaSink(tansu.bootstrap, topic, config={"message.max.bytes": 20_000}) as sink:
        report = sink.send([small, big])
    assert report.delivered == 1
    [rejected] = report.failed
    assert rejected.event is big and "MSG_SIZE_TOO_LARGE" in rejected.reason and not rejected.retryable
    # the reason says how large the message was and what the limit is, so the fix is plain
    size = len(json.dumps(big, separators=(",", ":"), ensure_ascii=False).encode())
    assert f"message.max.bytes 20,000" in rejected.reason, rejected.reason
    assert "over" in rejected.reason and abs(int(rejected.reason.split(" bytes")[0].split()[-1].replace(",", "")) - size) < 200


@pytest.mark.parametrize("bad_id", ["missing", None, 42, ""])
def test_an_event_without_a_string_id_fails_alone_and_the_others_are_delivered(tansu, bad_id):
    # the id is the message key: a library caller's event without one used to raise KeyError out of send(),
    # with the batch's other messages already produced and their reports never collected
    topic = tansu.create_topic()
    events = event_dicts(5, seed=3)
    if bad_id == "missing":
        del events[2]["id"]
    else:
        events[2]["id"] = bad_id
    with KafkaSink(tansu.bootstrap, topic) as sink:
        report = sink.send(events)
    assert report.delivered == 4
    [rejected] = report.failed
    assert rejected.event is events[2] and "id" in rejected.reason and not rejected.retryable
    assert len(consume_all(tansu.bootstrap, topic, 4)) == 4


def test_broker_dies_mid_stream_every_event_delivered_or_dead_lettered(tmp_path):
    broker = start_tansu()
    try:
        topic = broker.create_topic(partitions=2)
        events = event_dicts(400, seed=3)
        delivered, failed = 0, []
        with KafkaSink(broker.bootstrap, topic, delivery_timeout_ms=3000) as sink, \
                DeadLetterFile(str(tmp_path / "dead.ndjson")) as dead:
            first = sink.send(events[:200])
            broker.kill()                                   # the broker goes away between batches
            second = sink.send(events[200:])
            for report in (first, second):
                delivered += report.delivered
                failed += report.failed
                for r in report.failed:
                    dead.put(r)
    finally:
        broker.kill()
    assert first.delivered == 200
    assert second.delivered == 0 and len(second.failed) == 200
    assert all(r.retryable and r.reason.startswith("kafka") for r in second.failed)
    lines = [json.loads(line) for line in (tmp_path / "dead.ndjson").read_text().splitlines()]
    # Counted: every one of the 400 is delivered or in the dead letter with its reason.
    assert delivered + len(lines) == 400
    assert {d["event"]["id"] for d in lines} == {e["id"] for e in events[200:]}
    assert all(d["reason"] for d in lines)


def test_url_parsing_reads_brokers_topic_and_keys_and_refuses_credentials_and_unknown_keys():
    target = parse_url("kafka+sasl_ssl://b1:9093,b2:9093/wia-events?sasl_mechanism=PLAIN&linger.ms=50&client_id=gw")
    assert target.topic == "wia-events"
    assert target.config["bootstrap.servers"] == "b1:9093,b2:9093"
    assert target.config["security.protocol"] == "SASL_SSL" and target.config["sasl.mechanism"] == "PLAIN"
    assert target.config["linger.ms"] == "50" and target.config["client.id"] == "gw"
    # Credentials in a URL end up in shell history and process lists; a misspelt key did nothing.
    with pytest.raises(ConfigError, match="not in the URL") as info:
        parse_url("kafka+sasl_ssl://svc:s3cr3t@b1:9093/wia-events")
    assert "s3cr3t" not in str(info.value)
    with pytest.raises(ConfigError, match="unknown Kafka URL option 'fromat'"):
        KafkaSink.from_url("kafka://127.0.0.1:1/wia-events?fromat=ocsf")
    with pytest.raises(ConfigError, match="unknown Kafka URL option 'group'"):
        KafkaSink.from_url("kafka://127.0.0.1:1/wia-events?group=g")          # a source's key, not a sink's


def test_delivery_timeout_from_the_url_is_used():
    # it was read, then silently dropped: the timeout stayed 30 s
    sink = KafkaSink.from_url("kafka://127.0.0.1:1/wia-events?delivery_timeout_ms=5000")
    try:
        assert sink.delivery_timeout == 5.0
    finally:
        sink._producer.purge()
    with pytest.raises(ConfigError, match="whole number of milliseconds"):
        KafkaSink.from_url("kafka://127.0.0.1:1/wia-events?delivery_timeout_ms=soon")


def test_config_file_options_take_secrets_by_reference(monkeypatch):
    from wia_security.connectors.config import parse_config
    monkeypatch.setenv("KAFKA_PW", "pw-from-env")
    config = parse_config({"destinations": {"bus": {
        "url": "kafka+sasl_ssl://b1:9093/wia-events", "username": "svc", "password_env": "KAFKA_PW",
        "sasl_mechanism": "PLAIN"}}})
    [dest] = config.destinations
    sink = dest.open()
    try:
        assert isinstance(sink, KafkaSink) and "pw-from-env" not in repr(sink)
    finally:
        sink._producer.purge()
    with pytest.raises(Exception, match="unknown Kafka option"):
        KafkaSink.from_url("kafka://127.0.0.1:1/t", colour="blue")


@pytest.mark.parametrize("given, seconds", [
    ({"config": {"delivery.timeout.ms": 120_000}}, 120.0),          # librdkafka's alias, the Java client's name
    ({"config": {"message.timeout.ms": 7_000}}, 7.0),
    ({"delivery_timeout_ms": 9_000, "config": {"delivery.timeout.ms": 4_000}}, 4.0),
    ({}, 30.0)])
def test_the_wait_for_delivery_reports_follows_the_timeout_librdkafka_uses(given, seconds):
    # send() waits for reports until the timeout librdkafka applies (+5 s). With delivery.timeout.ms=120000
    # it stopped at 35 s and reported still-queued messages failed, which librdkafka then delivered.
    with KafkaSink("127.0.0.1:1", "t", **given) as sink:          # nothing is sent: close() returns at once
        assert sink.delivery_timeout == seconds

"""KafkaSink against a tansu that is SIGKILLed and comes back on the same port without its state (memory storage).

Messages sent while the broker is away time out unacknowledged; the idempotent producer's next request after
them meets a broker that does not know its producer id, and librdkafka cannot tell whether retrying would
duplicate or reorder: a fatal error, after which the client refuses every message (librdkafka's
INTRODUCTION.md: create a new client). Kafka clusters that lost or expired a producer's state do the same
(fluent/fluent-bit#9495: "Local: Fatal error", the messages after it lost)."""
from __future__ import annotations

import json

from servers.tansu import start_tansu
from strategies import event_dicts
from test_kafka_sink import consume_all

from wia_security.connectors.kafka import KafkaSink


def test_after_a_broker_came_back_without_the_producers_state_every_event_is_delivered_or_failed():
    broker = start_tansu()
    try:
        topic = broker.create_topic(partitions=1)
        events = event_dicts(120, seed=45)
        # a short reconnect backoff: the broker is back a moment after the messages sent meanwhile timed out
        with KafkaSink(broker.bootstrap, topic, delivery_timeout_ms=4_000,
                       config={"reconnect.backoff.max.ms": 500}) as sink:
            first = sink.send(events[:30])
            broker.process.kill()                   # SIGKILL: the memory storage and the producer ids go with it
            broker.process.wait(10)
            away = sink.send(events[30:60])         # times out: dead-lettered, retryable
            broker = start_tansu(broker.port)
            broker.create_topic(partitions=1, name=topic)
            # send() raised librdkafka's fatal UNKNOWN_PRODUCER_ID out of its wait for delivery reports, with the
            # batch unaccounted; every later send() failed each event with "Local: Fatal error", not retryable
            back = sink.send(events[60:90])
            later = sink.send(events[90:])
        assert (first.delivered, first.failed) == (30, [])
        assert away.delivered == 0 and len(away.failed) == 30 and all(r.retryable for r in away.failed)
        for report in (back, later):
            assert (report.delivered, [r.reason for r in report.failed]) == (30, [])
        stored = {json.loads(m.value())["id"] for m in consume_all(broker.bootstrap, topic, 60)}
        assert stored == {e["id"] for e in events[60:]}
    finally:
        broker.kill()

"""A Kafka fetch ends within its time budget (KAFKA_FETCH_SECONDS) on a topic that never goes quiet.

The fetch polled until max_fetch messages or two idle seconds: a topic written to more often than once a second
(but slower than max_fetch per fetch) kept it polling for max_fetch seconds or more. XSOAR stops a command after
its timeout (3 minutes by default, '<integration>.<command>.timeout') and saves no last run then: every fetch
read the same messages again and was stopped again, no incident ever, while the topic kept trickling.
Run through main() against tansu; the budget is scaled down to 3 s."""
from __future__ import annotations

import json
import threading
import time

import pytest

from wia_security import AlertBuilder

from .conftest import run_command

pytestmark = pytest.mark.filterwarnings("ignore:read_text is deprecated:DeprecationWarning",
                                        "ignore:open_text is deprecated:DeprecationWarning")

#: How long the producer trickles at most: the fetch must end well before it stops.
TRICKLE_SECONDS = 60


def test_a_kafka_fetch_on_a_trickling_topic_ends_within_its_budget(integration, demisto, monkeypatch):
    from confluent_kafka import Producer
    from servers.tansu import start_tansu
    broker = start_tansu()
    stop, sent = threading.Event(), []

    def trickle(topic: str) -> None:
        producer = Producer({"bootstrap.servers": broker.bootstrap})
        end = time.monotonic() + TRICKLE_SECONDS
        while not stop.is_set() and time.monotonic() < end:
            event = AlertBuilder().title(f"trickle {len(sent)}").severity(5).build().to_dict()
            producer.produce(topic, value=json.dumps(event).encode(), partition=0)
            producer.flush(10)
            sent.append(event["id"])
            stop.wait(0.3)

    try:
        topic = broker.create_topic(partitions=1)
        writer = threading.Thread(target=trickle, args=(topic,), daemon=True)
        writer.start()
        monkeypatch.setattr(integration, "KAFKA_FETCH_SECONDS", 3)
        params = {"url": f"kafka://{broker.bootstrap}/{topic}", "source_type": "kafka", "max_fetch": "1000"}
        got, state = [], {}
        for _ in range(2):
            run_command(integration, demisto, "fetch-incidents", params=params, last_run=state)
            assert not [r for r in demisto.results_log if r.get("Type") == 4], demisto.results_log
            assert writer.is_alive(), "the fetch polled until the topic went quiet"
            got += [json.loads(i["rawJSON"])["id"] for i in demisto.incidents_out[-1]]
            state = demisto.last_run
        stop.set()
        writer.join(30)
    finally:
        stop.set()
        broker.kill()
    assert got and got == sent[:len(got)]          # in order, none twice, none skipped

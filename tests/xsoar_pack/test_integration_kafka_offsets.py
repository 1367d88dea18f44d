"""A Kafka last run whose offset the broker no longer holds reads the partition from its first offset, and says so.

The consumer took kafka-python's default auto_offset_reset, "latest": after a topic was deleted and created again
(its offsets start over at 0), the last run's offset lay past the partition's end, kafka-python jumped to the end,
nothing was read and the offset stayed where it was: every message of the new topic was skipped until the partition
grew past the old offset, with no line in the log. Run through main() against tansu (which deletes and creates
topics; it has no DeleteRecords, so the retention case, an offset before the partition's first, is not run here)."""
from __future__ import annotations

import json

import pytest

from .conftest import run_command

pytestmark = pytest.mark.filterwarnings("ignore:read_text is deprecated:DeprecationWarning",
                                        "ignore:open_text is deprecated:DeprecationWarning")


def _publish(broker, topic: str, events: list[dict]) -> None:
    from wia_security.connectors import open_sink
    with open_sink(f"kafka://{broker.bootstrap}/{topic}") as sink:
        sink.send(events)
        sink.flush()


def _recreate(broker, topic: str) -> None:
    from confluent_kafka.admin import AdminClient
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})    # kept alive until the result
    admin.delete_topics([topic])[topic].result(15)
    broker.create_topic(partitions=1, name=topic)


def _fetch(integration, demisto, params: dict, state: dict) -> tuple[list[str], dict]:
    run_command(integration, demisto, "fetch-incidents", params=params, last_run=state)
    assert not [r for r in demisto.results_log if isinstance(r, dict) and r.get("Type") == 4], demisto.results_log
    return [json.loads(i["rawJSON"])["id"] for i in demisto.incidents_out[-1]], demisto.last_run


def test_a_recreated_topic_is_read_from_its_beginning(integration, demisto, sample_events):
    from servers.tansu import start_tansu
    broker = start_tansu()
    try:
        topic = broker.create_topic(partitions=1)
        params = {"url": f"kafka://{broker.bootstrap}/{topic}", "source_type": "kafka", "max_fetch": "50",
                  "first_fetch": ""}
        _publish(broker, topic, sample_events[:4])
        first, state = _fetch(integration, demisto, params, {})
        assert first == [e["id"] for e in sample_events[:4]] and state["offsets"] == {"0": 4}
        _recreate(broker, topic)
        _publish(broker, topic, sample_events[4:6])             # the new topic's offsets 0 and 1: before the stored 4
        second, state = _fetch(integration, demisto, params, state)
        said = [m for level, m in demisto.logs if level == "info" and "past the partition's end" in m]
        third, last = _fetch(integration, demisto, params, state)
        said_again = [m for _, m in demisto.logs if "past the partition's end" in m]
    finally:
        broker.kill()
    assert second == [e["id"] for e in sample_events[4:6]]
    assert state["offsets"] == {"0": 2}
    # the end tansu lists here is 1 (one past its last record batch's first offset), a broker's 2
    assert len(said) == 1 and f"{topic}/0: the last run's offset 4 is past the partition's end" in said[0], said
    assert "reading it from its first offset 0" in said[0]
    # read once: the next fetch resumes at 2 (tansu's end of 1 is not taken for a recreated topic: the message at 1 is there)
    assert third == [] and last["offsets"] == {"0": 2} and said_again == []

"""A Kafka input whose checkpointed offset the broker no longer holds reads the partition from its first offset, and
says so in splunkd.log.

The consumer took kafka-python's default auto_offset_reset, "latest": after the topic was deleted and created again
(its offsets start over at 0), the checkpoint's offset lay past the partition's end, nothing was read and the offset
stayed: every message of the new topic was skipped until the partition grew past the old offset, with no line in
splunkd.log; an offset that retention had passed (the input disabled longer than the topic keeps messages) jumped to
the end and skipped all the partition still held. Run as Splunk runs the input (the built app, tansu). tansu has no
DeleteRecords, so the retention case, an offset before the partition's first, is not run here."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from wia_security import AlertBuilder

from .test_modular_input import input_xml, run_input, splunkd, streamed  # noqa: F401 - splunkd is a fixture

pytestmark = pytest.mark.filterwarnings("ignore:read_text is deprecated:DeprecationWarning",
                                        "ignore:open_text is deprecated:DeprecationWarning")

PAST_THE_END = "is past the partition's end"


def _publish(broker, topic: str, events: list[dict]) -> None:
    from wia_security.connectors import open_sink
    with open_sink(f"kafka://{broker.bootstrap}/{topic}") as sink:
        assert sink.send(events).merge(sink.flush()).delivered == len(events)


def _recreate(broker, topic: str) -> None:
    from confluent_kafka.admin import AdminClient
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})    # kept alive until the result
    admin.delete_topics([topic])[topic].result(15)
    broker.create_topic(partitions=1, name=topic)


def _offsets(checkpoint_dir) -> dict:
    [path] = checkpoint_dir.glob("wia_events_*.json")
    return json.loads(path.read_text())["position"]["offsets"]


def test_a_recreated_topic_is_read_from_its_beginning(built_app, splunkd, tmp_path):  # noqa: F811
    from servers.tansu import start_tansu
    app, _ = built_app
    events = [AlertBuilder().title(f"alert {n}").severity(n).build().to_dict() for n in range(6)]
    checkpoints = tmp_path / "checkpoints"
    checkpoints.mkdir()
    broker = start_tansu()
    try:
        topic = broker.create_topic(partitions=1)
        conf = input_xml(splunkd, checkpoints, "kafka", {"source_url": f"kafka://{broker.bootstrap}/{topic}"})
        _publish(broker, topic, events[:4])
        first = run_input(app, [], conf)
        assert first.returncode == 0, first.stderr
        assert _offsets(checkpoints) == {"0": 4}
        _recreate(broker, topic)
        _publish(broker, topic, events[4:])             # the new topic's offsets 0 and 1: before the stored 4
        second = run_input(app, [], conf)
        after_second = _offsets(checkpoints)
        third = run_input(app, [], conf)
        after_third = _offsets(checkpoints)
    finally:
        broker.kill()
    assert [e["event"]["id"] for e in streamed(first.stdout)] == [e["id"] for e in events[:4]]
    assert second.returncode == 0, second.stderr
    assert [e["event"]["id"] for e in streamed(second.stdout)] == [e["id"] for e in events[4:]]
    assert after_second == {"0": 2}
    said = [line for line in second.stderr.splitlines() if PAST_THE_END in line]
    assert len(said) == 1 and said[0].startswith("WARNING wia_events input=wia_events://kafka: "), second.stderr
    assert f"{topic}/0: the checkpoint's offset 4 {PAST_THE_END}" in said[0] and "from its first offset 0" in said[0]
    # read once: the next run resumes at 2 (tansu lists the end as 1, one past its last record batch's first offset,
    # and the message at 1 is there: not a recreated topic) and says nothing
    assert third.returncode == 0, third.stderr
    assert streamed(third.stdout) == [] and after_third == {"0": 2} and PAST_THE_END not in third.stderr


RETENTION_PROBE = """import json, sys
sys.path[:0] = [sys.argv[1], sys.argv[1] + "/lib"]
from kafka import TopicPartition
from wia_app.pull import KafkaSource

class Listed:
    '''The first and end offsets a broker lists (ListOffsets), as kafka-python's consumer returns them.'''
    def __init__(self, starts, ends):
        self.starts, self.ends = starts, ends
    def beginning_offsets(self, partitions):
        return {tp: self.starts[tp.partition] for tp in partitions}
    def end_offsets(self, partitions):
        return {tp: self.ends[tp.partition] for tp in partitions}

source = KafkaSource("kafka://b1:9092/wia")
partitions = [TopicPartition("wia", 0), TopicPartition("wia", 1)]
moved = source._offsets_in_range(Listed({0: 10, 1: 0}, {0: 20, 1: 7}), partitions, {"0": 4, "1": 7})
print(json.dumps([moved, source.errors, source.offset_warnings]))
"""


def test_an_offset_retention_passed_moves_to_the_first_offset_with_an_error_line(built_app):
    """tansu has no DeleteRecords: the decision alone, on the offsets a broker lists (partition 0 kept from 10 on, its
    checkpointed 4 gone; partition 1 read to its end, 7, which is in range)."""
    app, _ = built_app
    run = subprocess.run([sys.executable, "-I", "-S", "-c", RETENTION_PROBE, str(app / "bin")], capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    moved, errors, warnings = json.loads(run.stdout)
    assert moved == {"0": 10} and warnings == []
    assert errors == ["Kafka wia/0: messages 4 to 9 were deleted by the broker (retention) before the input read them; "
                      "reading from the oldest left, offset 10. Run the input more often (interval), raise max_events, "
                      "or raise the topic's retention"]

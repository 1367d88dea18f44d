"""KafkaSource against tansu: a source whose run() raised (the destination down) can run again and still
delivers the batch that failed; a batch read and never committed is read again, not skipped."""
from __future__ import annotations

import pytest
from strategies import event_dicts
from test_kafka_source import ListSink, committed, produce

from wia_security.connectors.dead_letter import DeadLetterFile
from wia_security.connectors.kafka import KafkaSource


class FlakySink(ListSink):
    """Refuses the first `failures` sends with a connection error, as a destination that is down for a while."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    def send(self, events):
        if self.failures:
            self.failures -= 1
            raise ConnectionError("destination down")
        return super().send(events)


@pytest.mark.parametrize("failing_batch", [1, 2])
def test_run_again_after_a_failed_batch_delivers_it_before_committing_past_it(tansu, tmp_path, failing_batch):
    topic = tansu.create_topic(partitions=2)
    events = event_dicts(60, seed=41)
    produce(tansu.bootstrap, topic, events)
    sink = FlakySink(failures=0)
    dead = DeadLetterFile(str(tmp_path / "dead.ndjson"))
    with KafkaSource(tansu.bootstrap, [topic], f"g-reuse-{failing_batch}", batch_size=10) as source, dead:
        seen = []
        if failing_batch > 1:       # a batch delivered and committed first
            def stop_after_first(batch):
                seen.append(batch)
                raise KeyboardInterrupt
            with pytest.raises(KeyboardInterrupt):
                source.run(sink, dead, idle_timeout=3, after_batch=stop_after_first)
        sink.failures = 1
        with pytest.raises(ConnectionError):
            source.run(sink, dead, idle_timeout=3)          # the destination is down: this batch is not delivered
        summary = source.run(sink, dead, idle_timeout=3)    # the caller retries on the same source
    assert summary.delivered >= 60 - 10 * (failing_batch - 1)
    assert {e["id"] for e in sink.events} == {e["id"] for e in events}      # nothing skipped
    commits, _ = committed(tansu.bootstrap, topic, f"g-reuse-{failing_batch}", 2)
    assert sum(commits.values()) == 60          # committed to the end of both partitions, after all 60


def test_a_batch_given_back_by_rewind_is_read_again(tansu):
    topic = tansu.create_topic(partitions=1)
    events = event_dicts(15, seed=42)
    produce(tansu.bootstrap, topic, events)
    with KafkaSource(tansu.bootstrap, [topic], "g-rewind", batch_size=10) as source:
        batches = source.batches(idle_timeout=3)
        first = next(batches)
        assert [i.where for i in first.items][:1] == [f"kafka:{topic}[0]:0"]
        source.rewind(first)
        again = next(batches)
        assert [i.where for i in again.items] == [i.where for i in first.items]

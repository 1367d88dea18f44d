"""Stored Kafka offsets a broker no longer holds, found before reading (the Splunk app's input and the XSOAR pack's
fetch share it; each words what it tells its product's log)."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

#: Seconds holds_from waits for a message at most.
PROBE_SECONDS = 3.0


@dataclass(frozen=True)
class OffsetMove:
    """A stored offset outside [start, end] of its partition, to be read from `start` instead. `recreated`: past the
    end, so the topic was deleted and created again (or emptied) and what it holds now is new; otherwise before the
    first offset, so the broker deleted messages `stored`..`start - 1` (retention) before they were read."""

    topic: str
    partition: str
    stored: int
    start: int
    end: int

    @property
    def recreated(self) -> bool:
        return self.stored > self.end


def offsets_out_of_range(consumer: Any, partitions: list[Any], offsets: dict[str, int]) -> list[OffsetMove]:
    """The `offsets` (partition number as text -> stored offset) of `partitions` (kafka-python TopicPartitions) that
    the broker does not hold. kafka-python's own reset ("latest") skipped a recreated topic's messages until the
    partition grew past the old offset (and a broker that answers a fetch there with nothing, as tansu does, never
    resets at all). What listing the offsets raises (a KafkaError) is the caller's: it leaves them to kafka-python's
    reset. `consumer` must have `partitions` assigned (holds_from reads one message)."""
    if not partitions:
        return []
    starts, ends = consumer.beginning_offsets(partitions), consumer.end_offsets(partitions)
    moves = []
    for tp in partitions:
        stored, start, end = offsets[str(tp.partition)], starts.get(tp), ends.get(tp)
        if start is None or end is None or start <= stored <= end:
            continue
        # tansu lists as the end one past the first offset of the last record batch: a batch of several messages read
        # to its end looks past it. The message before the offset, still there, tells that it is not.
        if stored > end and holds_from(consumer, tp, stored - 1, partitions):
            continue
        moves.append(OffsetMove(tp.topic, str(tp.partition), stored, start, end))
    return moves


def holds_from(consumer: Any, tp: Any, offset: int, assigned: list[Any]) -> bool:
    """Whether partition `tp` holds a message at `offset` or later (compaction may have removed that one): one read
    from there with the other partitions paused. A broker that finds the offset out of range makes kafka-python go
    back to the partition's first offset ("earliest"), and a message below `offset` tells that at once."""
    others = [p for p in assigned if p != tp]
    if others:
        consumer.pause(*others)
    try:
        consumer.seek(tp, offset)
        deadline = time.monotonic() + PROBE_SECONDS
        while time.monotonic() < deadline:
            records = consumer.poll(timeout_ms=1000, max_records=1).get(tp) or []
            if records:
                return records[0].offset >= offset
        return False
    finally:
        if others:
            consumer.resume(*others)

"""SQS: each message is one record (its body: WIA events, or an SNS/EventBridge/S3 notification);
failed messages are reported back with a partial batch response (`ReportBatchItemFailures`).

A message reported back on its last receive (its `ApproximateReceiveCount` has reached the redrive
policy's `maxReceiveCount`, `WIA_SQS_MAX_RECEIVE_COUNT`) would be moved to the redrive queue by SQS
with no reason attached: `settle` dead-letters it instead (the events that failed, each with the
destination's reason, or the whole body when it could not be read to its end) and no longer reports
it, unless the dead letter itself fails. Before the last receive, a failing message's rejections (an
invalid line beside an event the destination must retry) are held back (`hold_back`): the redelivery
rejects them again, so they are dead-lettered once, when the message settles.

A message from the Kinesis failure queue (`WIA_KINESIS_FAILURE_QUEUE`, the stream's on-failure
destination) that is a Kinesis failure record carries the batch it names, read back from the stream
(stream_recovery.py), one relay record per Kinesis record (`<message id>#<sequence>`: reported back
as the message); when such a message has records to retry after some it settled, `settle` has the rest
read from a new message with a resume point instead of reporting it back. Any other message there (an
S3 or EventBridge event moved from the asynchronous failure queue) is read as on the ingest queue."""
from __future__ import annotations

from typing import Any, Callable, Iterator

from wia_security.connectors.relay import RecordOutcome, RelayResult, SourceRecord
from wia_security.errors import ParseError
from wia_security.reader import Item

from .. import stream_recovery
from ..payloads import body_items
from ..settings import ENV_SQS_MAX_RECEIVE_COUNT


def records(event: dict[str, Any], runtime: Any) -> Iterator[SourceRecord]:
    stream_recovery.begin()
    limit = runtime.settings.max_receive_count
    counts = _receive_counts(event)
    for message in event["Records"]:
        message_id = message["messageId"]
        body = message.get("body")
        if not isinstance(body, str) or not body.strip():
            # SQS never sends one, but a hand-made invocation can: on record, not silently skipped.
            problem = ParseError("the SQS message has no body", source=f"sqs:{message_id}")
            yield SourceRecord(message_id, [Item(f"sqs:{message_id}", 0, error=problem)])
            continue
        # SQS bodies are XML-legal Unicode, but a hand-made invocation can carry a lone surrogate: pass it
        # through as bytes the reader reports as not UTF-8 (one record dead-lettered, not a failed batch).
        if _from_failure_queue(message, runtime):
            document = stream_recovery.failure_record(body)
            if document is not None:
                last = limit is not None and counts.get(message_id, 0) >= limit
                yield from stream_recovery.recovered_records(body, document, message_id, runtime, last)
                continue
        data = body.encode("utf-8", "surrogatepass")
        yield SourceRecord(message_id, body_items(data, f"sqs:{message_id}", runtime.open_object))


def _from_failure_queue(message: dict[str, Any], runtime: Any) -> bool:
    queue = runtime.settings.kinesis_failure_queue
    return bool(queue) and message.get("eventSourceARN") == queue


def _receive_counts(event: dict[str, Any]) -> dict[str, int]:
    counts = {}
    for message in event["Records"]:
        count = str((message.get("attributes") or {}).get("ApproximateReceiveCount", ""))
        if count.isdigit():
            counts[message["messageId"]] = int(count)
    return counts


def hold_back(event: dict[str, Any], runtime: Any) -> Callable[[str], bool] | None:
    """Message ids SQS delivers again if reported back: those before their last receive (known only
    with `WIA_SQS_MAX_RECEIVE_COUNT`; without it nothing is held back, so no reason is ever lost)."""
    limit = runtime.settings.max_receive_count
    if limit is None:
        return None
    counts = _receive_counts(event)
    ids = _message_ids(event)
    return lambda record_id: counts.get(_message_of(record_id, ids), limit) < limit


def _message_ids(event: dict[str, Any]) -> set[str]:
    return {m["messageId"] for m in event["Records"]}


def _message_of(record_id: str, ids: set[str]) -> str:
    """The message a relay record id belongs to: itself, or the failure record whose Part it is."""
    return record_id if record_id in ids else stream_recovery.message_of(record_id)


def settle(event: dict[str, Any], result: RelayResult, runtime: Any) -> int:
    """Have failure records that settled part of their batch read on from a new message (stream_recovery),
    and dead-letter the failing messages on their last receive; returns how many were given up."""
    ids = _message_ids(event)
    by_message: dict[str, list[RecordOutcome]] = {}
    for outcome in result.records:
        by_message.setdefault(_message_of(outcome.id, ids), []).append(outcome)
    readings = {}
    for message_id, outcomes in by_message.items():
        reading = stream_recovery.reading_of(message_id)
        if reading is not None:
            readings[message_id] = reading
            stream_recovery.resume_later(reading, outcomes, runtime)
    limit = runtime.settings.max_receive_count
    if limit is None or not result.retry:
        return 0
    last = {i for i, c in _receive_counts(event).items() if c >= limit}
    bodies = {m["messageId"]: m.get("body") for m in event["Records"]}
    given_up = RelayResult()
    parts: dict[str, list[RecordOutcome]] = {}       # a failure record given up whole: its Parts
    for message_id, outcomes in by_message.items():
        failing = [o for o in outcomes if o.retry]
        if message_id not in last or not failing:
            continue
        reading = readings.get(message_id)
        if reading is None or not any(o.whole for o in failing):
            given_up.records.extend(failing)        # each event still refused, named by its own record and line
            continue
        # the batch not read to its end (or unknown what was settled): one dead letter naming it, the
        # failure record from the point its settled Parts reach as `raw`
        point = reading.settled_to({o.id: o for o in outcomes})
        if point is not None:
            bodies[message_id] = reading.resumed_body(point)
        whole = RecordOutcome(message_id, retry=True, whole=True,
                              errors=[e for o in failing for e in o.errors])
        given_up.records.append(whole)
        parts[message_id] = failing
    if not given_up.records:
        return 0
    # a failure record is named by its batch, not by the SQS message carrying it (a redriven copy is a
    # new message): a repeat gets the same dead_letter_id
    names = {m["messageId"]: stream_recovery.where_of(m.get("body"), f"sqs:{m['messageId']}")
             if _from_failure_queue(m, runtime) else f"sqs:{m['messageId']}" for m in event["Records"]}
    done = runtime.relay.give_up(
        given_up, f"gave up on the last receive (ApproximateReceiveCount reached {ENV_SQS_MAX_RECEIVE_COUNT}={limit}, "
                  "the redrive policy's maxReceiveCount)",
        lambda record_id: (bodies.get(record_id) or "").encode("utf-8", "surrogatepass"),
        lambda record_id: names.get(_message_of(record_id, ids), f"sqs:{record_id}"))
    for whole in given_up.records:
        if not whole.retry and whole.id in parts:   # its dead letter stored: so are its Parts
            for outcome in parts[whole.id]:
                outcome.retry = False
                outcome.errors.extend(whole.errors[-1:])
    return done


def respond(event: dict[str, Any], result: RelayResult) -> dict[str, Any]:
    # a failure record's Parts are reported back as its message, once
    ids = _message_ids(event)
    retry = dict.fromkeys(_message_of(record_id, ids) for record_id in result.retry)
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in retry]}

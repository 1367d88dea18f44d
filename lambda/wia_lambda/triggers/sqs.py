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
(stream_recovery.py); any other message there (an S3 or EventBridge event moved from the asynchronous
failure queue) is read as on the ingest queue."""
from __future__ import annotations

from typing import Any, Callable, Iterator

from wia_security.connectors.relay import RelayResult, SourceRecord
from wia_security.errors import ParseError
from wia_security.reader import Item

from .. import stream_recovery
from ..payloads import body_items
from ..settings import ENV_SQS_MAX_RECEIVE_COUNT


def records(event: dict[str, Any], runtime: Any) -> Iterator[SourceRecord]:
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
                yield SourceRecord(message_id, stream_recovery.recovered_items(body, document, message_id, runtime))
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
    return lambda message_id: counts.get(message_id, limit) < limit


def settle(event: dict[str, Any], result: RelayResult, runtime: Any) -> int:
    """Dead-letter the failing messages on their last receive; returns how many were given up."""
    limit = runtime.settings.max_receive_count
    if limit is None or not result.retry:
        return 0
    last = {i for i, c in _receive_counts(event).items() if c >= limit}
    given_up = RelayResult(records=[r for r in result.records if r.retry and r.id in last])
    if not given_up.records:
        return 0
    bodies = {m["messageId"]: m.get("body") for m in event["Records"]}
    # a failure record is named by its batch, not by the SQS message carrying it (a redriven copy is a
    # new message): a repeat gets the same dead_letter_id
    names = {m["messageId"]: stream_recovery.where_of(m.get("body"), f"sqs:{m['messageId']}")
             if _from_failure_queue(m, runtime) else f"sqs:{m['messageId']}" for m in event["Records"]}
    return runtime.relay.give_up(
        given_up, f"gave up on the last receive (ApproximateReceiveCount reached {ENV_SQS_MAX_RECEIVE_COUNT}={limit}, "
                  "the redrive policy's maxReceiveCount)",
        lambda message_id: (bodies.get(message_id) or "").encode("utf-8", "surrogatepass"),
        lambda message_id: names.get(message_id, f"sqs:{message_id}"))


def respond(event: dict[str, Any], result: RelayResult) -> dict[str, Any]:
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in result.retry]}

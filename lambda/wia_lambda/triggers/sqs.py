"""SQS: each message is one record (its body: WIA events, or an SNS/EventBridge/S3 notification);
failed messages are reported back with a partial batch response (`ReportBatchItemFailures`)."""
from __future__ import annotations

from typing import Any, Iterator

from wia_security.connectors.relay import RelayResult, SourceRecord
from wia_security.errors import ParseError
from wia_security.reader import Item

from ..payloads import body_items


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
        data = body.encode("utf-8", "surrogatepass")
        yield SourceRecord(message_id, body_items(data, f"sqs:{message_id}", runtime.open_object))


def respond(event: dict[str, Any], result: RelayResult) -> dict[str, Any]:
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in result.retry]}

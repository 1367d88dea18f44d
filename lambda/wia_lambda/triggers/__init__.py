"""Triggers, one module each, picked by the event's shape (elastic-serverless-forwarder style).

A trigger module has `records(event, runtime) -> Iterator[SourceRecord]` and
`respond(event, result) -> response` (which may raise `RetryInvocation`). Modules are imported on
first use.
"""
from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

#: trigger name -> module (relative to this package)
TRIGGERS = {
    "sqs": "sqs",
    "kinesis": "kinesis",
    "s3": "s3",
    "eventbridge": "eventbridge",
    "http": "http",
}


class RetryInvocation(Exception):
    """Raised by an asynchronous trigger when records must be retried: Lambda retries the invocation
    (then hands the event to the on-failure destination / DLQ). Everything else was settled."""


#: Lambda's dead-letter queue keeps the error message as the message attribute `ErrorMessage`,
#: truncated to 1 KB: the reasons are cut to fit, so the event lands there with why it failed.
ERROR_MESSAGE_BYTES = 1024


def retry_invocation(result: Any) -> RetryInvocation:
    """A RetryInvocation naming each record to retry with its first reason (secrets scrubbed), at most
    `ERROR_MESSAGE_BYTES` long: after the last retry it is the failure queue's `ErrorMessage`."""
    from ..logs import scrub
    parts = []
    for outcome in result.records:
        if outcome.retry:
            reasons = [e["reason"] for e in outcome.errors if e.get("retry") or "dead_lettered" not in e]
            parts.append(f"{outcome.id}: {reasons[0] if reasons else 'must be retried'}")
    text = scrub(f"{len(parts)} record(s) to retry: " + "; ".join(parts))
    if len(text.encode()) > ERROR_MESSAGE_BYTES:
        text = text.encode()[:ERROR_MESSAGE_BYTES - 3].decode("utf-8", "ignore") + "..."
    return RetryInvocation(text)


def detect(event: Any) -> str:
    """The trigger an event came from, by its documented shape."""
    if isinstance(event, dict):
        records = event.get("Records")
        if isinstance(records, list) and records and isinstance(records[0], dict):
            source = records[0].get("eventSource") or records[0].get("EventSource")
            if source == "aws:sqs":
                return "sqs"
            if source == "aws:kinesis":
                return "kinesis"
            if source == "aws:s3":
                return "s3"
        if "detail-type" in event and "detail" in event and "source" in event:
            return "eventbridge"
        context = event.get("requestContext")
        if isinstance(context, dict) and ("http" in context or "httpMethod" in event):
            return "http"
    raise ValueError("unrecognised event: expected an SQS, Kinesis, S3, EventBridge or HTTP (Function URL / "
                     "API Gateway) invocation")


def load(name: str) -> ModuleType:
    return importlib.import_module(f"{__name__}.{TRIGGERS[name]}")

"""S3 event notifications invoking the function directly (asynchronous): each object is one record,
streamed. Retries are Lambda's asynchronous retries: `RetryInvocation` after everything else is settled."""
from __future__ import annotations

import json
from typing import Any, Iterator

from wia_security.connectors.relay import RelayResult, SourceRecord
from wia_security.errors import ParseError
from wia_security.reader import Item

from ..payloads import s3_objects_of
from . import RetryInvocation


def records(event: dict[str, Any], runtime: Any) -> Iterator[SourceRecord]:
    try:
        objects = s3_objects_of(event) or []
    except ParseError as exc:               # a malformed notification: dead-lettered, never retried
        yield SourceRecord("s3-notification", [Item("s3-notification", 0, error=exc,
                                                     raw=json.dumps(event, default=str).encode()[:4096])])
        return
    for bucket, key in objects:
        yield SourceRecord(f"s3://{bucket}/{key}", runtime.open_object(bucket, key))


def respond(event: dict[str, Any], result: RelayResult) -> dict[str, Any]:
    if result.retry:
        raise RetryInvocation(f"{len(result.retry)} object(s) to retry: {', '.join(result.retry[:5])}")
    return result.summary()

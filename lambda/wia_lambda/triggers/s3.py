"""S3 event notifications invoking the function directly (asynchronous): each object is one record,
streamed. Retries are Lambda's asynchronous retries: `RetryInvocation` after everything else is settled."""
from __future__ import annotations

import json
from typing import Any, Iterator

from wia_security.connectors.relay import RelayResult, SourceRecord
from wia_security.errors import ParseError
from wia_security.reader import Item

from ..payloads import s3_objects_of, s3_record_of, s3_record_path
from . import retry_invocation


def records(event: dict[str, Any], runtime: Any) -> Iterator[SourceRecord]:
    for found in s3_objects_of(event) or []:
        if isinstance(found, ParseError):   # a malformed record: it alone is dead-lettered, never retried
            source = f"s3-notification{s3_record_path(found)}"
            raw = json.dumps(s3_record_of(event, found), default=str).encode()[:4096]
            yield SourceRecord(source, [Item(source, 0, error=ParseError(found.reason, source=source, path=found.path),
                                             raw=raw)])
        else:
            bucket, key = found
            yield SourceRecord(f"s3://{bucket}/{key}", runtime.open_object(bucket, key))


def respond(event: dict[str, Any], result: RelayResult) -> dict[str, Any]:
    if result.retry:
        raise retry_invocation(result)
    return result.summary()
